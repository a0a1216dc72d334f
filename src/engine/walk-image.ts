/**
 * Walking a tree inside a mounted image: depth first, each directory's
 * entries in the order of their names' bytes (so archives and listings
 * come out the same every time), one trip to the kernel per directory.
 */
import { errnoError, isSystemError, type DirEntry, type KStat, type Xattr } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { kindOf } from './modes.js';

export interface ImageEntry {
  /** The path inside the image, from its root: "/etc/passwd". */
  path: Buffer;
  /** The kernel's path (under the mount point), for system calls. */
  kernelPath: Buffer;
  stat: KStat;
  /** Symlinks: the target's bytes. */
  target?: Buffer;
  xattrs?: Xattr[];
  /** A small regular file's contents, read with the listing (dataLimit). */
  data?: Buffer;
}

export interface WalkOptions {
  xattrs?: boolean;
  /** Bring the contents of regular files up to this size with the listing. */
  dataLimit?: number;
  signal?: AbortSignal;
}

function child(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

/** Symlinks followed in one path at the most, as the kernel allows. */
const MAX_LINKS = 40;

/**
 * A path given by the user, with the symlinks in it followed as if the
 * image were the root of the filesystem (chroot): an absolute target such
 * as /etc/localtime -> /usr/share/zoneinfo/UTC starts again at the image's
 * root, not at the kernel's (the image is mounted under /mnt), and ".."
 * stops at the root. The last component is followed only with followLast;
 * a path that goes where nothing is comes back with its rest unresolved,
 * for the caller's own error (or, for a destination, to be created).
 */
export async function resolve(mount: Mount, path: string | Buffer, followLast: boolean): Promise<Buffer> {
  const split = (p: Buffer) => p.toString('latin1').split('/').filter((c) => c && c !== '.');
  const todo = split(Buffer.from(path));
  const done: string[] = [];
  const here = () => Buffer.from(`/${done.join('/')}`, 'latin1');
  for (let links = 0; todo.length; ) {
    const name = todo.shift() as string;
    if (name === '..') {
      done.pop();
      continue;
    }
    done.push(name);
    if (!todo.length && !followLast) break;
    let target: Buffer;
    try {
      const st = await mount.kernel.native.lstat(mount.path(here()));
      if (kindOf(st.mode) !== 'symlink') continue;
      target = await mount.kernel.native.readlink(mount.path(here()));
    } catch (e) {
      if (isSystemError(e) && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) break;
      throw e;
    }
    if (++links > MAX_LINKS) throw errnoError(-40 /* ELOOP */, 'resolve', mount.path(path).toString());
    done.pop();
    if (target[0] === 0x2f) done.length = 0;
    todo.unshift(...split(target));
  }
  return Buffer.concat([here(), todo.length ? Buffer.from(`/${todo.join('/')}`, 'latin1') : Buffer.alloc(0)]);
}

/** The entry for one path in the image (lstat, link target, xattrs). */
export async function statEntry(mount: Mount, path: Buffer, opts: WalkOptions = {}): Promise<ImageEntry> {
  const k = mount.kernel.native;
  const kernelPath = mount.path(path);
  const stat = await k.lstat(kernelPath);
  const entry: ImageEntry = { path, kernelPath, stat };
  if (kindOf(stat.mode) === 'symlink') entry.target = await k.readlink(kernelPath);
  if (opts.xattrs) entry.xattrs = await k.getXattrs(kernelPath);
  return entry;
}

/** Yields start itself, then everything under it (pre-order). */
export async function* walk(mount: Mount, start: Buffer, opts: WalkOptions = {}): AsyncGenerator<ImageEntry> {
  const top = await statEntry(mount, start, opts);
  yield top;
  if (kindOf(top.stat.mode) === 'dir') yield* below(mount, top, opts);
}

/** The entries of directory dir, in name order. */
export async function children(mount: Mount, dir: ImageEntry, opts: WalkOptions = {}): Promise<ImageEntry[]> {
  const entries: DirEntry[] = await mount.kernel.native.readdirStat(dir.kernelPath, opts.xattrs === true, opts.dataLimit ?? 0);
  return entries.map((e) => ({
    path: child(dir.path, e.name),
    kernelPath: child(dir.kernelPath, e.name),
    stat: e.stat,
    target: e.target,
    xattrs: e.xattrs,
    data: e.data,
  }));
}

/** The small files' data one trip brings, at the most: bounds memory. */
const DATA_BATCH = 8 << 20;

/**
 * Brings the data of the small files from entries[from] on that the
 * listing could not (its budget was spent): as many as DATA_BATCH allows,
 * in one trip, as the walk reaches them.
 */
async function fetchData(mount: Mount, entries: ImageEntry[], from: number, limit: number): Promise<void> {
  const wanting = (e: ImageEntry) => !e.data && kindOf(e.stat.mode) === 'file' && e.stat.size <= limit;
  const batch: ImageEntry[] = [];
  let bytes = 0;
  for (let i = from; i < entries.length && bytes < DATA_BATCH; i++) {
    const e = entries[i] as ImageEntry;
    if (!wanting(e)) continue;
    batch.push(e);
    bytes += e.stat.size;
  }
  const data = await mount.kernel.native.readFiles(
    batch.map((e) => e.kernelPath),
    batch.map((e) => e.stat.size),
  );
  batch.forEach((e, i) => (e.data = data[i] ?? undefined));
}

/** Everything under directory dir (pre-order). */
export async function* below(mount: Mount, dir: ImageEntry, opts: WalkOptions = {}): AsyncGenerator<ImageEntry> {
  const entries = await children(mount, dir, opts);
  const limit = opts.dataLimit ?? 0;
  for (const [i, entry] of entries.entries()) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (limit && !entry.data && kindOf(entry.stat.mode) === 'file' && entry.stat.size <= limit)
      await fetchData(mount, entries, i, limit);
    yield entry;
    if (kindOf(entry.stat.mode) === 'dir') yield* below(mount, entry, opts);
  }
}
