// SPDX-License-Identifier: GPL-2.0
// The trees the benchmark copies: a generated one shaped like a root
// filesystem, flat trees of tiny files for the scaling figures, and the
// measure of a tree given by the user. Everything generated is
// deterministic (one seeded generator), so runs compare.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A seeded generator of floats in [0, 1) (a plain LCG: enough for shapes). */
function random(seed) {
	return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

/**
 * A tree like a distribution's root filesystem, about `entries` entries:
 * nested directories, mostly small files of 1-16 KiB, one in 15 larger
 * (16 KiB - 2 MiB, log-uniform), symlinks (relative, absolute, dangling)
 * one entry in eight, hard links one in 50, extended attributes (user.*,
 * and security.capability as binaries carry it) on one file in 25,
 * owners and modes of several kinds, times spread over years. Data is
 * never all zeros, which mkfs.ext4 -d would turn into holes.
 * Returns { entries, bytes } as made.
 */
export function makeRootfsTree(dir, entries) {
	const rand = random(1);
	const pick = (xs) => xs[Math.floor(rand() * xs.length)];
	const data = Buffer.alloc(4 << 20);
	for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12) + 1) & 0xff || 1;
	const dirs = [dir];
	const files = [];
	const xattrDump = [];
	let made = 0;
	let bytes = 0;
	fs.mkdirSync(dir, { recursive: true });
	while (made < entries) {
		const parent = pick(dirs);
		const name = `${pick(['lib', 'x', 'python3-', 'share-', ''])}${made}${pick(['', '.so.1', '.conf', '.py', '.h'])}`;
		const p = path.join(parent, name);
		const r = rand();
		if (r < 0.08 || dirs.length < 8) {
			fs.mkdirSync(p, { mode: pick([0o755, 0o755, 0o755, 0o700, 0o1777]) });
			dirs.push(p);
		} else if (r < 0.2) {
			const target = pick([
				`../${pick(['lib', 'bin', 'share'])}/x${made}`,
				'/usr/lib/os-release',
				files.length ? path.relative(parent, pick(files)) : 'nowhere',
			]);
			fs.symlinkSync(target, p);
		} else if (r < 0.22 && files.length) {
			fs.linkSync(pick(files), p);
		} else {
			const size = rand() < 1 / 15 ? Math.floor(16384 * 128 ** rand()) : 1024 + Math.floor(rand() * 15 * 1024);
			const at = Math.floor(rand() * (data.length - size));
			fs.writeFileSync(p, data.subarray(at, at + size), { mode: pick([0o644, 0o644, 0o644, 0o755, 0o600, 0o4755]) });
			if (rand() < 0.04) {
				xattrDump.push(`# file: ${p}`, `user.origin="pkg${made}"`);
				if (rand() < 0.3) xattrDump.push('security.capability=0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=');
				xattrDump.push('');
			}
			files.push(p);
			bytes += size;
		}
		const owner = pick([0, 0, 0, 0, 1000, 33, 65534]);
		fs.lchownSync(p, owner, owner);
		const t = 1_500_000_000 + Math.floor(rand() * 200_000_000);
		fs.lutimesSync(p, t, t + rand());
		made++;
	}
	if (xattrDump.length) restoreXattrs(dir, xattrDump);
	// The directories' times last: their contents changed them.
	for (const d of dirs.reverse()) fs.utimesSync(d, 1_600_000_000, 1_600_000_000);
	return { entries: made, bytes };
}

/** setfattr --restore: every attribute in one process. */
function restoreXattrs(dir, lines) {
	const dump = path.join(path.dirname(dir), 'xattrs.dump');
	fs.writeFileSync(dump, `${lines.join('\n')}\n`);
	const r = spawnSync('setfattr', [`--restore=${dump}`], { encoding: 'utf8' });
	fs.rmSync(dump);
	if (r.status !== 0) throw new Error(`setfattr --restore failed (package attr):\n${r.stderr}`);
}

/**
 * A tree of `entries` entries, directories of 100: empty files, one in
 * ten holding a few bytes. What it measures is the cost of an entry.
 */
export function makeFlatTree(dir, entries) {
	const note = Buffer.from('a few bytes\n');
	let made = 0;
	for (let d = 0; made < entries; d++) {
		const group = path.join(dir, `g${Math.floor(d / 100)}`);
		if (d % 100 === 0) fs.mkdirSync(group, { recursive: true }), made++;
		const sub = path.join(group, `d${d}`);
		fs.mkdirSync(sub);
		made++;
		for (let f = 0; f < 98 && made < entries; f++, made++) fs.writeFileSync(path.join(sub, `f${f}`), f % 10 ? '' : note);
	}
	return { entries: made, bytes: 0 };
}

/** Entries and regular files' bytes of an existing tree (its root not counted). */
export function measureTree(dir) {
	let bytes = 0;
	let entries = 0;
	for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
		entries++;
		if (e.isFile()) bytes += fs.lstatSync(path.join(e.parentPath ?? e.path, e.name)).size;
	}
	return { entries, bytes };
}
