/**
 * Copying paths out of a mounted image onto the host, as `cp -a` would:
 * file data (holes kept), directories, symlinks, hard links, fifos and
 * device nodes, with mode, timestamps to the nanosecond, extended
 * attributes and, when running as root, owners. Only reads the image.
 * Host names are bytes throughout (Buffer paths): names that are not
 * UTF-8 arrive as they are.
 *
 * The binding does the work in steps of a few thousand entries, one trip
 * each, walking the image and making the host's entries on a kernel
 * thread (see native/src/tree_out.cc). This decides what the binding
 * cannot: what to do about an entry already on the host, what the host
 * may refuse, and what to tell the user.
 */
import { lstat, realpath, stat, unlink } from 'node:fs/promises';
import { getSystemErrorName } from 'node:util';
import { errnoError, isSystemError, type TreeOutStep, type TreeResume } from '../kernel/binding.js';
import { describe, type Mount } from '../kernel/kernel.js';
import { UsageError } from '../errors.js';
import type { CopyTotals } from './copy-in.js';
import { kindOf, type FileKind } from './modes.js';
import { resolve, statEntry, type ImageEntry } from './walk-image.js';
import { inTheWay } from './steps.js';
import { MetadataWarnings } from './warnings.js';

export interface CopyOutOptions {
  /** Owner and group for everything copied, instead of the image's. */
  uid?: number;
  gid?: number;
  /** Copy extended attributes (default true). */
  xattrs?: boolean;
  /** DEST must be a directory already, even for one source (LKL's cpfromfs). */
  into?: boolean;
  /** Called after each step, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Stops the copy at the next entry. */
  signal?: AbortSignal;
}

const SLASH = 0x2f;
const EPERM = -1;
const EEXIST = -17;

/** Entries not copied at all, by kind, and why. */
const SKIPPED: Partial<Record<FileKind, { noun: string; why: string }>> = {
  char: { noun: 'character device', why: 'creating device nodes needs root (CAP_MKNOD)' },
  block: { noun: 'block device', why: 'creating device nodes needs root (CAP_MKNOD)' },
  fifo: { noun: 'fifo', why: 'the host did not permit creating fifos' },
  // cp -a would make one, but nothing would be listening on it.
  socket: { noun: 'socket', why: 'a copied socket has nobody listening' },
};

