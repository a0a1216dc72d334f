/**
 * Copying host trees into a mounted image, as `cp -a` would: file data
 * (holes kept), directories, symlinks, hard links, device nodes, fifos and
 * sockets, with owner, mode, timestamps to the nanosecond and extended
 * attributes (capabilities, SELinux labels, ACLs).
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { isSystemError } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { kindOf, splitHostDev } from './modes.js';
import { MetadataWarnings } from './warnings.js';

export interface CopyInOptions {
  /** Owner and group for everything copied, instead of the host's. */
  uid?: number;
  gid?: number;
  /** Copy extended attributes (default true). */
  xattrs?: boolean;
  /** Called after each entry, with the running totals. */
  progress?: (totals: CopyTotals) => void;
  /** Stops the copy at the next entry. */
  signal?: AbortSignal;
}

export interface CopyTotals {
  entries: number;
  files: number;
  bytes: number;
  hardlinks: number;
}

const SLASH = 0x2f;

function join(dir: Buffer, name: Buffer): Buffer {
  return dir.length && dir[dir.length - 1] === SLASH ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

class CopyIn {
  readonly totals: CopyTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0 };
  readonly warnings = new MetadataWarnings();
  /** dev:ino of host files with several links -> their path in the kernel. */
  private links = new Map<string, Buffer>();

  constructor(
    private readonly mount: Mount,
    private readonly opts: CopyInOptions,
  ) {}

  private get k() {
    return this.mount.kernel.native;
  }

  /** Copies host path src to kernel path dst, replacing what is there. */
  async entry(src: Buffer, dst: Buffer, st: BigIntStats): Promise<void> {
    if (this.opts.signal?.aborted) throw this.opts.signal.reason;
    const kind = kindOf(Number(st.mode));
    const existing = await this.existing(dst);
    if (existing !== undefined && !(kind === 'dir' && existing === 'dir')) {
      if (existing === 'dir') throw this.fail(`cannot overwrite directory ${this.show(dst)} with a non-directory`);
      await this.k.unlink(dst);
    }
    if (kind === 'file' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first) {
        await this.k.link(first, dst);
        this.totals.hardlinks++;
        this.count();
        return;
      }
      this.links.set(key, dst);
    }
    switch (kind) {
      case 'dir':
        if (existing === undefined) await this.k.mkdir(dst, 0o700);
        for (const name of await readdir(src, { encoding: 'buffer' })) {
          const child = join(src, name);
          await this.entry(child, join(dst, name), await lstat(child, { bigint: true }));
        }
        break;
      case 'file':
        this.totals.bytes += await this.k.copyIn(src, dst, 0o600);
        this.totals.files++;
        break;
      case 'symlink':
        await this.k.symlink(await readlink(src, { encoding: 'buffer' }), dst);
        break;
      default: {
        const { major, minor } = splitHostDev(st.rdev);
        await this.k.mknod(dst, Number(st.mode), major, minor);
      }
    }
    await this.metadata(src, dst, st, kind === 'symlink');
    this.count();
  }

  /**
   * Owner first (it clears set-id bits), then mode, then extended
   * attributes (a chown drops security.capability), times last.
   */
  private async metadata(src: Buffer, dst: Buffer, st: BigIntStats, symlink: boolean): Promise<void> {
    const uid = this.opts.uid ?? Number(st.uid);
    const gid = this.opts.gid ?? Number(st.gid);
    await this.tolerate('owner', dst, this.k.lchown(dst, uid, gid));
    if (!symlink) await this.tolerate('mode', dst, this.k.chmod(dst, Number(st.mode) & 0o7777));
    if (this.opts.xattrs !== false) {
      for (const x of await this.k.hostGetXattrs(src)) {
        await this.tolerate(`extended attribute ${x.name}`, dst, this.k.lsetxattr(dst, x.name, x.value));
      }
    }
    await this.tolerate('timestamps', dst, this.k.lutimes(dst, st.atimeNs, st.mtimeNs));
  }

  /**
   * Metadata the filesystem cannot hold (owners on vfat, xattrs on exfat)
   * is reported once per kind at the end rather than failing the copy.
   */
  private async tolerate(what: string, dst: Buffer, call: Promise<unknown>): Promise<void> {
    try {
      await call;
    } catch (e) {
      if (isSystemError(e) && ['EPERM', 'EOPNOTSUPP', 'ENOTSUP'].includes(e.code)) {
        this.warnings.add(what, this.show(dst), e.code);
        return;
      }
      throw e;
    }
  }

  private async existing(dst: Buffer): Promise<string | undefined> {
    try {
      return kindOf((await this.k.lstat(dst)).mode);
    } catch (e) {
      if (isSystemError(e) && e.code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private count(): void {
    this.totals.entries++;
    this.opts.progress?.(this.totals);
  }

  show(kernelPath: Buffer): string {
    return this.mount.imagePath(kernelPath.toString());
  }

  fail(message: string): LklfsError {
    return new LklfsError(`${this.mount.image}: ${message}`);
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
  sources: string[],
  dest: string,
  opts: CopyInOptions = {},
): Promise<{ totals: CopyTotals; warnings: string[] }> {
  const job = new CopyIn(mount, opts);
  const k = mount.kernel.native;
  const destPath = mount.path(dest);
  let destIsDir: boolean;
  try {
    destIsDir = kindOf((await k.lstat(destPath)).mode) === 'dir';
  } catch (e) {
    if (!isSystemError(e) || e.code !== 'ENOENT') throw mount.explain(e);
    if (sources.length !== 1) throw new UsageError(`${mount.image}: destination ${dest} is not a directory in the image`);
    destIsDir = false;
  }
  if (!destIsDir && sources.length > 1)
    throw new UsageError(`${mount.image}: destination ${dest} is not a directory in the image`);

  for (const source of sources) {
    let st: BigIntStats;
    try {
      st = await lstat(source, { bigint: true });
    } catch (e) {
      throw new UsageError(`cannot copy ${source}: ${isSystemError(e) ? e.code : String(e)}`);
    }
    const name = basename(source);
    const contentsOnly = name === '.' || source.endsWith('/.');
    const target = !destIsDir || contentsOnly ? destPath : join(destPath, Buffer.from(name));
    try {
      await job.entry(Buffer.from(source), target, st);
    } catch (e) {
      throw mount.explain(e);
    }
  }
  return { totals: job.totals, warnings: job.warnings.summary() };
}
