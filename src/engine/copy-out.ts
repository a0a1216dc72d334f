/**
 * Copying paths out of a mounted image onto the host, as `cp -a` would:
 * file data (holes kept), directories, symlinks, hard links, fifos and
 * device nodes, with mode, timestamps to the nanosecond, extended
 * attributes and, when running as root, owners. Only reads the image.
 * Host names are bytes throughout (Buffer paths): names that are not
 * UTF-8 arrive as they are.
 */
import { lstat, realpath, stat, unlink } from 'node:fs/promises';
import { isSystemError, type BatchOp } from '../kernel/binding.js';
import { describe, type Mount } from '../kernel/kernel.js';
import { UsageError } from '../errors.js';
import type { CopyTotals } from './copy-in.js';
import { kindOf, type FileKind } from './modes.js';
import { children, resolve, statEntry, type ImageEntry } from './walk-image.js';
import { inTheWay, runSteps, type Step as StepOf, type StepHooks } from './steps.js';
import { MetadataWarnings } from './warnings.js';
import { fileOwn } from './xattrs.js';

export interface CopyOutOptions {
  /** Owner and group for everything copied, instead of the image's. */
  uid?: number;
  gid?: number;
  /** Copy extended attributes (default true). */
  xattrs?: boolean;
  /** DEST must be a directory already, even for one source (LKL's cpfromfs). */
  into?: boolean;
  /** Called after each entry, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Stops the copy at the next entry. */
  signal?: AbortSignal;
}

const SLASH = 0x2f;


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

/** Entries per batch: bounds memory and the time an abort waits. */
const BATCH_ENTRIES = 256;

/** An image entry and where on the host it goes. */
interface Out {
  e: ImageEntry;
  dst: Buffer;
}

type Step = StepOf<Out>;

