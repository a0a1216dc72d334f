/**
 * Copying paths out of a mounted image onto the host, as `cp -a` would:
 * file data (holes kept), directories, symlinks, hard links, fifos and
 * device nodes, with mode, timestamps to the nanosecond, extended
 * attributes and, when running as root, owners. Only reads the image.
 * Host names are bytes throughout (Buffer paths): names that are not
 * UTF-8 arrive as they are.
 */
import { chmod, lchown, link, lstat, mkdir, realpath, stat, symlink, unlink } from 'node:fs/promises';
import { isSystemError } from '../kernel/binding.js';
import { describe, type Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import type { CopyTotals } from './copy-in.js';
import { makeNode } from './host-nodes.js';
import { kindOf, type FileKind } from './modes.js';
import { children, imagePath, statEntry, type ImageEntry } from './walk-image.js';
import { MetadataWarnings } from './warnings.js';

export interface CopyOutOptions {
  /** Owner and group for everything copied, instead of the image's. */
  uid?: number;
  gid?: number;
  /** Copy extended attributes (default true). */
  xattrs?: boolean;
  /** Called after each entry, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Stops the copy at the next entry. */
  signal?: AbortSignal;
}

const SLASH = 0x2f;

/** Host refusals that lose one piece of metadata rather than fail the copy. */
const REFUSED = ['EPERM', 'EOPNOTSUPP', 'ENOTSUP'];
/** Owners also: EINVAL is an id the host cannot map (a user namespace). */
const OWNER_REFUSED = [...REFUSED, 'EINVAL'];

/**
 * Attributes that are no file's own (what cp -a skips, after attr's
 * xattr.conf): XFS shows its ACLs to root as trusted.SGI_ACL_* besides
 * system.posix_acl_* (copied, they would be a second, stray ACL), and
 * security.evm is a signature only the kernel that made it may write.
 */
const NOT_COPIED = /^(trusted\.SGI_|xfsroot\.|security\.evm$)/;

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

  /** Copies image entry e to host path dst, replacing what is there. */
  async entry(e: ImageEntry, dst: Buffer): Promise<void> {
    if (this.opts.signal?.aborted) throw this.opts.signal.reason;
    const kind = kindOf(e.stat.mode);
    const device = kind === 'char' || kind === 'block';
    // Before anything at dst is replaced: the host keeps what it had.
    if (kind === 'socket' || (device && !this.root)) return this.skip(kind, e);
    const existing = await hostKind(dst, false);
    if (existing !== undefined && !(kind === 'dir' && existing === 'dir')) {
      if (existing === 'dir') throw new LklfsError(`cannot overwrite directory ${dst.toString()} with a non-directory`);
      await unlink(dst);
    }
    const linkKey = kind !== 'dir' && e.stat.nlink > 1 ? `${e.stat.dev}:${e.stat.ino}` : undefined;
    const first = linkKey && this.links.get(linkKey);
    if (first) {
      await link(first, dst);
      this.totals.hardlinks++;
      this.count();
      return;
    }
    switch (kind) {
      case 'dir':
        if (existing === undefined) await mkdir(dst, 0o700);
        for (const c of await children(this.mount, e, { xattrs: this.opts.xattrs !== false }))
          await this.entry(c, join(dst, baseName(c.path)));
        break;
      case 'file':
        this.totals.bytes += await this.k.copyOut(e.kernelPath, dst, 0o600);
        this.totals.files++;
        break;
      case 'symlink':
        await symlink(e.target as Buffer, dst);
        break;
      default:
        if (!(await makeNode(dst, kind, e.stat.rdevMajor, e.stat.rdevMinor))) return this.skip(kind, e);
    }
    if (linkKey) this.links.set(linkKey, dst);
    await this.metadata(e, dst, kind === 'symlink');
    this.count();
  }

  /**
   * Owner first (it clears set-id bits), then mode, then extended
   * attributes (a chown drops security.capability), times last.
   */
  private async metadata(e: ImageEntry, dst: Buffer, symlink: boolean): Promise<void> {
    const { uid, gid } = this.opts;
    if (this.root) await this.tolerate('owner', dst, lchown(dst, uid ?? e.stat.uid, gid ?? e.stat.gid), OWNER_REFUSED);
    else if (uid !== undefined || gid !== undefined)
      await this.tolerate('owner', dst, lchown(dst, uid ?? -1, gid ?? -1), OWNER_REFUSED);
    if (!symlink) await this.tolerate('mode', dst, chmod(dst, e.stat.mode & 0o7777));
    for (const x of e.xattrs ?? []) {
      if (this.wanted(x.name))
        await this.tolerate(`extended attribute ${x.name}`, dst, this.k.hostSetXattr(dst, x.name, x.value));
    }
    await this.tolerate('timestamps', dst, this.k.hostLutimes(dst, e.stat.atimeNs, e.stat.mtimeNs));
  }

  /**
   * Not root: user attributes and ACLs (a file's owner may set those), not
   * security.* (capabilities, SELinux labels) or trusted.*, which need
   * privileges: left out silently, as cp -a does.
   */
  private wanted(name: string): boolean {
    if (NOT_COPIED.test(name)) return false;
    return this.root || name.startsWith('user.') || name.startsWith('system.posix_acl_');
  }

  /**
   * Metadata the host cannot hold (attributes its filesystem does not
   * know, owners it may not set) is reported once per kind at the end
   * rather than failing the copy.
   */
  private async tolerate(what: string, dst: Buffer, call: Promise<unknown>, codes = REFUSED): Promise<void> {
    try {
      await call;
    } catch (e) {
      if (isSystemError(e) && codes.includes(e.code)) {
        this.warnings.add(what, dst.toString(), e.code);
        return;
      }
      throw e;
    }
  }

  private skip(kind: FileKind, e: ImageEntry): void {
    const s = this.skipped.get(kind);
    if (s) s.count++;
    else this.skipped.set(kind, { count: 1, example: `${this.mount.image}:${e.path.toString()}` });
  }

  private count(): void {
    this.totals.entries++;
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
  sources: string[],
  dest: string,
  opts: CopyOutOptions = {},
): Promise<{ totals: CopyTotals; warnings: string[] }> {
  const job = new CopyOut(mount, opts);
  let destPath = Buffer.from(dest);
  const destKind = await hostKind(destPath, true).catch((e: unknown) => {
    throw mount.explain(e);
  });
  if (destKind !== 'dir' && sources.length > 1)
    throw new UsageError(`destination ${dest} is not a directory`);
  // DEST a symlink to a directory: its contents merge into the directory,
  // and DEST's metadata goes onto the directory, not onto the link.
  if (destKind === 'dir' && (await lstat(destPath)).isSymbolicLink()) destPath = await realpath(destPath, { encoding: 'buffer' });

  for (const source of sources) {
    const path = imagePath(source);
    let top: ImageEntry;
    try {
      top = await statEntry(mount, path, { xattrs: opts.xattrs !== false });
    } catch (e) {
      if (isSystemError(e) && ['ENOENT', 'ENOTDIR'].includes(e.code))
        throw new UsageError(`cannot copy ${mount.image}:${path.toString()}: ${describe(e)}`);
      throw mount.explain(e);
    }
    const name = baseName(path);
    const contentsOnly = name.length === 0 || source === '.' || source.endsWith('/.');
    if (contentsOnly && kindOf(top.stat.mode) !== 'dir')
      throw new UsageError(`cannot copy ${mount.image}:${path.toString()}/.: not a directory`);
    const target = destKind !== 'dir' || contentsOnly ? destPath : join(destPath, name);
    try {
      await job.entry(top, target);
    } catch (e) {
      throw mount.explain(e);
    }
  }
  return { totals: job.totals, warnings: job.summary() };
}
