// SPDX-License-Identifier: GPL-2.0
// A generated tree shaped like a Linux root filesystem, for the benchmarks:
// directories a few levels deep, mostly small files (a few hundred bytes to
// tens of KiB, as in /etc, /usr/share and /usr/lib), a few large ones that
// hold most of the bytes, symlinks, hard links, and extended attributes
// (user.*, ACLs, file capabilities when root). Deterministic: the same
// names, sizes and contents every run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Sizes in bytes: 90% of files under 32 KiB, 1% from 256 KiB to 1.5 MiB. */
function sizeOf(rand) {
	const r = rand();
	if (r < 0.6) return 64 + Math.floor(rand() * 4032);
	if (r < 0.9) return 4096 + Math.floor(rand() * 28672);
	if (r < 0.99) return 32768 + Math.floor(rand() * 98304);
	return 262144 + Math.floor(rand() * 1310720);
}

/**
 * Makes the tree under dir (created) with about `entries` entries; returns
 * { entries, bytes } (bytes: regular files' data, each inode once).
 */
export function makeRootfsTree(dir, entries) {
	let seed = 12345;
	const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
	// One pool of not very compressible bytes; files are windows into it.
	const pool = Buffer.alloc(8 << 20);
	for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((seed = (seed * 1103515245 + 12345) >>> 0), i);

	const dirs = [dir];
	fs.mkdirSync(dir, { recursive: true });
	const files = [];
	const xattrFiles = [];
	let made = 1;
	let bytes = 0;
	// About one directory per 12 entries, each under a random earlier one
	// (which makes a few deep chains and many shallow ones).
	while (made < entries) {
		const r = rand();
		if (r < 0.08 || dirs.length < 8) {
			const parent = dirs[Math.floor(rand() * dirs.length)];
			const sub = path.join(parent, `d${dirs.length}`);
			fs.mkdirSync(sub);
			dirs.push(sub);
		} else if (r < 0.17 && files.length) {
			const parent = dirs[Math.floor(rand() * dirs.length)];
			const target = files[Math.floor(rand() * files.length)];
			fs.symlinkSync(path.relative(parent, target), path.join(parent, `l${made}`));
		} else if (r < 0.19 && files.length) {
			const parent = dirs[Math.floor(rand() * dirs.length)];
			fs.linkSync(files[Math.floor(rand() * files.length)], path.join(parent, `h${made}`));
		} else {
			const parent = dirs[Math.floor(rand() * dirs.length)];
			const size = sizeOf(rand);
			const at = Math.floor(rand() * (pool.length - Math.min(size, pool.length)));
			const file = path.join(parent, `f${made}.${['so', 'conf', 'gz', 'txt', 'py'][made % 5]}`);
			const data = size <= pool.length ? pool.subarray(at, at + size) : Buffer.concat([pool, pool]).subarray(0, size);
			fs.writeFileSync(file, data);
			if (made % 3 === 0) fs.chmodSync(file, 0o755);
			files.push(file);
			if (made % 10 === 0) xattrFiles.push(file);
			bytes += size;
		}
		made++;
	}
	// Attributes in bulk: one setfattr / setfacl per kind, not one per file.
	const batch = (cmd, args, list) => {
		for (let i = 0; i < list.length; i += 500) {
			const r = spawnSync(cmd, [...args, ...list.slice(i, i + 500)], { encoding: 'utf8' });
			if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
		}
	};
	batch('setfattr', ['-n', 'user.origin', '-v', 'bench'], xattrFiles);
	batch('setfacl', ['-m', 'u:1000:r'], xattrFiles.filter((_, i) => i % 4 === 0));
	if (process.getuid?.() === 0)
		batch('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000'], xattrFiles.filter((_, i) => i % 7 === 0));
	return { entries: made, bytes };
}
