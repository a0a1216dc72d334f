// SPDX-License-Identifier: GPL-2.0
// The kernel library benchmark (npm run bench:kernel): builds kbench.c
// against lkl-build/out, runs it in many fresh processes (the kernel boots
// once per process) and prints one JSON object of medians on stdout; the
// progress goes to stderr. It asserts nothing about the numbers.
//
// Environment: BENCH_RUNS (boot runs, 20), BENCH_IO_RUNS (I/O runs, 5),
// BENCH_MIB (file size, 1024), BENCH_DIR (where the image and the dd file
// go, os.tmpdir()). Throughputs are in MiB/s, ours and dd's alike.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'out');

const count = (name, def) => {
	const v = Number(process.env[name] || def);
	if (!Number.isInteger(v) || v < 1) {
		process.stderr.write(`bench: ${name} must be a positive integer\n`);
		process.exit(2);
	}
	return v;
};
const runs = count('BENCH_RUNS', 20);
const ioRuns = count('BENCH_IO_RUNS', 5);
const mib = count('BENCH_MIB', 1024);

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Async children, so a signal reaches our handler (and the child) at once.
let child = null;
function run(cmd, args) {
	return new Promise((resolve, reject) => {
		let stdout = '';
		let stderr = '';
		child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
		child.stdout.on('data', (d) => (stdout += d));
		child.stderr.on('data', (d) => (stderr += d));
		child.on('error', reject);
		child.on('close', (code, signal) => {
			child = null;
			if (code === 0) resolve({ stdout, stderr });
			else reject(new Error(`${cmd} ${args.join(' ')}: ${signal ?? `exit ${code}`}\n${stderr.trim()}`));
		});
	});
}

const dirs = [];
const cleanup = () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.on(sig, () => {
		child?.kill(sig);
		cleanup();
		process.exit(128 + os.constants.signals[sig]);
	});
}

const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	const m = s.length >> 1;
	return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, digits) => Number(x.toFixed(digits));
const spread = (xs, digits) => [round(Math.min(...xs), digits), round(Math.max(...xs), digits)];

// Returns the program and the build it was linked with (lkl-build/out is
// a link into the build cache, which may be relinked while we work: the
// resolved path keeps headers and library from one build, and we retry).
async function build(dir) {
	const exe = path.join(dir, 'kbench');
	for (let attempt = 1; ; attempt++) {
		try {
			const lib = fs.realpathSync(out);
			await run('gcc', ['-O2', '-I', path.join(lib, 'include'), path.join(here, 'kbench.c'),
				path.join(lib, 'lib', 'liblkl.a'), '-lpthread', '-o', exe]);
			return { exe, liblkl: path.basename(lib) };
		} catch (e) {
			if (attempt === 3) throw e;
			log(`build failed, retrying: ${e.message.split('\n')[0]}`);
			await sleep(5000);
		}
	}
}

// dd's own summary line: "N bytes (...) copied, T s, ..." -> MiB/s.
function ddRate(stderr) {
	const m = /^(\d+) bytes .* copied, ([\d.e+-]+) s/m.exec(stderr);
	if (!m) throw new Error(`cannot parse dd output: ${stderr}`);
	return Number(m[1]) / 2 ** 20 / Number(m[2]);
}

// Each timed run starts with the disk idle: the previous run's deletions,
// the fresh image's metadata and anything else dirty are written out
// first, so neither side pays for the other's leftovers.
const settle = () => run('sync', []);

async function lklIo(exe, work) {
	const image = path.join(work, 'ext4.img');
	fs.rmSync(image, { force: true });
	// Sparse, with room for the file, the journal and the inode tables.
	fs.closeSync(fs.openSync(image, 'w'));
	fs.truncateSync(image, (mib + Math.ceil(mib / 4) + 256) * 2 ** 20);
	// Inode tables and journal initialised now, or the kernel's lazy init
	// thread would write them in the background while we measure.
	await run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
	await settle();
	const { stdout } = await run(exe, ['io', image, String(mib)]);
	fs.rmSync(image, { force: true });
	return JSON.parse(stdout);
}

