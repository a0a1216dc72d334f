/**
 * Copying host trees into a mounted image, as `cp -a` would: file data
 * (holes kept), directories, symlinks, hard links, device nodes, fifos and
 * sockets, with owner, mode, timestamps to the nanosecond and extended
 * attributes (capabilities, SELinux labels, ACLs).
 *
 * The binding does the work in steps of a few thousand entries, one trip
 * each, while a thread of its own reads the host tree ahead (see
 * native/src/tree_in.cc). This decides what the binding cannot: what to
 * do about an entry already in the image or a filesystem that is full,
 * what a filesystem may refuse, and what to tell the user.
 */
import { lstat } from 'node:fs/promises';
import { basename } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { isSystemError, type TreeResume, type TreeStep } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { UsageError } from '../errors.js';
import { kindOf, type FileKind } from './modes.js';
import { resolve } from './walk-image.js';
import { settleInImage } from './steps.js';
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
  /** Called after each step, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Called with each entry's image path once it is created. */
  created?: (imagePath: Buffer) => void;
  /** Stops the copy at the next step. */
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

const ENOSPC = -28;

const slash = Buffer.from('/');
const join = (dir: Buffer, name: Buffer) =>
  Buffer.concat(dir[dir.length - 1] === 0x2f ? [dir, name] : [dir, slash, name]);

class CopyIn {
  totals: CopyTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0 };
  readonly warnings = new MetadataWarnings();
  /** Stops in a row at a full filesystem with nothing copied in between. */
  private fullAttempts = 0;

  constructor(
    private readonly mount: Mount,
    private readonly opts: CopyInOptions,
  ) {}

  private get k() {
    return this.mount.kernel.native;
  }

  /** Copies each [host path, kernel path] root, directories recursively. */
  async copy(roots: [Buffer, Buffer][]): Promise<void> {
    const job = new this.k.TreeCopyIn(roots, {
      uid: this.opts.uid ?? -1,
      gid: this.opts.gid ?? -1,
      xattrs: this.opts.xattrs !== false,
      selinux: this.opts.selinux,
      listCreated: this.opts.created !== undefined,
    });
    try {
      let resume: TreeResume | undefined;
      for (;;) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        const step = await job.step(resume);
        this.report(step);
        if (step.stop) resume = await this.settle(step.stop, step.taken);
        else if (step.done) break;
        else resume = undefined;
      }
    } finally {
      await job.close();
    }
  }

  private report(step: TreeStep): void {
    this.totals = step.totals;
    for (const [what, path, errno] of step.warnings) this.warnings.add(what, this.show(path), getSystemErrorName(errno));
    for (const path of step.created) this.opts.created?.(this.mount.imagePath(path));
    this.opts.progress?.(this.totals);
  }

  /**
   * Where a step stopped: a full filesystem (ENOSPC) is given room by
   * opts.full (which grows the image) and the call that failed is tried
   * again, the copy going on where it stopped; the rest as settleInImage
   * decides (an entry in the way, what the filesystem cannot hold).
   */
  private async settle(stop: NonNullable<TreeStep['stop']>, taken: number): Promise<TreeResume> {
    if (stop.errno === ENOSPC && !stop.host && this.opts.full) {
      this.fullAttempts = taken === 0 ? this.fullAttempts + 1 : 1;
      if (await this.opts.full(this.totals.bytes, stop.bytes, this.fullAttempts)) return 'retry';
    } else this.fullAttempts = 0;
    return settleInImage(this.mount, stop, this.warnings);
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

  const roots: [Buffer, Buffer][] = [];
  for (const source of sources) {
    const host = Buffer.from(source);
    try {
      await lstat(host);
    } catch (e) {
      throw new UsageError(`cannot copy ${host.toString()}: ${isSystemError(e) ? e.code : String(e)}`);
    }
    // Names are bytes: latin1 keeps every one through basename.
    const name = basename(host.toString('latin1'));
    const contentsOnly = name === '.';
    const kernel = !destIsDir || contentsOnly ? destPath : join(destPath, Buffer.from(name, 'latin1'));
    roots.push([host, kernel]);
  }
  const job = new CopyIn(mount, opts);
  await job.copy(roots);
  return { totals: job.totals, warnings: job.warnings.summary() };
}
