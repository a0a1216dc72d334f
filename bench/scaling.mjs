// SPDX-License-Identifier: GPL-2.0
// Scaling: flat trees of tiny and empty files (bench/trees.mjs) of 100k
// and 1M entries, copied in with cptofs, archived with fs2tar and copied
// back out with cpfromfs. Time per entry and peak memory at both sizes
// show whether the cost is linear in entries and the memory flat;
// mkfs.ext4 -d, GNU tar and cp -a on the same trees are there for scale.
import fs from 'node:fs';
import path from 'node:path';
import { lklfs, log, round, timed } from './measure.mjs';
import { formatAndCopy, freshImage, MKFS } from './jobs.mjs';
import { makeFlatTree } from './trees.mjs';

export function scaling(work, entries) {
	const tree = path.join(work, `flat-${entries}`);
	const img = path.join(work, 'flat.img');
	const tar = path.join(work, 'flat.tar');
	const out = path.join(work, 'flat-out');
	log(`scaling: making a flat tree of ${entries} entries`);
	makeFlatTree(tree, entries);
	// An inode for every entry; data only in one file of ten.
	const inodes = ['-N', String(entries + 1024)];
	const mib = Math.ceil((entries * 1536) / 2 ** 20) + 128;
	const perEntry = (s) => round((s * 1e6) / entries, 2);

	freshImage(img, mib);
	const ref = timed([...MKFS, ...inodes, '-d', tree, img]);
	freshImage(img, mib);
	const cptofs = timed(formatAndCopy(img, 'cptofs', `${tree}/.`, { mkfsArgs: inodes }));
	const fs2tar = timed(lklfs('fs2tar', '-t', 'ext4', '-i', img, tar));
	fs.rmSync(tar);
	const gnuTar = timed(['tar', '-C', tree, '-cf', tar, '.']);
	const cpfromfs = timed(lklfs('cpfromfs', '-t', 'ext4', '-i', img, '/.', out));
	fs.rmSync(out, { recursive: true });
	const cpA = timed(['cp', '-a', tree, out]);
	for (const p of [tar, img, tree, out]) fs.rmSync(p, { recursive: true, force: true });
	const result = {
		entries,
		cptofs_s: cptofs.s,
		cptofs_us_per_entry: perEntry(cptofs.s),
		cptofs_peak_rss_mib: round(cptofs.mib, 1),
		mkfs_ext4_d_s: ref.s,
		fs2tar_s: fs2tar.s,
		fs2tar_us_per_entry: perEntry(fs2tar.s),
		fs2tar_peak_rss_mib: round(fs2tar.mib, 1),
		gnu_tar_s: gnuTar.s,
		cpfromfs_s: cpfromfs.s,
		cpfromfs_us_per_entry: perEntry(cpfromfs.s),
		cpfromfs_peak_rss_mib: round(cpfromfs.mib, 1),
		cp_a_s: cpA.s,
	};
	log(`scaling ${entries}: ${JSON.stringify(result)}`);
	return result;
}
