// SPDX-License-Identifier: GPL-2.0
// The mount benchmark: an ext4 image mounted three ways, in the same run,
// doing the same work on one generated rootfs-like tree:
//
//   lklfs mount (FUSE, our kernel)  vs  fuse2fs (FUSE, e2fsprogs)
//                                   vs  the host kernel's loop mount (root only)
//
// For each: cp -a of the tree into a fresh image, the unmount (until the
// image is written and let go: lklfs umount waits for its daemon, fuse2fs's
// daemon is waited for), then, mounted again, tar -cf of the tree out of
// it. Every image is checked with e2fsck -fn afterwards. Prints one JSON
// object: medians in seconds, and ratios (lklfs / reference, lower is
// better) for cp -a + unmount and for tar; the daemon's peak RSS in MiB.
//
// Environment: BENCH_RUNS (3), BENCH_SCALE (1: ~12,000 entries, ~190 MiB),
// BENCH_DIR (os.tmpdir()).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lklfs = path.join(root, 'bin', 'run.js');
const num = (name, def) => {
	const v = Number(process.env[name] ?? def);
	if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
	return v;
};
const runs = num('BENCH_RUNS', 3);
const scale = num('BENCH_SCALE', 1);
const log = (m) => process.stderr.write(`bench: ${m}\n`);

const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR || os.tmpdir(), 'lklfs-bench-mount-'));
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
const cleanup = () => {
	// Nothing of ours stays mounted, even after a failure.
	for (let i = 0; i < 3 && isMounted(mnt); i++) spawnSync('umount', ['-l', mnt]);
	spawnSync('fusermount3', ['-u', '-z', mnt]);
	fs.rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sh = (cmd, args, opts = {}) => {
	const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
	if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
	return r.stdout;
};
const now = () => Number(process.hrtime.bigint()) / 1e9;
const timed = (fn) => {
	const t = now();
	fn();
	return now() - t;
};
const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x) => Number(x.toFixed(3));

function isMounted(dir) {
	return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

// A tree shaped like a root filesystem: executables and libraries of all
// sizes, many small files (docs, man pages, configuration), symlinks to
// libraries, a few hard links, owners other than root.
function makeTree(dir) {
	let seed = 7;
	const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
	// Log-uniform sizes between lo and hi bytes.
	const size = (lo, hi) => Math.floor(lo * (hi / lo) ** rand());
	const data = Buffer.alloc(4 << 20);
	for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 9) * 7) & 0xff;
	let bytes = 0;
	let entries = 0;
	const file = (p, lo, hi, mode = 0o644) => {
		const n = size(lo, hi);
		const at = Math.floor(rand() * (data.length - n));
		fs.writeFileSync(p, data.subarray(at, at + n), { mode });
		bytes += n;
		entries++;
	};
	const mkdir = (p) => {
		fs.mkdirSync(p, { recursive: true });
		entries++;
	};
	for (let s = 0; s < scale; s++) {
		const top = path.join(dir, `root${s}`);
		for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/share/doc', 'usr/share/man/man1', 'etc', 'var/lib']) mkdir(path.join(top, d));
		for (let i = 0; i < 400; i++) file(path.join(top, 'usr/bin', `tool${i}`), 8 << 10, 2 << 20, 0o755);
		for (let i = 0; i < 80; i++) file(path.join(top, 'usr/sbin', `daemon${i}`), 16 << 10, 1 << 20, 0o755);
		for (let p = 0; p < 150; p++) {
			const lib = path.join(top, 'usr/lib', `pkg${p}`);
			mkdir(path.join(lib, 'data'));
			for (let i = 0; i < 20; i++) file(path.join(lib, i < 12 ? `mod${i}.py` : `data/blob${i}`), 512, 256 << 10);
			file(path.join(top, 'usr/lib', `libpkg${p}.so.1.2.3`), 32 << 10, 3 << 20);
			fs.symlinkSync(`libpkg${p}.so.1.2.3`, path.join(top, 'usr/lib', `libpkg${p}.so.1`));
			entries++;
			const doc = path.join(top, 'usr/share/doc', `pkg${p}`);
			mkdir(doc);
			file(path.join(doc, 'copyright'), 1 << 10, 40 << 10);
			file(path.join(doc, 'changelog.gz'), 1 << 10, 64 << 10);
		}
		for (let i = 0; i < 1500; i++) file(path.join(top, 'usr/share/man/man1', `page${i}.1.gz`), 600, 12 << 10);
		for (let i = 0; i < 300; i++) file(path.join(top, 'etc', `conf${i}`), 100, 8 << 10, i % 10 ? 0o644 : 0o600);
		for (let i = 0; i < 2000; i++) file(path.join(top, 'var/lib', `state${i}`), 64, 4 << 10);
		for (let i = 0; i < 20; i++) {
			fs.linkSync(path.join(top, 'usr/bin', `tool${i}`), path.join(top, 'usr/sbin', `alias${i}`));
			entries++;
		}
		if (process.getuid() === 0) {
			for (let i = 0; i < 300; i += 3) fs.chownSync(path.join(top, 'etc', `conf${i}`), 100 + i, 100 + i);
			fs.chownSync(path.join(top, 'var/lib'), 42, 42);
		}
	}
	return { bytes, entries };
}

