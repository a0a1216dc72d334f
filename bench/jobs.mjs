// SPDX-License-Identifier: GPL-2.0
// The three jobs on one tree, each against the host tool that does the
// same work, interleaved run by run so that both sides of a ratio see the
// same machine:
//
//   mkfs.ext4 + cptofs vs mkfs.ext4 -d  (both format their image inside the timing)
//   fs2tar             vs GNU tar of the tree
//   cpfromfs           vs cp -a of the tree (neither syncs)
//
// and cptofs again with a 128 MiB kernel, to show what the default 64
// MiB costs. Every timed run starts after a sync (measure.mjs).
import fs from 'node:fs';
import path from 'node:path';
import { lklfs, log, median, round, timed } from './measure.mjs';

export const MKFS = ['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'];

/**
 * mkfs.ext4 [mkfsArgs] IMG, then `lklfs COMMAND -t ext4 -i IMG [args] SOURCE /`
 * (cptofs of a tree's contents, tar2fs of an archive): one timing.
 */
export function formatAndCopy(img, command, source, { mkfsArgs = [], args = [] } = {}) {
	const script = `${[...MKFS, ...mkfsArgs].join(' ')} "$1" && shift && exec "$@"`;
	return ['sh', '-c', script, command, img, ...lklfs(command, '-t', 'ext4', '-i', img, ...args, source, '/')];
}

/** An empty (sparse) image file of mib MiB. */
export function freshImage(img, mib) {
	fs.rmSync(img, { force: true });
	fs.writeFileSync(img, '');
	fs.truncateSync(img, mib * 2 ** 20);
}

/** Medians over runs of each job and its reference, ratios, peak RSS. */
export function compareJobs(tree, work, { runs, imageMiB, mem128 }) {
	const img = path.join(work, 'fs.img');
	const tar = path.join(work, 'out.tar');
	const out = path.join(work, 'out');
	const t = { cptofs: [], mkfs_d: [], fs2tar: [], tar: [], cpfromfs: [], cp_a: [], cptofs_mem128: [] };
	const rss = { cptofs: [], fs2tar: [], cpfromfs: [], cptofs_mem128: [] };
	const add = (job, r) => {
		t[job].push(r.s);
		rss[job]?.push(r.mib);
	};
	for (let i = 0; i < runs; i++) {
		if (mem128) {
			freshImage(img, imageMiB);
			add('cptofs_mem128', timed(formatAndCopy(img, 'cptofs', `${tree}/.`, { args: ['--mem', '128'] })));
		}
		freshImage(img, imageMiB);
		add('mkfs_d', timed([...MKFS, '-d', tree, img]));
		freshImage(img, imageMiB);
		add('cptofs', timed(formatAndCopy(img, 'cptofs', `${tree}/.`)));

		add('fs2tar', timed(lklfs('fs2tar', '-t', 'ext4', '-i', img, tar)));
		fs.rmSync(tar);
		add('tar', timed(['tar', '-C', tree, '-cf', tar, '.']));
		fs.rmSync(tar);

		add('cpfromfs', timed(lklfs('cpfromfs', '-t', 'ext4', '-i', img, '/.', out)));
		fs.rmSync(out, { recursive: true });
		add('cp_a', timed(['cp', '-a', `${tree}/.`, out]));
		fs.rmSync(out, { recursive: true });
		log(`run ${i + 1}/${runs}: ${Object.entries(t).filter(([, v]) => v.length).map(([k, v]) => `${k} ${v.at(-1)}`).join(', ')}`);
	}
	fs.rmSync(img, { force: true });
	const job = (name, ref, refName) => ({
		s: round(median(t[name])),
		[`${refName}_s`]: round(median(t[ref])),
		ratio: round(median(t[name]) / median(t[ref])),
		peak_rss_mib: round(Math.max(...rss[name]), 1),
		runs_s: t[name],
		[`${refName}_runs_s`]: t[ref],
	});
	const result = {
		cptofs: job('cptofs', 'mkfs_d', 'mkfs_ext4_d'),
		fs2tar: job('fs2tar', 'tar', 'gnu_tar'),
		cpfromfs: job('cpfromfs', 'cp_a', 'cp_a'),
	};
	if (mem128)
		result.cptofs_mem128 = {
			s: round(median(t.cptofs_mem128)),
			vs_default_64mib: round(median(t.cptofs_mem128) / median(t.cptofs)),
			peak_rss_mib: round(Math.max(...rss.cptofs_mem128), 1),
		};
	return result;
}

/** A fresh ext4 image big enough for bytes of data in entries entries. */
export function imageSize(bytes, entries) {
	return Math.ceil((bytes * 1.3 + entries * 8192) / 2 ** 20) + 64;
}
