/**
 * Copying host trees into a mounted image, as `cp -a` would: file data
 * (holes kept), directories, symlinks, hard links, device nodes, fifos and
 * sockets, with owner, mode, timestamps to the nanosecond and extended
 * attributes (capabilities, SELinux labels, ACLs).
 *
 * The work goes to the kernel a directory at a time: one trip lists the
 * host directory, one batch creates its entries with their metadata (see
 * steps.ts); a directory's own times are set after its contents, which
 * would change them.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { isSystemError, type BatchOp, type KStat } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { UsageError } from '../errors.js';
import { kindOf, splitHostDev, type FileKind } from './modes.js';
import { resolve } from './walk-image.js';
import { inTheWay, runSteps, type Step as StepOf, type StepHooks } from './steps.js';
import { MetadataWarnings } from './warnings.js';

export interface CopyInOptions {
  /** Owner and group for everything copied, instead of the host's. */
  uid?: number;
  gid?: number;
  /** Copy extended attributes (default true). */
  xattrs?: boolean;
  /** An SELinux label (security.selinux) for everything copied, instead of the source's. */
  selinux?: Buffer;
  /** DEST must be a directory already, even for one source (LKL's cptofs). */
  into?: boolean;
  /** Called after each batch, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Called with each entry's image path once it is created. */
  created?: (imagePath: Buffer) => void;
  /** Stops the copy at the next batch. */
  signal?: AbortSignal;
  /**
   * The filesystem is full (ENOSPC) with copied bytes of file data done,
   * at an entry of entryBytes on the host, for the attempt-th time in a
   * row: true once there is more room (see GrowOnFull), false to fail.
   */
  full?: (copied: number, entryBytes: number, attempt: number) => Promise<boolean>;
}

export interface CopyTotals {
  entries: number;
  files: number;
  bytes: number;
  hardlinks: number;
}

/** Entries per batch: bounds memory and the time an abort waits. */
const BATCH_ENTRIES = 256;

interface Source {
  host: Buffer;
  kernel: Buffer;
  stat: KStat;
  /** Symlinks: the target's bytes. */
  target?: Buffer;
}

type Step = StepOf<Source>;

const KIND_NAMES: Record<FileKind, string> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  char: 'character device',
  block: 'block device',
  fifo: 'fifo',
  socket: 'socket',
};

const slash = Buffer.from('/');
const join = (dir: Buffer, name: Buffer) =>
  Buffer.concat(dir[dir.length - 1] === 0x2f ? [dir, name] : [dir, slash, name]);

