// SPDX-License-Identifier: GPL-2.0
// The mount benchmark (in npm run bench; alone: node bench/mount.mjs): an
// ext4 image mounted four ways, doing the same work on one tree:
//
//   lklfs mount (FUSE, our kernel)  vs  fuse2fs (FUSE, e2fsprogs)
//                                   vs  the host kernel's loop mount (root only)
//                                   vs  that loop mount behind fuse-overlayfs
//
// The last is the host's own ext4 reached through a mature FUSE
// passthrough: its ratio to the loop mount is what FUSE alone costs on
// this machine, the least any FUSE mount can hope for here.
//
// For each: cp -a of the tree into a fresh image, the unmount (until the
// image is written and let go: lklfs umount waits for its daemon, the
// other FUSE daemons are waited for), then, mounted again, tar -cf of the
// tree out of it; the cp and the tar each start settled (measure.mjs).
// Every image is checked with e2fsck -fn afterwards. The result: medians
// in seconds, and ratios (lklfs / reference, lower is better; and
// fuse-overlayfs / loop) for cp -a + unmount and for tar; the daemon's
// peak RSS in MiB; the references this machine cannot run, and why. And
// what one request costs (round-trip.c): statfs(2) on each mount (one
// FUSE request each on the FUSE mounts) against a byte sent to another
// process and back, the floor under any such request on this machine.
//
// Alone, on the generated rootfs-like tree; environment: BENCH_RUNS (3),
// BENCH_ENTRIES (21000), BENCH_DIR (os.tmpdir()).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshImage, MKFS } from './jobs.mjs';
import { benchDir, envInt, lklfs, log, median, printResult, round, runAlone, settle, sh } from './measure.mjs';
import { makeRootfsTree } from './rootfs-tree.mjs';

const now = () => Number(process.hrtime.bigint()) / 1e9;
const seconds = (fn) => {
	const t = now();
	fn();
	return now() - t;
};

