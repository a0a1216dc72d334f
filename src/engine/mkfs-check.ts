/**
 * The round trip behind `lklfs mkfs-check`: for each filesystem type, an
 * image made by the host's own tool, a small tree written into it through
 * the kernel (or, for read-only formats, built into it by the tool), the
 * host's checker run on the result, and the tree read back through the
 * kernel and compared. It tells which filesystems this machine can handle
 * end to end, and is a self-test of lklfs on it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Kernel, Mount } from '../kernel/kernel.js';
import { copyIn } from './copy-in.js';
import { walk } from './walk-image.js';
import { kindOf } from './modes.js';

interface FsCase {
  type: string;
  /** The Debian package with its tools, for the "not found" hint. */
  pkg: string;
  /** Makes an empty image of sizeMiB, or (read-only formats) one holding tree. */
  make: { cmd: string; args: (img: string, tree: string) => string[]; sizeMiB?: number };
  /** The host's checker; none exists for some (udf). */
  check?: { cmd: string; args: (img: string) => string[]; clean?: (out: string) => boolean };
}

const fat = (type: string): FsCase => ({
  type,
  pkg: 'dosfstools',
  make: { cmd: 'mkfs.vfat', args: (img) => [img], sizeMiB: 64 },
  check: { cmd: 'fsck.vfat', args: (img) => ['-n', img] },
});

const ext = (type: string): FsCase => ({
  type,
  pkg: 'e2fsprogs',
  make: { cmd: `mkfs.${type}`, args: (img) => ['-q', '-F', img], sizeMiB: 64 },
  check: { cmd: 'e2fsck', args: (img) => ['-fn', img] },
});

export const CASES: FsCase[] = [
  ext('ext2'),
  ext('ext3'),
  ext('ext4'),
  {
    type: 'btrfs',
    pkg: 'btrfs-progs',
    make: { cmd: 'mkfs.btrfs', args: (img) => ['-q', '-f', img], sizeMiB: 128 },
    check: { cmd: 'btrfs', args: (img) => ['check', '--readonly', img] },
  },
  {
    type: 'xfs',
    pkg: 'xfsprogs',
    make: { cmd: 'mkfs.xfs', args: (img) => ['-q', '-f', img], sizeMiB: 320 },
    check: { cmd: 'xfs_repair', args: (img) => ['-n', '-f', img] },
  },
  {
    type: 'f2fs',
    pkg: 'f2fs-tools',
    make: { cmd: 'mkfs.f2fs', args: (img) => ['-q', '-f', img], sizeMiB: 64 },
    check: { cmd: 'fsck.f2fs', args: (img) => ['--dry-run', img], clean: (out) => !/\[Fail/.test(out) },
  },
  fat('vfat'),
  fat('msdos'),
  {
    type: 'exfat',
    pkg: 'exfatprogs',
    make: { cmd: 'mkfs.exfat', args: (img) => [img], sizeMiB: 64 },
    check: { cmd: 'fsck.exfat', args: (img) => ['-n', img] },
  },
  {
    type: 'ntfs3',
    pkg: 'ntfs-3g',
    make: { cmd: 'mkntfs', args: (img) => ['-F', '-Q', '-q', img], sizeMiB: 64 },
    check: { cmd: 'ntfsfix', args: (img) => ['-n', img] },
  },
  { type: 'udf', pkg: 'udftools', make: { cmd: 'mkudffs', args: (img) => ['--media-type=hd', img], sizeMiB: 64 } },
  {
    type: 'squashfs',
    pkg: 'squashfs-tools',
    make: { cmd: 'mksquashfs', args: (img, tree) => [tree, img, '-noappend', '-quiet'] },
  },
  { type: 'erofs', pkg: 'erofs-utils', make: { cmd: 'mkfs.erofs', args: (img, tree) => [img, tree] } },
  {
    type: 'iso9660',
    pkg: 'genisoimage',
    make: { cmd: 'genisoimage', args: (img, tree) => ['-quiet', '-R', '-J', '-o', img, tree] },
  },
];

export type Outcome = 'ok' | 'failed' | 'skipped';

export interface CheckResult {
  type: string;
  outcome: Outcome;
  /** What was done, or where and why it stopped. */
  detail: string;
  ms: number;
  /** The steps, each true once done; null where the type has no such step (read-only formats are not written, udf has no checker). */
  steps: { made: boolean; written: boolean | null; checked: boolean | null; readBack: boolean };
  /** The host's tools: their Debian package and its installed version (absent when not installed or not Debian). */
  tools: { package: string; version?: string; mkfs: string; checker?: string };
}

/** The tree every filesystem gets: 8.3 names (msdos), no special files. */
const TREE: Record<string, Buffer> = {
  'hello.txt': Buffer.from('hello from lklfs\n'),
  'data.bin': Buffer.from(Array.from({ length: 65536 + 123 }, (_, i) => (i * 7 + (i >> 9)) & 0xff)),
  'dir/nested.txt': Buffer.from('nested\n'),
};

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status === 0;
}