class CopyIn {
  readonly totals: CopyTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0 };
  readonly warnings = new MetadataWarnings();
  /** dev:ino of host files with several links -> their kernel path. */
  private links = new Map<string, Buffer>();

  constructor(
    private readonly mount: Mount,
    private readonly opts: CopyInOptions,
  ) {}

  private get k() {
    return this.mount.kernel.native;
  }

  /** Copies sources to their kernel paths, directories recursively. */
  async copy(sources: Source[]): Promise<void> {
    for (let i = 0; i < sources.length; i += BATCH_ENTRIES) {
      const chunk = sources.slice(i, i + BATCH_ENTRIES);
      await this.run(chunk.flatMap((s) => this.steps(s)));
      this.count(chunk);
      for (const dir of chunk.filter((s) => kindOf(s.stat.mode) === 'dir')) {
        const entries = await this.k.hostReaddirStat(dir.host);
        await this.copy(
          entries.map((e) => ({ host: join(dir.host, e.name), kernel: join(dir.kernel, e.name), stat: e.stat, target: e.target })),
        );
        await this.run(this.metadata(dir));
      }
    }
  }

  /** Creating s, then its metadata (a directory's comes after its contents). */
  private steps(s: Source): Step[] {
    const create = (op: BatchOp): Step => ({ op, what: 'create', source: s, create: true });
    switch (kindOf(s.stat.mode)) {
      case 'dir':
        return [create(['mkdir', false, s.kernel, 0o700])];
      case 'file': {
        if (s.stat.nlink > 1) {
          const key = `${s.stat.dev}:${s.stat.ino}`;
          const first = this.links.get(key);
          if (first?.equals(s.kernel)) return []; // the same source given twice
          if (first) {
            this.totals.hardlinks++;
            return [create(['link', false, s.kernel, first])];
          }
          this.links.set(key, s.kernel);
        }
        return [create(['copyIn', false, s.kernel, s.host, 0o600]), ...this.metadata(s)];
      }
      case 'symlink':
        return [create(['symlink', false, s.kernel, s.target as Buffer]), ...this.metadata(s)];
      default:
        return [create(['mknod', false, s.kernel, s.stat.mode, s.stat.rdevMajor, s.stat.rdevMinor]), ...this.metadata(s)];
    }
  }

  /**
   * Owner first (it clears set-id bits), then mode, then extended
   * attributes (a chown drops security.capability), times last. All are
   * tolerant: metadata a filesystem cannot hold (owners on vfat) becomes a
   * warning, not a failed copy.
   */
  private metadata(s: Source): Step[] {
    const st = s.stat;
    const step = (what: string, op: BatchOp): Step => ({ op, what, source: s });
    const steps = [step('owner', ['lchown', true, s.kernel, this.opts.uid ?? st.uid, this.opts.gid ?? st.gid])];
    if (kindOf(st.mode) !== 'symlink') steps.push(step('mode', ['chmod', true, s.kernel, st.mode & 0o7777]));
    if (this.opts.xattrs !== false) steps.push(step('extended attributes', ['copyXattrs', true, s.kernel, s.host]));
    if (this.opts.selinux) steps.push(step('SELinux label', ['setXattr', true, s.kernel, 'security.selinux', this.opts.selinux]));
    steps.push(step('timestamps', ['lutimes', true, s.kernel, st.atimeNs, st.mtimeNs]));
    return steps;
  }

  private run(steps: Step[]): Promise<void> {
    return runSteps(this.k, steps, this.hooks, this.warnings, this.opts.signal).catch((e: unknown) => {
      throw this.mount.explain(e);
    });
  }

  private readonly hooks: StepHooks<Source> = {
    show: (s) => this.show(s.kernel),
    replace: (step) => this.replace(step),
    // What the filesystem cannot hold at all (symlinks, device nodes,
    // fifos or hard links on FAT): left out, one warning per kind.
    refused: (step) => {
      const kind = step.op[0] === 'link' ? 'hard link' : KIND_NAMES[kindOf(step.source.stat.mode)];
      if (step.op[0] === 'mkdir' || step.op[0] === 'copyIn') return false;
      this.warnings.add(kind, this.show(step.source.kernel), 'EPERM');
      return true;
    },
    done: (step, ret) => {
      if (step.op[0] === 'copyIn') this.totals.bytes += ret;
    },
    full: (step, attempt) =>
      this.opts.full ? this.opts.full(this.totals.bytes, step.source.stat.blocks * 512, attempt) : Promise.resolve(false),
  };

  /** An entry is in the way: merged into, or removed (see inTheWay). */
  private async replace(step: Step): Promise<'merged' | 'removed'> {
    const there = kindOf((await this.k.lstat(step.source.kernel)).mode);
    const where = `${this.mount.image}:${this.show(step.source.kernel)}`;
    if (inTheWay(there, kindOf(step.source.stat.mode), where) === 'merge') return 'merged';
    await this.k.unlink(step.source.kernel);
    return 'removed';
  }

  private count(chunk: Source[]): void {
    for (const s of chunk) {
      this.totals.entries++;
      if (kindOf(s.stat.mode) === 'file') this.totals.files++;
      this.opts.created?.(this.mount.imagePath(s.kernel));
    }
    this.opts.progress?.(this.totals);
  }

  private show(kernelPath: Buffer): string {
    return this.mount.imagePath(kernelPath).toString();
  }
}


/**
 * Copies each host source into the image directory dest (like `cp -a
 * SRC... DEST`): a source named "dir/." copies dir's contents, including
 * dir's own metadata onto dest. With one source and no dest in the image
 * yet, the source is copied as dest.
 */
export async function copyIn(
  mount: Mount,
  sources: (string | Buffer)[],
  dest: string,
  opts: CopyInOptions = {},
): Promise<{ totals: CopyTotals; warnings: string[] }> {
  const k = mount.kernel.native;
  // A destination that is (or goes through) a symlink to a directory in the
  // image, as /lib -> usr/lib, is that directory: cp -a copies into it too.
  const destPath = mount.path(await resolve(mount, dest, true).catch((e: unknown) => Promise.reject(mount.explain(e))));
  let destKind: FileKind | undefined;
  try {
    destKind = kindOf((await k.lstat(destPath)).mode);
  } catch (e) {
    if (!isSystemError(e) || e.code !== 'ENOENT') throw mount.explain(e);
  }
  const destIsDir = destKind === 'dir';
  if (!destIsDir && (sources.length > 1 || opts.into))
    throw new UsageError(`${mount.image}: destination ${dest} ${destKind ? 'is not a directory' : 'does not exist'} in the image`);

  const roots: Source[] = [];
  for (const source of sources) {
    const host = Buffer.from(source);
    let st;
    let target: Buffer | undefined;
    try {
      st = await lstat(host, { bigint: true });
      if (st.isSymbolicLink()) target = await readlink(host, { encoding: 'buffer' });
    } catch (e) {
      throw new UsageError(`cannot copy ${host.toString()}: ${isSystemError(e) ? e.code : String(e)}`);
    }
    // Names are bytes: latin1 keeps every one through basename.
    const name = basename(host.toString('latin1'));
    const contentsOnly = name === '.';
    const kernel = !destIsDir || contentsOnly ? destPath : join(destPath, Buffer.from(name, 'latin1'));
    roots.push({ host, kernel, stat: hostStat(st), target });
  }
  const job = new CopyIn(mount, opts);
  await job.copy(roots);
  return { totals: job.totals, warnings: job.warnings.summary() };
}

/** Node's bigint lstat in the binding's shape. */
function hostStat(st: BigIntStats): KStat {
  return {
    dev: Number(st.dev),
    ino: st.ino,
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    ...splitHostDev(st.rdev),
    size: Number(st.size),
    blocks: Number(st.blocks),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}
