// SPDX-License-Identifier: GPL-2.0
// tar2fs's benchmark (in npm run bench; alone: node bench/tar2fs.mjs): a
// tree's tar archive unpacked into a new ext4 image, against e2fsprogs
// filling an image of the same size: `mke2fs -d TARBALL` where the host's
// e2fsprogs reads tar archives (1.47.1 and later), else `mke2fs -d` of the
// unpacked tree. Both timings include making the filesystem (mke2fs -d
// cannot do without), with the same options. The result: medians in
// seconds, the ratio (ours / reference, lower is better), tar2fs's peak
// memory.
//
// Alone, on the generated rootfs-like tree; environment: BENCH_RUNS (3),
// BENCH_ENTRIES (21000: about 385 MiB), BENCH_DIR (os.tmpdir()).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { formatAndCopy, freshImage, MKFS } from './jobs.mjs';
import { benchDir, envInt, log, median, printResult, round, runAlone, sh, timed } from './measure.mjs';
import { makeRootfsTree } from './rootfs-tree.mjs';

// Whether this e2fsprogs reads a tar archive with -d (1.47.1+): tried on
// an archive of one small file of its own (not the tree's: its names are
// the generator's to change).
function mke2fsReadsTar(work) {
	const one = path.join(work, 'probe');
	const small = path.join(work, 'probe.tar');
	const probe = path.join(work, 'probe.img');
	fs.writeFileSync(one, 'probe\n');
	sh(['tar', '-cf', small, '-C', work, 'probe']);
	sh(['truncate', '-s', '16M', probe]);
	const ok = spawnSync('mkfs.ext4', ['-q', '-F', '-d', small, probe]).status === 0;
	for (const f of [one, small, probe]) fs.rmSync(f);
	return ok;
}

/** tar2fs of tree's archive against mke2fs -d, runs times each, alternating; shape: { entries, bytes }. */
export function tar2fsBench(work, tree, shape, runs) {
	const tarball = path.join(work, 'tree.tar');
	sh(['tar', '--format=posix', '--numeric-owner', '-cf', tarball, '-C', tree, '.']);
	const imageMiB = Math.ceil((shape.bytes * 1.5) / 2 ** 20) + 64;
	const img = path.join(work, 'tar2fs.img');
	const fromTar = mke2fsReadsTar(work);
	const reference = fromTar ? 'mke2fs -d TARBALL' : 'mke2fs -d TREE (this e2fsprogs reads no tar)';
	log(`tar2fs: tarball ${(fs.statSync(tarball).size / 2 ** 20).toFixed(0)} MiB; image ${imageMiB} MiB; reference: ${reference}`);

	const results = { tar2fs: [], mke2fs_d: [] };
	const memory = [];
	for (let i = 0; i < runs; i++) {
		freshImage(img, imageMiB);
		const ours = timed(formatAndCopy(img, 'tar2fs', tarball));
		results.tar2fs.push(ours.s);
		memory.push(ours.mib);
		sh(['e2fsck', '-fn', img]);

		freshImage(img, imageMiB);
		results.mke2fs_d.push(timed([...MKFS, '-d', fromTar ? tarball : tree, img]).s);
		log(`tar2fs run ${i + 1}/${runs}: tar2fs ${ours.s} s, ${reference} ${results.mke2fs_d.at(-1)} s`);
	}
	fs.rmSync(img);
	fs.rmSync(tarball);
	return {
		tar2fs_s: round(median(results.tar2fs)),
		mke2fs_d_s: round(median(results.mke2fs_d)),
		tar2fs_vs_mke2fs_d: round(median(results.tar2fs) / median(results.mke2fs_d)),
		reference,
		tar2fs_peak_rss_mib: round(Math.max(...memory), 1),
		tar2fs_runs_s: results.tar2fs,
		mke2fs_d_runs_s: results.mke2fs_d,
	};
}

runAlone(import.meta.url, () => {
	const work = benchDir('tar2fs');
	const tree = path.join(work, 'tree');
	const shape = makeRootfsTree(tree, envInt('BENCH_ENTRIES', 21000));
	const runs = envInt('BENCH_RUNS', 3);
	printResult({ ...tar2fsBench(work, tree, shape, runs), entries: shape.entries, mib: round(shape.bytes / 2 ** 20, 1), runs });
});
