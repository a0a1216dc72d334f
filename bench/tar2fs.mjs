// SPDX-License-Identifier: GPL-2.0
// tar2fs's benchmark (part of npm run bench): a rootfs-like tree's tar
// archive unpacked into a new ext4 image, against e2fsprogs filling an
// image of the same size: `mke2fs -d TARBALL` where the host's e2fsprogs
// reads tar archives (1.47.1 and later), else `mke2fs -d` of the unpacked
// tree. Both timings include making the filesystem (mke2fs -d cannot do
// without), with the same options. Prints one JSON object: medians in
// seconds, the ratio (ours / reference, lower is better), tar2fs's peak
// memory.
//
// Environment: BENCH_RUNS (3), BENCH_ENTRIES (21000: about 385 MiB),
// BENCH_DIR (os.tmpdir()).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRootfsTree } from './rootfs-tree.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lklfs = path.join(root, 'bin', 'run.js');
const runs = Number(process.env.BENCH_RUNS ?? 3);
const size = Number(process.env.BENCH_ENTRIES ?? 21000);
if (!Number.isInteger(runs) || runs < 1) throw new Error('BENCH_RUNS must be a positive integer');
if (!Number.isInteger(size) || size < 1) throw new Error('BENCH_ENTRIES must be a positive integer');
const log = (m) => process.stderr.write(`bench: ${m}\n`);

const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR || os.tmpdir(), 'lklfs-bench-tar2fs-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sh = (cmd, args) => {
	const r = spawnSync(cmd, args, { encoding: 'utf8' });
	if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
	return r;
};

// Wall seconds and peak RSS (MiB) of a shell command line, under GNU time.
function timed(script, ...args) {
	const r = spawnSync('/usr/bin/time', ['-f', '%e %M', 'sh', '-c', script, 'sh', ...args], { encoding: 'utf8' });
	const m = /([\d.]+) (\d+)\s*$/.exec(r.stderr);
	if (r.status !== 0 || !m) throw new Error(`${script} failed:\n${r.stderr}`);
	return { s: Number(m[1]), mib: Number(m[2]) / 1024 };
}

const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x) => Number(x.toFixed(3));

const tree = path.join(work, 'tree');
const { entries, bytes } = makeRootfsTree(tree, size);
const tarball = path.join(work, 'tree.tar');
sh('tar', ['--format=posix', '--numeric-owner', '-cf', tarball, '-C', tree, '.']);
const imageMiB = Math.ceil((bytes * 1.5) / 2 ** 20) + 64;
const img = path.join(work, 'fs.img');
const mkfsOpts = ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'];
const freshImage = () => {
	fs.rmSync(img, { force: true });
	sh('truncate', ['-s', `${imageMiB}M`, img]);
};

// Whether this e2fsprogs reads a tar archive with -d (1.47.1+): tried on
// an archive of one small file of its own (not the tree's: its names are
// the generator's to change).
function mke2fsReadsTar() {
	const one = path.join(work, 'probe');
	const small = path.join(work, 'probe.tar');
	const probe = path.join(work, 'probe.img');
	fs.writeFileSync(one, 'probe\n');
	sh('tar', ['-cf', small, '-C', work, 'probe']);
	sh('truncate', ['-s', '16M', probe]);
	const ok = spawnSync('mkfs.ext4', ['-q', '-F', '-d', small, probe]).status === 0;
	for (const f of [one, small, probe]) fs.rmSync(f);
	return ok;
}
const fromTar = mke2fsReadsTar();
const reference = fromTar ? 'mke2fs -d TARBALL' : 'mke2fs -d TREE (this e2fsprogs reads no tar)';
log(`tree: ${entries} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB; tarball ${(fs.statSync(tarball).size / 2 ** 20).toFixed(0)} MiB; image ${imageMiB} MiB; reference: ${reference}`);

const results = { tar2fs: [], mke2fs_d: [] };
const memory = [];
const mkfs = `mkfs.ext4 ${mkfsOpts.join(' ')}`;
for (let i = 0; i < runs; i++) {
	freshImage();
	sh('sync', []);
	const ours = timed(`${mkfs} "$1" && node "$2" tar2fs -t ext4 -i "$1" "$3"`, img, lklfs, tarball);
	results.tar2fs.push(ours.s);
	memory.push(ours.mib);
	sh('e2fsck', ['-fn', img]);

	freshImage();
	sh('sync', []);
	results.mke2fs_d.push(timed(`${mkfs} -d "$2" "$1"`, img, fromTar ? tarball : tree).s);
	log(`run ${i + 1}/${runs}: tar2fs ${ours.s} s, ${reference} ${results.mke2fs_d.at(-1)} s`);
}

const result = {
	tar2fs_s: round(median(results.tar2fs)),
	mke2fs_d_s: round(median(results.mke2fs_d)),
	tar2fs_vs_mke2fs_d: round(median(results.tar2fs) / median(results.mke2fs_d)),
	reference,
	tar2fs_peak_rss_mib: round(Math.max(...memory)),
	entries,
	mib: round(bytes / 2 ** 20),
	runs,
	cpus: os.cpus().length,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