async function ddIo(work) {
	const file = path.join(work, 'dd.bin');
	fs.rmSync(file, { force: true });
	await settle();
	const write = ddRate((await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync'])).stderr);
	// Drops the file's (clean, fsynced) pages from the host's page cache:
	// with count=0, iflag=nocache is posix_fadvise(POSIX_FADV_DONTNEED) over
	// the whole file, no root needed, and nothing else is evicted. kbench
	// drops its image the same way, so both reads come from the disk.
	await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0']);
	const read = ddRate((await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'])).stderr);
	fs.rmSync(file, { force: true });
	return { write, read };
}

async function main() {
	const load = [os.loadavg()[0]];
	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lklfs-kbench-'));
	dirs.push(tmp);
	const { exe, liblkl } = await build(tmp);
	log(`built against ${liblkl}`);

	const boots = [];
	for (let i = 0; i < runs; i++) {
		boots.push(JSON.parse((await run(exe, ['boot'])).stdout));
		log(`boot ${i + 1}/${runs}: ${JSON.stringify(boots[i])}`);
	}

	// The image and the dd file share one directory, so one disk.
	const base = process.env.BENCH_DIR || os.tmpdir();
	const work = fs.mkdtempSync(path.join(base, 'lklfs-kbench-io-'));
	dirs.push(work);
	log(`I/O in ${work}, ${mib} MiB per file`);
	const workFs = (await run('stat', ['-f', '-c', '%T', work])).stdout.trim();
	if (workFs === 'tmpfs' || workFs === 'ramfs')
		log(`warning: ${work} is on ${workFs}: the I/O numbers measure memory, not a disk`);
	const lkl = [];
	const dd = [];
	for (let i = 0; i < ioRuns; i++) {
		// Alternate who goes first, so drift and leftover writeback from
		// the previous run weigh on both alike.
		const order = i % 2 ? ['dd', 'lkl'] : ['lkl', 'dd'];
		for (const who of order) {
			if (who === 'lkl') lkl.push(await lklIo(exe, work));
			else dd.push(await ddIo(work));
			const r = who === 'lkl' ? lkl.at(-1) : dd.at(-1);
			log(`io ${i + 1}/${ioRuns} ${who}: ${JSON.stringify(r, (k, v) => (typeof v === 'number' ? round(v, 1) : v))}`);
		}
	}
	load.push(os.loadavg()[0]);

	const col = (rows, key) => rows.map((r) => r[key]);
	const result = {
		boot_ms: round(median(col(boots, 'boot_ms')), 2),
		halt_ms: round(median(col(boots, 'halt_ms')), 2),
		syscall_ns: round(median(col(boots, 'syscall_ns')), 1),
		write_mb_s: round(median(col(lkl, 'write_mb_s')), 1),
		read_mb_s: round(median(col(lkl, 'read_mb_s')), 1),
		dd_write_mb_s: round(median(col(dd, 'write')), 1),
		dd_read_mb_s: round(median(col(dd, 'read')), 1),
		// Ratios of the medians above.
		write_vs_dd: round(median(col(lkl, 'write_mb_s')) / median(col(dd, 'write')), 3),
		read_vs_dd: round(median(col(lkl, 'read_mb_s')) / median(col(dd, 'read')), 3),
		// The same read with the image still in the host's page cache: the
		// library's own ceiling, no disk involved.
		read_hostcache_mb_s: round(median(col(lkl, 'read_hostcache_mb_s')), 1),
		// The write split: write() calls into the page cache, then fsync.
		write_phase_ms: round(median(col(lkl, 'write_ms')), 1),
		fsync_phase_ms: round(median(col(lkl, 'fsync_ms')), 1),
		runs,
		io_runs: ioRuns,
		mib,
		// [min, max] over the runs, to tell a real number from noise.
		spread: {
			boot_ms: spread(col(boots, 'boot_ms'), 2),
			halt_ms: spread(col(boots, 'halt_ms'), 2),
			syscall_ns: spread(col(boots, 'syscall_ns'), 1),
			write_mb_s: spread(col(lkl, 'write_mb_s'), 1),
			read_mb_s: spread(col(lkl, 'read_mb_s'), 1),
			dd_write_mb_s: spread(col(dd, 'write'), 1),
			dd_read_mb_s: spread(col(dd, 'read'), 1),
		},
		io_cmdline: lkl[0].cmdline,
		liblkl,
		work_fs: workFs,
		cpus: os.cpus().length,
		load_avg: load.map((l) => round(l, 2)),
		targets: { boot_ms: 30, halt_ms: 10, syscall_ns: 300, write_vs_dd: 0.7, read_vs_dd: 0.7 },
	};
	// One key a line: readable, and still one JSON object.
	const lines = Object.entries(result).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
	process.stdout.write(`{\n${lines.join(',\n')}\n}\n`);
}

try {
	await main();
} catch (e) {
	log(`failed: ${e.message}`);
	process.exitCode = 1;
} finally {
	cleanup();
}
