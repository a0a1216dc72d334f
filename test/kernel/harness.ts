/**
 * Helpers for the kernel library's tests: C test programs in
 * lkl-build/tests are compiled against lkl-build/out (built by
 * `npm test`'s pretest step) and run in child processes, because a kernel
 * boots once per process.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(repoRoot, 'lkl-build/out');
const testsDir = join(repoRoot, 'lkl-build/tests');
export const workDir = join(repoRoot, 'test/.work');

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** "ok NAME" lines and "not ok NAME: why" lines, by name. */
  checks: Map<string, { ok: boolean; why: string }>;
}

/**
 * Compiles lkl-build/tests/NAME.c (or NAME.c in dir) into test/.work/NAME,
 * again only when the source or the library changed.
 */
export function program(name: string, dir = testsDir): string {
  mkdirSync(workDir, { recursive: true });
  const source = join(dir, `${name}.c`);
  const binary = join(workDir, name);
  const lib = join(out, 'lib/liblkl.a');
  if (!existsSync(lib)) throw new Error(`${lib} is missing: run "npm run build:kernel"`);
  const fresh =
    existsSync(binary) &&
    statSync(binary).mtimeMs >
      Math.max(statSync(source).mtimeMs, statSync(lib).mtimeMs, statSync(join(testsDir, 'check.h')).mtimeMs);
  if (!fresh) {
    const cc = spawnSync(
      'gcc',
      ['-O2', '-g', '-Wall', '-Wextra', '-Werror', `-I${join(out, 'include')}`, source, lib, '-lpthread', '-o', binary],
      { encoding: 'utf8' },
    );
    if (cc.status !== 0) throw new Error(`compiling ${name}.c failed:\n${cc.stderr}`);
  }
  return binary;
}

export function parseChecks(stdout: string): RunResult['checks'] {
  const checks = new Map<string, { ok: boolean; why: string }>();
  for (const line of stdout.split('\n')) {
    const m = /^(ok|not ok) ([^:]+?)(?:: (.*))?$/.exec(line);
    if (m?.[1] && m[2]) checks.set(m[2], { ok: m[1] === 'ok', why: m[3] ?? '' });
  }
  return checks;
}

export function run(name: string, args: string[] = [], timeoutMs = 120_000): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(program(name), args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, checks: parseChecks(r.stdout) };
}

/** Every check passed and the program exited 0; otherwise a readable failure. */
export function expectAllOk(r: RunResult, expected: string[] = []): void {
  const failed = [...r.checks].filter(([, c]) => !c.ok).map(([n, c]) => `${n}: ${c.why}`);
  const missing = expected.filter((n) => !r.checks.has(n));
  if (failed.length || missing.length || r.status !== 0) {
    throw new Error(
      `status ${r.status} signal ${r.signal}\nfailed: ${failed.join('; ')}\nmissing: ${missing.join(', ')}\n` +
        `stdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`,
    );
  }
}

export function haveTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Runs a host tool; throws with its output when it fails. */
export function sh(
  cmd: string,
  args: string[],
  opts: { input?: string; allowFail?: boolean } = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, maxBuffer: 64 * 1024 * 1024 });
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** Runs fn in a fresh directory under test/.work (or base), removed afterwards. */
export async function inScratch<T>(prefix: string, fn: (dir: string) => T | Promise<T>, base = workDir): Promise<T> {
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
