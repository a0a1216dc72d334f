// SPDX-License-Identifier: GPL-2.0
// The commands' benchmark (npm run bench): lklfs against the host tools
// that do the same job without a kernel of their own, on one generated
// tree, in the same run. Prints one JSON object of medians (seconds, and
// ratios: ours / reference, lower is better) and peak memory (MiB).
//
//   mkfs.ext4 + cptofs vs mkfs.ext4 -d (e2fsprogs formats and fills an image from a directory)
//   fs2tar   vs GNU tar of the same tree from the host filesystem
//   cpfromfs vs cp -a of the same tree
//
// Environment: BENCH_RUNS (3), BENCH_DIRS (100) x BENCH_FILES (100) small
// files plus one large file per directory, BENCH_DIR (os.tmpdir()), or
// BENCH_TREE: an existing directory to use instead (only read).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const num = (name, def) => {
	const v = Number(process.env[name] ?? def);
	if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
	return v;
};
const runs = num('BENCH_RUNS', 3);
const dirs = num('BENCH_DIRS', 100);
const files = num('BENCH_FILES', 100);
const log = (m) => process.stderr.write(`bench: ${m}\n`);

const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR || os.tmpdir(), 'lklfs-bench-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// Deterministic content: small files of 1-16 KiB, one 2 MiB file per
// directory, a symlink per directory.
function makeTree(dir) {
	let seed = 1;
	const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
	const block = Buffer.alloc(2 << 20);
	for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 12)) & 0xff;
	let bytes = 0;
	for (let d = 0; d < dirs; d++) {
		const sub = path.join(dir, `dir${d}`);
		fs.mkdirSync(sub, { recursive: true });
		for (let f = 0; f < files; f++) {
			const size = 1024 + Math.floor(rand() * 15 * 1024);
			fs.writeFileSync(path.join(sub, `file${f}`), block.subarray(f, f + size));
			bytes += size;
		}
		fs.writeFileSync(path.join(sub, 'large'), block);
		bytes += block.length;
		fs.symlinkSync('file0', path.join(sub, 'link'));
	}
	return bytes;
}

// Runs a command under GNU time: wall seconds and peak RSS in MiB.
function timed(cmd, args, opts = {}) {
	const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], {
		encoding: 'utf8',
		maxBuffer: 1 << 26,
		...opts,
	});
	const m = /([\d.]+) (\d+)\s*$/.exec(r.stderr);
	if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
	return { s: Number(m[1]), mib: Number(m[2]) / 1024 };
}

const sh = (cmd, args) => {
	const r = spawnSync(cmd, args, { encoding: 'utf8' });
	if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
};
const lklfs = path.join(root, 'bin', 'run.js');
const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x) => Number(x.toFixed(3));

// Bytes and entries of an existing tree (regular files' sizes).
function measureTree(dir) {
	let bytes = 0;
	let entries = 0;
	for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
		entries++;
		if (e.isFile()) bytes += fs.lstatSync(path.join(e.parentPath ?? e.path, e.name)).size;
	}
	return { bytes, entries };
}

const given = process.env.BENCH_TREE;
const tree = given ? path.resolve(given) : path.join(work, 'tree');
const { bytes, entries } = given ? measureTree(tree) : { bytes: makeTree(tree), entries: dirs * (files + 2) };
sh('sync', []);
const imageMiB = Math.ceil((bytes * 1.5) / 2 ** 20) + 64;
log(`tree ${tree}: ${entries} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB; image ${imageMiB} MiB`);

const img = path.join(work, 'fs.img');
const freshImage = () => {
	fs.rmSync(img, { force: true });
	sh('truncate', ['-s', `${imageMiB}M`, img]);
};
const results = { cptofs: [], mke2fs_d: [], fs2tar: [], tar: [], cpfromfs: [], cp_a: [] };
const memory = { cptofs: [], fs2tar: [], cpfromfs: [] };

// Both sides of each comparison do the same work: cptofs is timed with
// the format of its empty image, as mkfs.ext4 -d formats its own; neither
// cpfromfs nor cp -a syncs (the host's writeback of what they wrote is
// flushed before every timed run, outside the timings).
const mkfs = ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'];
const formatAndCopy = `mkfs.ext4 ${mkfs.join(' ')} "$1" && exec "$2" "$3" cptofs -t ext4 -i "$1" "$4/." /`;

for (let i = 0; i < runs; i++) {
	freshImage();
	sh('sync', []);
	const ours = timed('sh', ['-c', formatAndCopy, 'cptofs', img, process.execPath, lklfs, tree]);
	results.cptofs.push(ours.s);
	memory.cptofs.push(ours.mib);

	sh('sync', []);
	const tar = timed(process.execPath, [lklfs, 'fs2tar', '-t', 'ext4', '-i', img, path.join(work, 'ours.tar')]);
	results.fs2tar.push(tar.s);
	memory.fs2tar.push(tar.mib);
	fs.rmSync(path.join(work, 'ours.tar'));
	sh('sync', []);
	results.tar.push(timed('tar', ['-C', tree, '-cf', path.join(work, 'ref.tar'), '.']).s);
	fs.rmSync(path.join(work, 'ref.tar'));

	const out = path.join(work, 'out');
	sh('sync', []);
	const from = timed(process.execPath, [lklfs, 'cpfromfs', '-t', 'ext4', '-i', img, '/.', out]);
	results.cpfromfs.push(from.s);
	memory.cpfromfs.push(from.mib);
	fs.rmSync(out, { recursive: true });
	sh('sync', []);
	results.cp_a.push(timed('cp', ['-a', `${tree}/.`, out]).s);
	fs.rmSync(out, { recursive: true });

	// The reference for cptofs: e2fsprogs, same size, same tree.
	freshImage();
	sh('sync', []);
	results.mke2fs_d.push(timed('mkfs.ext4', [...mkfs, '-d', tree, img]).s);
	log(`run ${i + 1}/${runs}: ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.at(-1)])))}`);
}

const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const result = {
	cptofs_s: round(med.cptofs),
	mke2fs_d_s: round(med.mke2fs_d),
	cptofs_vs_mke2fs_d: round(med.cptofs / med.mke2fs_d),
	fs2tar_s: round(med.fs2tar),
	tar_s: round(med.tar),
	fs2tar_vs_tar: round(med.fs2tar / med.tar),
	cpfromfs_s: round(med.cpfromfs),
	cp_a_s: round(med.cp_a),
	cpfromfs_vs_cp_a: round(med.cpfromfs / med.cp_a),
	peak_rss_mib: Object.fromEntries(Object.entries(memory).map(([k, v]) => [k, round(Math.max(...v))])),
	tree: given ? tree : 'generated',
	entries,
	mib: round(bytes / 2 ** 20),
	runs,
	cpus: os.cpus().length,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