const tree = path.join(work, 'tree');
const { bytes, entries } = makeTree(tree);
sh('sync', []);
const imageMiB = Math.ceil((bytes * 1.4) / 2 ** 20) + 128;
const img = path.join(work, 'fs.img');
log(`tree: ${entries} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB; image ${imageMiB} MiB`);

const freshImage = () => {
	fs.rmSync(img, { force: true });
	sh('truncate', ['-s', `${imageMiB}M`, img]);
	sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
	sh('sync', []);
};

const daemonPid = () =>
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

// Each way of mounting: mount, and unmount until the image is let go.
const methods = {
	lklfs: {
		mount: () => sh(process.execPath, [lklfs, 'mount', img, mnt]),
		umount: () => sh(process.execPath, [lklfs, 'umount', mnt]),
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
			sh('fusermount3', ['-u', mnt]);
			// fuse2fs writes its last blocks after the unmount: wait for it.
			const pid = this.child.pid;
			while (fs.existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')))
				spawnSync('sleep', ['0.005']);
		},
	},
	loop: {
		mount: () => sh('mount', ['-o', 'loop', img, mnt]),
		umount: () => sh('umount', [mnt]),
	},
};

// Which references this machine can run, and why not.
const skipped = {};
if (spawnSync('sh', ['-c', 'command -v fuse2fs']).status !== 0) skipped.fuse2fs = 'fuse2fs is not installed (Debian: fuse2fs)';
freshImage();
const probe = spawnSync('mount', ['-o', 'loop,ro', img, mnt], { encoding: 'utf8' });
if (probe.status === 0) sh('umount', [mnt]);
else skipped.loop = `no loop mount here: ${probe.stderr.trim() || 'mount failed'}`;
for (const [name, why] of Object.entries(skipped)) {
	log(`${name} skipped: ${why}`);
	delete methods[name];
}

const results = Object.fromEntries(Object.keys(methods).map((m) => [m, { mount: [], cp: [], umount: [], tar: [] }]));
const rss = [];
for (let i = 0; i < runs; i++) {
	for (const [name, m] of Object.entries(methods)) {
		const r = results[name];
		freshImage();
		r.mount.push(timed(() => m.mount()));
		r.cp.push(timed(() => sh('cp', ['-a', tree, path.join(mnt, 'tree')])));
		if (name === 'lklfs') rss.push(peakMiB(daemonPid()));
		r.umount.push(timed(() => m.umount()));
		m.mount();
		r.tar.push(timed(() => sh('sh', ['-c', 'tar -C "$1" -cf - . | wc -c >/dev/null', 'tar', path.join(mnt, 'tree')])));
		m.umount();
		sh('e2fsck', ['-fn', img]);
		log(`run ${i + 1}/${runs} ${name}: ${Object.entries(r).map(([k, v]) => `${k} ${v.at(-1).toFixed(2)}`).join(', ')}`);
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
const result = {
	...Object.fromEntries(Object.entries(med).map(([name, m]) => [name, { ...m, cp_in: round(into(name)) }])),
	...ratios,
	lklfs_daemon_peak_rss_mib: round(Math.max(...rss)),
	skipped,
	entries,
	mib: round(bytes / 2 ** 20),
	runs,
	cpus: os.cpus().length,
	load: os.loadavg().map(round),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