/** Runs a host tool; its output when it failed. */
function tool(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** The installed version of a Debian package, when dpkg knows it. */
function packageVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
}

class Failed extends Error {}

const lastLine = (out: string) => out.split('\n').filter(Boolean).at(-1) ?? '';

/** The tree as read through the kernel, compared with TREE. */
async function readBack(mount: Mount): Promise<void> {
  const seen = new Set<string>();
  for await (const e of walk(mount, Buffer.from('/'), { dataLimit: 1 << 20 })) {
    const rel = e.path.toString().slice(1);
    const want = TREE[rel];
    if (!want || kindOf(e.stat.mode) !== 'file') continue;
    if (!e.data?.equals(want)) throw new Failed(`read back: /${rel} differs`);
    seen.add(rel);
  }
  const missing = Object.keys(TREE).filter((p) => !seen.has(p));
  if (missing.length) throw new Failed(`read back: ${missing.map((p) => `/${p}`).join(', ')} missing`);
}

/** One filesystem's round trip, in dir; never throws for the filesystem's faults. */
export async function checkOne(kernel: Kernel, c: FsCase, dir: string, signal: AbortSignal): Promise<CheckResult> {
  const t0 = Date.now();
  const readOnly = c.make.sizeMiB === undefined;
  const steps = { made: false, written: readOnly ? null : false, checked: c.check ? false : null, readBack: false };
  const tools = { package: c.pkg, version: packageVersion(c.pkg), mkfs: c.make.cmd, checker: c.check?.cmd };
  const result = (outcome: Outcome, detail: string): CheckResult => ({ type: c.type, outcome, detail, ms: Date.now() - t0, steps, tools });
  const missing = [c.make.cmd, c.check?.cmd].filter((cmd): cmd is string => !!cmd && !have(cmd));
  if (missing.length) return result('skipped', `${missing.join(', ')} not found (Debian package ${c.pkg})`);

  const tree = join(dir, 'tree');
  for (const [rel, data] of Object.entries(TREE)) {
    mkdirSync(join(tree, rel, '..'), { recursive: true });
    writeFileSync(join(tree, rel), data);
  }
  const img = join(dir, `${c.type}.img`);
  try {
    if (!readOnly) {
      closeSync(openSync(img, 'w'));
      truncateSync(img, (c.make.sizeMiB as number) << 20);
    }
    const made = tool(c.make.cmd, c.make.args(img, tree));
    if (!made.ok) throw new Failed(`${c.make.cmd}: ${lastLine(made.out)}`);
    steps.made = true;
    if (!readOnly) {
      const m = await kernel.mount(img, { fsType: c.type, readOnly: false });
      try {
        await copyIn(m, [`${tree}/.`], '/', { signal });
      } finally {
        await m.unmount();
      }
      steps.written = true;
    }
    if (c.check) {
      const checked = tool(c.check.cmd, c.check.args(img));
      if (!checked.ok || !(c.check.clean?.(checked.out) ?? true))
        throw new Failed(`${c.check.cmd} found problems: ${lastLine(checked.out)}`);
      steps.checked = true;
    }
    const m = await kernel.mount(img, { fsType: c.type, readOnly: true });
    try {
      await readBack(m);
    } finally {
      await m.unmount();
    }
    steps.readBack = true;
    const how = readOnly ? `made by ${c.make.cmd}` : `made by ${c.make.cmd}, written`;
    return result('ok', `${how}, ${c.check ? `${c.check.cmd} clean, ` : 'no checker, '}read back`);
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    return result('failed', e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e));
  } finally {
    rmSync(img, { force: true });
    rmSync(tree, { recursive: true, force: true });
  }
}

/** Every case asked for (all when types is empty), in a scratch directory. */
export async function mkfsCheck(
  kernel: Kernel,
  types: string[],
  signal: AbortSignal,
  report: (r: CheckResult) => void,
  scratch: string,
): Promise<CheckResult[]> {
  const cases = types.length ? CASES.filter((c) => types.includes(c.type)) : CASES;
  const dir = mkdtempSync(join(scratch, 'lklfs-mkfs-check-'));
  const results: CheckResult[] = [];
  try {
    for (const c of cases) {
      const r = await checkOne(kernel, c, dir, signal);
      report(r);
      results.push(r);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
