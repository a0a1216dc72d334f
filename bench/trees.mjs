// SPDX-License-Identifier: GPL-2.0
// The trees the benchmark copies besides the rootfs-like one
// (rootfs-tree.mjs, shared with the other benchmarks): flat trees of tiny
// files for the scaling figures, and the measure of a tree given by the
// user.
import fs from 'node:fs';
import path from 'node:path';

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
