// SPDX-License-Identifier: GPL-2.0
// The mount benchmark (in npm run bench; alone: node bench/mount.mjs): an
// ext4 image mounted three ways, doing the same work on one tree:
//
//   lklfs mount (FUSE, our kernel)  vs  fuse2fs (FUSE, e2fsprogs)
//                                   vs  the host kernel's loop mount (root only)
//
// For each: cp -a of the tree into a fresh image, the unmount (until the
// image is written and let go: lklfs umount waits for its daemon, fuse2fs's
// daemon is waited for), then, mounted again, tar -cf of the tree out of
// it; the cp and the tar each start settled (measure.mjs). Every image is
// checked with e2fsck -fn afterwards. The result: medians in seconds, and
// ratios (lklfs / reference, lower is better) for cp -a + unmount and for
// tar; the daemon's peak RSS in MiB; the references this machine cannot
// run, and why. And what one request costs (round-trip.c): statfs(2) on
// each mount (one FUSE request each on the FUSE mounts) against a byte
// sent to another process and back, the floor under any such request on
// this machine.
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
function unmountAll(mnt) {
	for (let i = 0; i < 3 && isMounted(mnt); i++) spawnSync('umount', ['-l', mnt]);
	if (isMounted(mnt)) spawnSync('fusermount3', ['-u', '-z', mnt]);
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

// Each way of mounting img on mnt: mount, and unmount until the image is let go.
function mountMethods(img, mnt) {
	return {
		lklfs: {
			mount: () => sh(lklfs('mount', img, mnt)),
			umount: () => sh(lklfs('umount', mnt)),
		},
		fuse2fs: {
			child: undefined,
			mount() {
				// In the foreground (here, a child) so that its end can be waited for.
				this.child = spawn('fuse2fs', ['-f', img, mnt], { stdio: 'ignore' });
				const t = now();
				while (!isMounted(mnt)) {
					if (now() - t > 30) throw new Error('fuse2fs did not mount');
					spawnSync('sleep', ['0.01']);
				}
			},
			umount() {
				sh(['fusermount3', '-u', mnt]);
				// fuse2fs writes its last blocks after the unmount: wait for it.
				const pid = this.child.pid;
				while (fs.existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')))
					spawnSync('sleep', ['0.005']);
			},
		},
		loop: {
			mount: () => sh(['mount', '-o', 'loop', img, mnt]),
			umount: () => sh(['umount', mnt]),
		},
	};
}

// What this machine cannot run, and why: { method: reason }.
function unavailable(img, mnt) {
	if (!fs.existsSync('/dev/fuse') || spawnSync('sh', ['-c', 'command -v fusermount3']).status !== 0)
		return { lklfs: 'no /dev/fuse or no fusermount3 (Debian: fuse3)', fuse2fs: 'no FUSE', loop: 'nothing to compare with' };
	const skipped = {};
	if (spawnSync('sh', ['-c', 'command -v fuse2fs']).status !== 0) skipped.fuse2fs = 'fuse2fs is not installed (Debian: fuse2fs)';
	const probe = spawnSync('mount', ['-o', 'loop,ro', img, mnt], { encoding: 'utf8' });
	if (probe.status === 0) sh(['umount', mnt]);
	else skipped.loop = `no loop mount here: ${probe.stderr.trim() || 'mount failed'}`;
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
	fs.mkdirSync(mnt);
	const img = path.join(work, 'mount.img');
	const imageMiB = Math.ceil((shape.bytes * 1.4) / 2 ** 20) + 128;
	const fresh = () => {
		freshImage(img, imageMiB);
		sh([...MKFS, img]);
	};
	const cleanup = () => unmountAll(mnt);
	process.on('exit', cleanup);
	try {
		fresh();
		const skipped = unavailable(img, mnt);
		const methods = mountMethods(img, mnt);
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
