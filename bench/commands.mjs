// SPDX-License-Identifier: GPL-2.0
// The commands' benchmark (npm run bench): lklfs against the host tools
// that do the same work without a kernel of their own, all in one run,
// printed as one JSON object (seconds, MiB; ratios are ours / the
// reference's, lower is better). Every timed run starts settled: the
// host's writeback flushed and memory the host backs (measure.mjs).
//
//   startup   lklfs --version, lklfs ls of a fresh 64 MiB ext4 image, node -e 0
//   trees     a generated rootfs-like tree and, with BENCH_TREE, a real one:
//             cptofs vs mkfs.ext4 -d, fs2tar vs GNU tar, cpfromfs vs cp -a
//             (medians of BENCH_RUNS, peak RSS; see jobs.mjs)
//   tar2fs    the generated tree's archive: tar2fs vs mke2fs -d (tar2fs.mjs)
//   mount     the generated tree: cp -a in and tar out through lklfs mount,
//             fuse2fs, a loop mount and the loop mount behind fuse-overlayfs
//             (mount.mjs)
//   scaling   flat trees of 100k and 1M tiny entries: cptofs and fs2tar per
//             entry and peak RSS (1M only with BENCH_1M=1: it takes minutes)
//
// Environment: BENCH_RUNS (3), BENCH_ENTRIES (21000, the generated tree),
// BENCH_LKLFS (another build's bin/run.js to time, for a before and after),
// BENCH_TREE (an existing directory, only read), BENCH_1M, BENCH_DIR
// (where the trees and images go; os.tmpdir()), BENCH_STARTUP_RUNS (9),
// BENCH_WARM_GIB (4; 0: no warm-up).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareJobs, imageSize } from './jobs.mjs';
import { benchDir, envInt, log, printResult, round } from './measure.mjs';
import { mountBench } from './mount.mjs';
import { makeRootfsTree } from './rootfs-tree.mjs';
import { scaling } from './scaling.mjs';
import { startup } from './startup.mjs';
import { tar2fsBench } from './tar2fs.mjs';
import { measureTree } from './trees.mjs';

const runs = envInt('BENCH_RUNS', 3);
const work = benchDir('commands');

function onTree(tree, shape, mem128) {
	const imageMiB = imageSize(shape.bytes, shape.entries);
	log(`${tree}: ${shape.entries} entries, ${(shape.bytes / 2 ** 20).toFixed(0)} MiB; image ${imageMiB} MiB`);
	return { entries: shape.entries, mib: round(shape.bytes / 2 ** 20, 1), ...compareJobs(tree, work, { runs, imageMiB, mem128 }) };
}

const result = { runs, loadavg_at_start: os.loadavg().map((x) => round(x, 2)) };
log('start-up');
result.startup = startup(work, envInt('BENCH_STARTUP_RUNS', 9));

const generated = path.join(work, 'rootfs');
log('making the rootfs-like tree');
const shape = makeRootfsTree(generated, envInt('BENCH_ENTRIES', 21000));
result.trees = { generated: onTree(generated, shape, true) };
log('tar2fs');
result.tar2fs = tar2fsBench(work, generated, shape, runs);
log('mount');
result.mount = mountBench(work, generated, shape, runs);
fs.rmSync(generated, { recursive: true });
if (process.env.BENCH_TREE) {
	const tree = path.resolve(process.env.BENCH_TREE);
	result.trees.real = { path: tree, ...onTree(tree, measureTree(tree), false) };
}

result.scaling = { '100k': scaling(work, 100_000) };
result.scaling['1M'] = process.env.BENCH_1M ? scaling(work, 1_000_000) : { skipped: 'set BENCH_1M=1 (several minutes)' };
if (!process.env.BENCH_1M) log('1M-entry scaling skipped: set BENCH_1M=1');
printResult(result);
