// SPDX-License-Identifier: GPL-2.0
// Running and timing commands for the benchmark: wall seconds and peak
// memory of one command, medians, the lklfs command line.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * Runs argv under GNU time after a sync: wall seconds and peak RSS in MiB
 * (of the command itself; under sh -c, of the biggest of its processes).
 */
export function timed(argv, opts = {}) {
	sync();
	const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
	const m = /([\d.]+) (\d+)\s*$/.exec(r.stderr);
	if (r.status !== 0 || !m) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
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
