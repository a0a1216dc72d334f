/**
 * A mounted image's whole tree as a POSIX (pax) tar stream, as GNU tar
 * --format=posix --xattrs --acls --numeric-owner would write it from the
 * mounted filesystem: entries depth first in name-byte order, names
 * relative ("etc/passwd", directories "etc/", the root "./"), numeric
 * owners, nanosecond times, extended attributes (SCHILY.xattr.*, their
 * exact bytes) and ACLs (also as GNU tar's SCHILY.acl.* text), hard links
 * as links to the first name archived, files with holes in GNU's sparse
 * format 1.0. Sockets cannot be archived: they are counted and left out.
 *
 * The binding makes the archive (native/src/tar_out.cc, the bytes in
 * tar_format.cc): it walks the tree and frames every entry on a kernel
 * thread, straight into a Buffer with the files' data, a MiB per trip.
 * Here the Buffers are written out; the kernel always has the next ones
 * queued, so that it never waits for JS to hand it one.
 */
import { LklfsError } from '../errors.js';
import type { TarBatch } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { partitionOffset } from './probe.js';

/** Files up to this size are read whole, with their entry's headers. */
const SMALL_FILE = 256 << 10;
/**
 * The archive comes in pieces of this size, each handed on as one write
 * (larger writes can cost more: on the development VM a 4 MiB write into
 * the host's page cache often took several times as long as four of 1 MiB).
 */
const BATCH = 1 << 20;
/**
 * Buffers: one being written, the others queued for the kernel to fill.
 * No more than the binding's kernel threads (four, native/src/queue.cc):
 * each queued fill holds one while it waits for its turn.
 */
const BUFFERS = 4;

/** Hands on a piece of the archive; settles once it is written. */
export type WriteArchive = (chunk: Buffer) => Promise<void>;

export interface TarOptions {
  /** The image directory to archive (default "/"): its entries are ./... */
  root?: Buffer;
  /** Stops the archive at its next piece. */
  signal?: AbortSignal;
  /** Called as the archive grows, with the running totals. */
  progress?: (entries: number, bytes: number) => void;
  /**
   * Called with "PATH CONTEXT" lines for the entries archived that have an
   * SELinux label (LKL's fs2tar -s list: PATH from the archive's root with
   * a leading "/", CONTEXT up to the label's NUL), in archive order; awaited.
   */
  contexts?: (lines: Buffer) => Promise<void>;
}

export interface TarResult {
  entries: number;
  /** File data archived, in bytes. */
  bytes: number;
  /** What could not be archived, one line per kind. */
  warnings: string[];
}

/** Writes the image's whole tree as a tar stream through write. */
export async function writeTar(mount: Mount, write: WriteArchive, opts: TarOptions = {}): Promise<TarResult> {
  const k = mount.kernel.native;
  const root = opts.root ?? Buffer.from('/');
  /** An archived name's path in the image, for messages. */
  const show = (name: Buffer) => Buffer.concat([root.length === 1 ? Buffer.alloc(0) : root, Buffer.from('/'), name]).toString();
  // Files are read from the image on the host where the filesystem allows it (native/src/extent_reader.h).
  const start = mount.partition ? await partitionOffset(mount.image, mount.partition) : 0;
  const tar = k.openTar(mount.path(root), SMALL_FILE, opts.contexts !== undefined, start === undefined ? -1 : mount.disk, start ?? 0);
  // The binding fills queued Buffers in the order they were queued.
  const queue: { buf: Buffer; filled: Promise<TarBatch> }[] = [];
  const fill = (buf: Buffer) => {
    const filled = k.readTar(tar, buf);
    // Awaited in its turn; a failure meanwhile (^C cancels it) is no
    // unhandled rejection.
    filled.catch(() => undefined);
    queue.push({ buf, filled });
  };
  for (let i = 0; i < BUFFERS; i++) fill(Buffer.allocUnsafeSlow(BATCH));
  let last: TarBatch;
  try {
    for (;;) {
      const { buf, filled } = queue.shift() as (typeof queue)[number];
      const r = await filled;
      if (r.need) {
        // An entry whose headers outgrow a Buffer (large xattrs, a long
        // sparse map): the Buffers queued after this one come back empty
        // too, and each is queued again this large.
        fill(Buffer.allocUnsafeSlow(r.need));
        continue;
      }
      if (r.changed)
        throw new LklfsError(`${mount.image}:${show(r.changed)}: changed size while being read (was ${r.changedSize} bytes)`);
      await write(buf.subarray(0, r.used));
      if (r.contexts) await opts.contexts?.(r.contexts);
      opts.progress?.(r.entries, r.bytes);
      if (r.done) {
        last = r;
        break;
      }
      if (opts.signal?.aborted) throw opts.signal.reason;
      fill(buf);
    }
  } finally {
    // The pieces still being made must end before the walk's files are closed.
    await Promise.all(queue.map((q) => q.filled.catch(() => undefined)));
    await k.closeTar(tar);
  }
  const warnings = last.sockets
    ? [`${last.sockets} socket${last.sockets === 1 ? '' : 's'} not archived (tar cannot hold sockets), e.g. ${show(last.socket as Buffer)}`]
    : [];
  return { entries: last.entries, bytes: last.bytes, warnings };
}
