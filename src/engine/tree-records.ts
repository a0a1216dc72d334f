/**
 * A tree inside a mounted image read in bulk (the binding's openTree /
 * readTree, native/src/tree.cc): depth first, each directory's entries in
 * the order of their names' bytes, a few MiB of entry records and file
 * data per trip to the kernel. For archives, where per-entry trips and a
 * JS object per stat would cost more than the kernel's own work.
 */
import type { Mount } from '../kernel/kernel.js';

/** Record kinds (see native/src/tree.cc for the layout). */
export const ENTRY = 1;
export const DATA = 2;
/** The file whose data was being read is no longer the size it had. */
export const CHANGED = 3;

const SPARSE = 1;
const HARD_LINK = 2;
/** Where an entry record's variable part starts. */
const ENTRY_HEAD = 88;
/** Where a data record's bytes start. */
export const DATA_HEAD = 16;

export interface TreeXattr {
  name: Buffer;
  value: Buffer;
}

export interface TreeEntry {
  /** Relative to the walk's start: "etc/passwd"; "" for the start itself. */
  name: Buffer;
  /** With the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  rdevMajor: number;
  rdevMinor: number;
  size: number;
  mtimeSec: number;
  /** 0 to 999999999 (before 1970 too: the seconds are the floor). */
  mtimeNsec: number;
  atimeSec: number;
  atimeNsec: number;
  /** A symlink's target; for a hard link, the first name given of its inode. */
  link: Buffer;
  /** A later name of an inode already given: no metadata of its own, no data. */
  hardLink: boolean;
  xattrs: TreeXattr[];
  /** A file with holes: where its data is, [offset, length] (perhaps none). */
  extents?: [number, number][];
  /** The bytes of data records that follow the entry. */
  data: number;
}

const NO_XATTRS: TreeXattr[] = [];

/** The entry record at buf[at] (kind ENTRY). */
export function readEntry(buf: Buffer, at: number): TreeEntry {
  const flags = buf.readUInt32LE(at + 36);
  const nameLen = buf.readUInt32LE(at + 40);
  const linkLen = buf.readUInt32LE(at + 44);
  const xattrCount = buf.readUInt32LE(at + 48);
  const extentCount = buf.readUInt32LE(at + 52);
  let p = at + ENTRY_HEAD;
  let extents: [number, number][] | undefined;
  if (flags & SPARSE) {
    extents = [];
    for (let i = 0; i < extentCount; i++, p += 16) extents.push([buf.readDoubleLE(p), buf.readDoubleLE(p + 8)]);
  }
  const name = buf.subarray(p, (p += nameLen));
  const link = buf.subarray(p, (p += linkLen));
  let xattrs = NO_XATTRS;
  if (xattrCount) {
    xattrs = [];
    for (let i = 0; i < xattrCount; i++) {
      const n = buf.readUInt32LE(p);
      const v = buf.readUInt32LE(p + 4);
      p += 8;
      xattrs.push({ name: buf.subarray(p, p + n), value: buf.subarray(p + n, p + n + v) });
      p += n + v;
    }
  }
  return {
    name,
    mode: buf.readUInt32LE(at + 8),
    uid: buf.readUInt32LE(at + 12),
    gid: buf.readUInt32LE(at + 16),
    rdevMajor: buf.readUInt32LE(at + 20),
    rdevMinor: buf.readUInt32LE(at + 24),
    mtimeNsec: buf.readUInt32LE(at + 28),
    atimeNsec: buf.readUInt32LE(at + 32),
    size: buf.readDoubleLE(at + 56),
    mtimeSec: buf.readDoubleLE(at + 64),
    atimeSec: buf.readDoubleLE(at + 72),
    data: buf.readDoubleLE(at + 80),
    link,
    hardLink: (flags & HARD_LINK) !== 0,
    xattrs,
    extents,
  };
}

/** A Buffer of records: buf[0, used). */
export interface TreeBatch {
  buf: Buffer;
  used: number;
}

/** What the kernel fills per trip; two, so that it fills one while the other is read. */
const BATCH = 4 << 20;

/**
 * The records of the tree at root (an image path), batch by batch. Each
 * batch may be read until the next is asked for; the kernel is meanwhile
 * filling the one after. Files up to smallFile bytes come whole, in the
 * batch of their entry.
 */
export async function* treeBatches(mount: Mount, root: Buffer, smallFile: number): AsyncGenerator<TreeBatch> {
  const k = mount.kernel.native;
  const tree = k.openTree(mount.path(root), smallFile);
  const bufs = [Buffer.allocUnsafeSlow(BATCH), Buffer.allocUnsafeSlow(BATCH)];
  let cur = 0;
  let pending: ReturnType<typeof k.readTree> | undefined = k.readTree(tree, bufs[0] as Buffer);
  try {
    while (pending) {
      const r = await pending;
      pending = undefined;
      if (r.need) {
        // One entry larger than a batch (many or large xattrs): a Buffer its size.
        bufs[cur] = Buffer.allocUnsafeSlow(r.need);
        pending = k.readTree(tree, bufs[cur] as Buffer);
        continue;
      }
      const buf = bufs[cur] as Buffer;
      cur ^= 1;
      if (!r.done) pending = k.readTree(tree, bufs[cur] as Buffer);
      yield { buf, used: r.used };
    }
  } finally {
    // A batch still being filled must end before the walk's files are closed.
    await pending?.catch(() => undefined);
    await k.closeTree(tree);
  }
}