function isMounted(dir) {
	return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

// Nothing of ours stays mounted, even after a failure.
function unmountAll(...dirs) {
	for (const dir of dirs) {
		for (let i = 0; i < 3 && isMounted(dir); i++) spawnSync('umount', ['-l', dir]);
		if (isMounted(dir)) spawnSync('fusermount3', ['-u', '-z', dir]);
	}
}

const daemonPid = (img, mnt) =>
	fs
		.readdirSync('/proc')
		.filter((n) => /^\d+$/.test(n))
		.find((pid) => {
			try {
				const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
				return argv.includes('--foreground') && argv.includes(img) && argv.includes(mnt);
			} catch {
				return false;
			}
		});
const peakMiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

// A FUSE daemon run in the foreground (here, a child) so that its end
// can be waited for: it may write its last blocks after the unmount.
function foregroundFuse(mnt, argv) {
	let child;
	return {
		mount() {
			child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
			const t = now();
			while (!isMounted(mnt)) {
				if (now() - t > 30) throw new Error(`${argv[0]} did not mount`);
				spawnSync('sleep', ['0.01']);
			}
		},
		umount() {
			sh(['fusermount3', '-u', mnt]);
			const pid = child.pid;
			while (fs.existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')))
				spawnSync('sleep', ['0.005']);
		},
	};
}

// fuse-overlayfs's layers in the loop-mounted image: an empty lower
// layer, so that it passes everything through to the upper one.
function overlayLayers(backing) {
	const layer = (name) => path.join(backing, name);
	return `lowerdir=${layer('lower')},upperdir=${layer('upper')},workdir=${layer('work')}`;
}

// The host kernel's own mount of img on dir (root only).
function loopMount(img, dir) {
	return {
		mount: () => sh(['mount', '-o', 'loop', img, dir]),
		umount: () => sh(['umount', dir]),
	};
}

// fuse, mounted over img loop-mounted on backing.
function overLoop(img, backing, fuse) {
	const loop = loopMount(img, backing);
	return {
		mount() {
			loop.mount();
			for (const layer of ['lower', 'upper', 'work']) fs.mkdirSync(path.join(backing, layer), { recursive: true });
			fuse.mount();
		},
		umount() {
			fuse.umount();
			loop.umount();
		},
	};
}

// Each way of mounting img on mnt: mount, and unmount until the image is
// let go (fuse_over_loop's loop mount is on backing).
function mountMethods(img, mnt, backing) {
	return {
		lklfs: {
			mount: () => sh(lklfs('mount', img, mnt)),
			umount: () => sh(lklfs('umount', mnt)),
		},
		fuse2fs: foregroundFuse(mnt, ['fuse2fs', '-f', img, mnt]),
		loop: loopMount(img, mnt),
		fuse_over_loop: overLoop(img, backing, foregroundFuse(mnt, ['fuse-overlayfs', '-f', '-o', overlayLayers(backing), mnt])),
	};
}

// What this machine cannot run, and why: { method: reason }.
function unavailable(img, mnt) {
	const missing = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0;
	if (!fs.existsSync('/dev/fuse') || missing('fusermount3'))
		return {
			lklfs: 'no /dev/fuse or no fusermount3 (Debian: fuse3)',
			fuse2fs: 'no FUSE',
			loop: 'nothing to compare with',
			fuse_over_loop: 'no FUSE',
		};
	const skipped = {};
	if (missing('fuse2fs')) skipped.fuse2fs = 'fuse2fs is not installed (Debian: fuse2fs)';
	const probe = spawnSync('mount', ['-o', 'loop,ro', img, mnt], { encoding: 'utf8' });
	if (probe.status === 0) sh(['umount', mnt]);
	else skipped.loop = skipped.fuse_over_loop = `no loop mount here: ${probe.stderr.trim() || 'mount failed'}`;
	if (!skipped.loop && missing('fuse-overlayfs'))
		skipped.fuse_over_loop = 'fuse-overlayfs is not installed (Debian: fuse-overlayfs)';
	return skipped;
}

// round-trip.c, built into work: its mean in microseconds for args.
function roundTripProbe(work) {
	const exe = path.join(work, 'round-trip');
	sh(['cc', '-O2', '-o', exe, fileURLToPath(new URL('./round-trip.c', import.meta.url))]);
	return (...args) => round(Number(sh([exe, ...args])), 2);
}

/** cp -a of tree into an image and tar of it back out, each way of mounting, runs times; shape: { entries, bytes }. */
export function mountBench(work, tree, shape, runs) {
	const mnt = path.join(work, 'mnt');
	const backing = path.join(work, 'backing');
	fs.mkdirSync(mnt);
	fs.mkdirSync(backing);
	const img = path.join(work, 'mount.img');
	const imageMiB = Math.ceil((shape.bytes * 1.4) / 2 ** 20) + 128;
	const fresh = () => {
		freshImage(img, imageMiB);
		sh([...MKFS, img]);
	};
	const cleanup = () => unmountAll(mnt, backing);
	process.on('exit', cleanup);
	try {
		fresh();
		const skipped = unavailable(img, mnt);
		const methods = mountMethods(img, mnt, backing);
		for (const [name, why] of Object.entries(skipped)) {
			log(`mount: ${name} skipped: ${why}`);
			delete methods[name];
		}
		if (!methods.lklfs) return { skipped };

		const results = Object.fromEntries(Object.keys(methods).map((m) => [m, { mount: [], cp: [], umount: [], tar: [] }]));
		const rss = [];
		const probe = roundTripProbe(work);
		const roundTrip = { pipe_to_polling_process: probe('pipe'), statfs: {} };
		for (let i = 0; i < runs; i++) {
			for (const [name, m] of Object.entries(methods)) {
				const r = results[name];
				fresh();
				r.mount.push(seconds(() => m.mount()));
				if (i === 0) roundTrip.statfs[name] = probe('statfs', mnt);
				settle();
				r.cp.push(seconds(() => sh(['cp', '-a', tree, path.join(mnt, 'tree')])));
				if (name === 'lklfs') rss.push(peakMiB(daemonPid(img, mnt)));
				r.umount.push(seconds(() => m.umount()));
				m.mount();
				settle();
				r.tar.push(seconds(() => sh(['sh', '-c', 'tar -C "$1" -cf - . | wc -c >/dev/null', 'tar', path.join(mnt, 'tree')])));
				m.umount();
				sh(['e2fsck', '-fn', img]);
				log(`mount run ${i + 1}/${runs} ${name}: ${Object.entries(r).map(([k, v]) => `${k} ${v.at(-1).toFixed(2)}`).join(', ')}`);
			}
		}

		const med = Object.fromEntries(
			Object.entries(results).map(([name, r]) => [name, Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(median(v))]))]),
		);
		const into = (name) => med[name].cp + med[name].umount;
		const ratios = {};
		for (const ref of Object.keys(methods).filter((m) => m !== 'lklfs')) {
			ratios[`cp_in_vs_${ref}`] = round(into('lklfs') / into(ref));
			ratios[`tar_out_vs_${ref}`] = round(med.lklfs.tar / med[ref].tar);
		}
		// What FUSE alone costs here, the same work on both sides.
		if (med.loop && med.fuse_over_loop) {
			ratios.fuse_over_loop_cp_in_vs_loop = round(into('fuse_over_loop') / into('loop'));
			ratios.fuse_over_loop_tar_out_vs_loop = round(med.fuse_over_loop.tar / med.loop.tar);
		}
		return {
			...Object.fromEntries(Object.entries(med).map(([name, m]) => [name, { ...m, cp_in: round(into(name)) }])),
			...ratios,
			lklfs_daemon_peak_rss_mib: round(Math.max(...rss), 1),
			round_trip_us: roundTrip,
			skipped,
		};
	} finally {
		cleanup();
		process.off('exit', cleanup);
		fs.rmSync(img, { force: true });
	}
}

runAlone(import.meta.url, () => {
	const work = benchDir('mount');
	const tree = path.join(work, 'tree');
	const shape = makeRootfsTree(tree, envInt('BENCH_ENTRIES', 21000));
	const runs = envInt('BENCH_RUNS', 3);
	log(`tree: ${shape.entries} entries, ${(shape.bytes / 2 ** 20).toFixed(0)} MiB`);
	printResult({ ...mountBench(work, tree, shape, runs), entries: shape.entries, mib: round(shape.bytes / 2 ** 20, 1), runs });
});