function join(dir: Buffer, name: Buffer): Buffer {
  return dir.length && dir[dir.length - 1] === SLASH ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

function baseName(path: Buffer): Buffer {
  return path.subarray(path.lastIndexOf(SLASH) + 1);
}

/** The kind of what is at a host path, undefined when nothing is. */
async function hostKind(path: Buffer, follow: boolean): Promise<FileKind | undefined> {
  try {
    return kindOf(Number((await (follow ? stat : lstat)(path)).mode));
  } catch (e) {
    if (isSystemError(e) && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

class CopyOut {
  totals: CopyTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0 };
  readonly warnings = new MetadataWarnings();
  private skipped = new Map<FileKind, { count: number; example: string }>();

  constructor(
    private readonly mount: Mount,
    private readonly opts: CopyOutOptions,
  ) {}

  /** Copies each [kernel path, host path] root, directories recursively. */
  async copy(roots: [Buffer, Buffer][]): Promise<void> {
    const job = new this.mount.kernel.native.TreeCopyOut(roots, {
      uid: this.opts.uid ?? -1,
      gid: this.opts.gid ?? -1,
      xattrs: this.opts.xattrs !== false,
      // Owners, devices and privileged attributes only as root, like cp -a.
      root: process.geteuid?.() === 0,
    });
    try {
      let resume: TreeResume | undefined;
      for (;;) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        const step = await job.step(resume);
        this.report(step);
        if (step.stop) resume = await this.settle(step.stop);
        else if (step.done) break;
        else resume = undefined;
      }
    } finally {
      await job.close();
    }
  }

  private report(step: TreeOutStep): void {
    this.totals = step.totals;
    for (const [what, path, errno] of step.warnings) this.warnings.add(what, path.toString(), getSystemErrorName(errno));
    for (const [mode, path] of step.skipped) this.skip(kindOf(mode), path);
    this.opts.progress?.(this.totals);
  }

  /**
   * Where a step stopped: an entry in the way on the host is replaced, or
   * merged into when both are directories, as cp -a does (see inTheWay);
   * a fifo or device the host will not have (no CAP_MKNOD in a user
   * namespace, a filesystem without them) is skipped, like devices as
   * non-root; anything else fails the copy.
   */
  private async settle(stop: NonNullable<TreeOutStep['stop']>): Promise<TreeResume> {
    const coming = kindOf(stop.mode);
    if (stop.create && stop.errno === EEXIST) {
      const there = (await hostKind(stop.path, false)) as FileKind;
      if (inTheWay(there, coming, stop.path.toString()) === 'merge') return 'merge';
      await unlink(stop.path);
      return 'retry';
    }
    if (stop.create && stop.errno === EPERM && stop.syscall === 'mknod') {
      this.skip(coming, stop.source);
      return 'skip';
    }
    throw errnoError(stop.errno, stop.syscall, stop.path.toString());
  }

  private skip(kind: FileKind, kernelPath: Buffer): void {
    const s = this.skipped.get(kind);
    if (s) s.count++;
    else this.skipped.set(kind, { count: 1, example: `${this.mount.image}:${this.mount.imagePath(kernelPath).toString()}` });
  }

  /** Metadata not kept, then entries not copied: one line per kind. */
  summary(): string[] {
    const skipped = [...this.skipped].map(([kind, s]) => {
      const { noun, why } = SKIPPED[kind] as { noun: string; why: string };
      return `skipped ${s.count} ${noun}${s.count === 1 ? '' : 's'} (${why}), e.g. ${s.example}`;
    });
    return [...this.warnings.summary(), ...skipped];
  }
}

/**
 * Copies each image path in sources to the host (like `cp -a SRC...
 * DEST`): into DEST when it is a directory, as DEST when there is one
 * source and DEST does not exist. A source named "dir/." (or "/") copies
 * dir's contents, including dir's own metadata onto DEST.
 */
export async function copyOut(
  mount: Mount,
  sources: (string | Buffer)[],
  dest: string,
  opts: CopyOutOptions = {},
): Promise<{ totals: CopyTotals; warnings: string[] }> {
  const job = new CopyOut(mount, opts);
  let destPath = Buffer.from(dest);
  const destKind = await hostKind(destPath, true).catch((e: unknown) => {
    throw mount.explain(e);
  });
  if (destKind !== 'dir' && (sources.length > 1 || opts.into))
    throw new UsageError(`destination ${dest} ${destKind ? 'is not a directory' : 'does not exist'}`);
  // DEST a symlink to a directory: its contents merge into the directory,
  // and DEST's metadata goes onto the directory, not onto the link.
  if (destKind === 'dir' && (await lstat(destPath)).isSymbolicLink()) destPath = await realpath(destPath, { encoding: 'buffer' });

  // Every source checked before anything is copied.
  const roots: [Buffer, Buffer][] = [];
  for (const source of sources) {
    let path: Buffer;
    try {
      // Symlinks on the way are followed inside the image; the last is copied as itself.
      path = await resolve(mount, source, false);
    } catch (e) {
      throw mount.explain(e);
    }
    let top: ImageEntry;
    try {
      top = await statEntry(mount, path);
    } catch (e) {
      if (isSystemError(e) && ['ENOENT', 'ENOTDIR'].includes(e.code))
        throw new UsageError(`cannot copy ${mount.image}:${path.toString()}: ${describe(e)}`);
      throw mount.explain(e);
    }
    const name = baseName(path);
    const given = source.toString();
    const contentsOnly = name.length === 0 || given === '.' || given.endsWith('/.');
    if (contentsOnly && kindOf(top.stat.mode) !== 'dir')
      throw new UsageError(`cannot copy ${mount.image}:${path.toString()}/.: not a directory`);
    roots.push([top.kernelPath, destKind !== 'dir' || contentsOnly ? destPath : join(destPath, name)]);
  }
  try {
    await job.copy(roots);
  } catch (e) {
    throw mount.explain(e);
  }
  return { totals: job.totals, warnings: job.summary() };
}
