// SPDX-License-Identifier: GPL-2.0
// Running and timing commands for the benchmark: wall seconds and peak
// memory of one command (on memory the host backs), medians, the lklfs
// command line.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** lklfs as a user runs it: node bin/run.js ARGS (BENCH_LKLFS: another build's bin/run.js, to compare). */
const runJs = process.env.BENCH_LKLFS ? path.resolve(process.env.BENCH_LKLFS) : path.join(root, 'bin', 'run.js');
export const lklfs = (...args) => [process.execPath, runJs, ...args];

export const log = (m) => process.stderr.write(`bench: ${m}\n`);

/** Runs argv to completion; its failure is the benchmark's. */
export function sh(argv, opts = {}) {
	const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
	if (r.status !== 0) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
	return r.stdout;
}

/** Flushes the host's writeback: every timed run starts from the same state. */
export const sync = () => sh(['sync']);

// A virtual machine may hand its free memory back to its host (virtio-
// balloon free page reporting, as on the machines this project is built
// on); writing into such a page then costs a fault in the host. A job
// that writes a GiB (an archive, an image, a copied tree) ran 2-4x slower
// when the pages it got had been handed back than when they had been
// freed a moment before, and which of the two a job gets depends on what
// ran before it, not on the job: fs2tar after cptofs got the first kind,
// GNU tar right after it the second. So before every timed run the
// benchmark writes BENCH_WARM_GIB (4) GiB in a child process and frees
// it: each job, ours or the reference, starts with memory the host backs.
const warmGiB = Number(process.env.BENCH_WARM_GIB ?? 4);
if (!Number.isInteger(warmGiB) || warmGiB < 0) throw new Error('BENCH_WARM_GIB must be an integer >= 0');
const warmScript = 'const n = Number(process.argv[1]); const keep = []; for (let i = 0; i < n; i++) keep.push(Buffer.allocUnsafeSlow(1 << 30).fill(1));';

/** Before a timed run: the host's writeback flushed, memory the host backs. */
export function settle() {
	sync();
	if (warmGiB) sh([process.execPath, '-e', warmScript, String(warmGiB)]);
}

/**
 * Runs argv under GNU time, settled: wall seconds and peak RSS in MiB (of
 * the command itself; under sh -c, of the biggest of its processes).
 * tolerate: exit statuses besides 0 that are not a failure (GNU tar's 1:
 * a file changed while it was read).
 */
export function timed(argv, { tolerate = [] } = {}) {
	settle();
	const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 });
	const m = /([\d.]+) (\d+)\s*$/.exec(r.stderr);
	if (!m || (r.status !== 0 && !tolerate.includes(r.status))) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
	return { s: Number(m[1]), mib: Number(m[2]) / 1024 };
}

export function median(xs) {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const round = (x, digits = 3) => Number(x.toFixed(digits));

/** A positive integer from the environment. */
export function envInt(name, def) {
	const v = Number(process.env[name] ?? def);
	if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
	return v;
}

/** A fresh directory for a benchmark's trees and images, removed at exit (or ^C). */
export function benchDir(name) {
	const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR || os.tmpdir(), `lklfs-bench-${name}-`));
	process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
	for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
	return work;
}

/** Runs main when the module is the script node was started with (a benchmark run alone). */
export function runAlone(moduleUrl, main) {
	if (process.argv[1] && moduleUrl === pathToFileURL(path.resolve(process.argv[1])).href) main();
}

/** The result: one JSON object on stdout, with the machine it ran on. */
export function printResult(result) {
	const machine = { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => round(x, 2)), node: process.version };
	process.stdout.write(`${JSON.stringify({ ...result, machine }, null, 2)}\n`);
}
