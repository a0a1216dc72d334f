// SPDX-License-Identifier: GPL-2.0
// fs2tar against GNU tar (npm run bench:fs2tar): the same tree archived
// from an ext4 image by lklfs and from the host's filesystem by
// `tar --format=posix --xattrs --acls`, both into a file in the same
// directory, both with the tree (and the image) in the host's page cache,
// each after a sync and on memory the host backs (measure.mjs). Prints
// one JSON object: medians (seconds), the ratio (ours / tar, lower is
// better) and peak RSS (MiB) of each.
//
// The tree: a generated rootfs-like one (BENCH_ENTRIES entries, default
// 21,000: small files, a few large, symlinks, hard links, xattrs, ACLs),
// or BENCH_TREE=/usr/share (any existing directory; only read). The image
// is made by mkfs.ext4 -d, outside both timings. BENCH_RUNS (3),
// BENCH_DIR (os.tmpdir()), BENCH_LKLFS (another build's bin/run.js to time).
import fs from 'node:fs';
import path from 'node:path';
import { benchDir, envInt, lklfs, log, median, printResult, round, sh, timed } from './measure.mjs';
import { makeRootfsTree } from './rootfs-tree.mjs';

const runs = envInt('BENCH_RUNS', 3);
const work = benchDir('fs2tar');

const given = process.env.BENCH_TREE;
const tree = given ? path.resolve(given) : path.join(work, 'tree');
if (!given) makeRootfsTree(tree, envInt('BENCH_ENTRIES', 21000));
const entries = Number(sh(['sh', '-c', 'find "$1" | wc -l', 'find', tree]).trim());
const kib = Number(sh(['du', '-sk', '--apparent-size', tree]).split('\t')[0]);
const imageMiB = Math.ceil((kib * 1.3) / 1024) + 128;
const img = path.join(work, 'fs.img');
sh(['truncate', '-s', `${imageMiB}M`, img]);
sh(['mkfs.ext4', '-q', '-F', '-I', '256', '-N', String(Math.ceil(entries * 1.2) + 1024), '-d', tree, img]);
log(`tree ${tree}: ${entries} entries, ${(kib / 1024).toFixed(0)} MiB; image ${imageMiB} MiB`);

const ours = path.join(work, 'ours.tar');
const ref = path.join(work, 'ref.tar');
const jobs = {
	fs2tar: () => timed(lklfs('fs2tar', '-t', 'ext4', '-i', img, ours)),
	// GNU tar exits 1 when a file changed while read: a real tree (BENCH_TREE) may do that.
	tar: () => timed(['tar', '--format=posix', '--xattrs', '--acls', '-C', tree, '-cf', ref, '.'], { tolerate: [1] }),
};
// Once each, untimed: the tree and the image into the page cache.
for (const job of Object.values(jobs)) job();
const times = { fs2tar: [], tar: [] };
const rss = { fs2tar: [], tar: [] };
for (let i = 0; i < runs; i++) {
	for (const [name, job] of Object.entries(jobs)) {
		fs.rmSync(name === 'tar' ? ref : ours, { force: true });
		const r = job();
		times[name].push(r.s);
		rss[name].push(r.mib);
	}
	log(`run ${i + 1}/${runs}: fs2tar ${times.fs2tar.at(-1)} s, tar ${times.tar.at(-1)} s`);
}

const result = {
	fs2tar_s: round(median(times.fs2tar)),
	tar_s: round(median(times.tar)),
	fs2tar_vs_tar: round(median(times.fs2tar) / median(times.tar)),
	fs2tar_runs_s: times.fs2tar,
	tar_runs_s: times.tar,
	peak_rss_mib: { fs2tar: round(Math.max(...rss.fs2tar)), tar: round(Math.max(...rss.tar)) },
	archive_mib: { fs2tar: round(fs.statSync(ours).size / 2 ** 20), tar: round(fs.statSync(ref).size / 2 ** 20) },
	tree: given ? tree : 'generated rootfs-like',
	entries,
	mib: round(kib / 1024),
	runs,
};
printResult(result);