class CopyOut {
  readonly totals: CopyTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0 };
  readonly warnings = new MetadataWarnings();
  private skipped = new Map<FileKind, { count: number; example: string }>();
  /** dev:ino of image files with several links -> their first host path. */
  private links = new Map<string, Buffer>();
  /** Owners, devices and privileged attributes only as root, like cp -a. */
  private readonly root = process.geteuid?.() === 0;

  constructor(
    private readonly mount: Mount,
    private readonly opts: CopyOutOptions,
  ) {}

  private get k() {
    return this.mount.kernel.native;
  }

  /**
   * Copies entries to their host paths, a batch of host calls per
   * directory (see steps.ts); a directory's own times are set after its
   * contents, which would change them.
   */
  async copy(outs: Out[]): Promise<void> {
    for (let i = 0; i < outs.length; i += BATCH_ENTRIES) {
      const chunk = outs.slice(i, i + BATCH_ENTRIES);
      const steps = chunk.map((o) => this.steps(o));
      await this.run(steps.flat());
      this.count(steps.filter((s) => s.length > 0).length); // not the skipped
      for (const dir of chunk.filter((o) => kindOf(o.e.stat.mode) === 'dir')) {
        const kids = await children(this.mount, dir.e, { xattrs: this.opts.xattrs !== false });
        await this.copy(kids.map((c) => ({ e: c, dst: join(dir.dst, baseName(c.path)) })));
        await this.run(this.metadata(dir));
      }
    }
  }

  /** Creating o, then its metadata (a directory's comes after its contents). */
  private steps(o: Out): Step[] {
    const { e, dst } = o;
    const kind = kindOf(e.stat.mode);
    const device = kind === 'char' || kind === 'block';
    // Skipped before anything at dst is replaced: the host keeps what it had.
    if (kind === 'socket' || (device && !this.root)) {
      this.skip(kind, e);
      return [];
    }
    const create = (op: BatchOp): Step => ({ op, what: 'create', source: o, create: true });
    if (kind !== 'dir' && e.stat.nlink > 1) {
      const key = `${e.stat.dev}:${e.stat.ino}`;
      const first = this.links.get(key);
      if (first?.equals(dst)) return []; // the same source given twice
      if (first) {
        this.totals.hardlinks++;
        return [create(['hostLink', false, dst, first])];
      }
      this.links.set(key, dst);
    }
    switch (kind) {
      case 'dir':
        return [create(['hostMkdir', false, dst, 0o700])];
      case 'file':
        this.totals.files++;
        return [create(['copyOut', false, dst, e.kernelPath, 0o600]), ...this.metadata(o)];
      case 'symlink':
        return [create(['hostSymlink', false, dst, e.target as Buffer]), ...this.metadata(o)];
      default:
        return [create(['hostMknod', false, dst, e.stat.mode, e.stat.rdevMajor, e.stat.rdevMinor]), ...this.metadata(o)];
    }
  }

  /**
   * Owner first (it clears set-id bits), then mode, then extended
   * attributes (a chown drops security.capability), times last. Metadata
   * the host cannot hold is a warning, not a failed copy.
   */
  private metadata(o: Out): Step[] {
    const { e, dst } = o;
    const { uid, gid } = this.opts;
    const step = (what: string, op: BatchOp): Step => ({ op, what, source: o });
    const steps: Step[] = [];
    if (this.root) steps.push(step('owner', ['hostLchown', true, dst, uid ?? e.stat.uid, gid ?? e.stat.gid]));
    else if (uid !== undefined || gid !== undefined) steps.push(step('owner', ['hostLchown', true, dst, uid ?? -1, gid ?? -1]));
    if (kindOf(e.stat.mode) !== 'symlink') steps.push(step('mode', ['hostChmod', true, dst, e.stat.mode & 0o7777]));
    for (const x of e.xattrs ?? [])
      if (this.wanted(x.name)) steps.push(step(`extended attribute ${x.name}`, ['hostSetXattr', true, dst, x.name, x.value]));
    steps.push(step('timestamps', ['hostLutimes', true, dst, e.stat.atimeNs, e.stat.mtimeNs]));
    return steps;
  }

  /**
   * Not root: user attributes and ACLs (a file's owner may set those), not
   * security.* (capabilities, SELinux labels) or trusted.*, which need
   * privileges: left out silently, as cp -a does.
   */
  private wanted(name: string): boolean {
    if (!fileOwn(name)) return false;
    return this.root || name.startsWith('user.') || name.startsWith('system.posix_acl_');
  }

  private run(steps: Step[]): Promise<void> {
    return runSteps(this.k, steps, this.hooks, this.warnings, this.opts.signal);
  }

  private readonly hooks: StepHooks<Out> = {
    show: (o) => o.dst.toString(),
    done: (step, ret) => {
      if (step.op[0] === 'copyOut') this.totals.bytes += ret;
    },
    // A fifo or device the host will not have (no CAP_MKNOD in a user
    // namespace, a filesystem without them): skipped, like devices as
    // non-root.
    refused: (step) => {
      const kind = kindOf(step.source.e.stat.mode);
      if (step.op[0] !== 'hostMknod') return false;
      this.skip(kind, step.source.e);
      return true;
    },
    replace: async (step) => {
      const there = (await hostKind(step.source.dst, false)) as FileKind;
      if (inTheWay(there, kindOf(step.source.e.stat.mode), step.source.dst.toString()) === 'merge') return 'merged';
      await unlink(step.source.dst);
      return 'removed';
    },
  };

  private skip(kind: FileKind, e: ImageEntry): void {
    const s = this.skipped.get(kind);
    if (s) s.count++;
    else this.skipped.set(kind, { count: 1, example: `${this.mount.image}:${e.path.toString()}` });
  }

  private count(entries: number): void {
    this.totals.entries += entries;
    this.opts.progress?.(this.totals);
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
      top = await statEntry(mount, path, { xattrs: opts.xattrs !== false });
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
    const target = destKind !== 'dir' || contentsOnly ? destPath : join(destPath, name);
    try {
      await job.copy([{ e: top, dst: target }]);
    } catch (e) {
      throw mount.explain(e);
    }
  }
  return { totals: job.totals, warnings: job.summary() };
}
