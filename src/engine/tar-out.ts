/**
 * A mounted image's whole tree as a POSIX (pax) tar stream, as GNU tar
 * --format=posix --xattrs --acls --numeric-owner would write it from the
 * mounted filesystem: entries depth first in name-byte order, names
 * relative ("etc/passwd", directories "etc/", the root "./"), numeric
 * owners, nanosecond times, extended attributes and ACLs, hard links as
 * links to the first name archived, files with holes in GNU's sparse
 * format. Sockets cannot be archived: they are counted and left out.
 *
 * tar-stream frames the entries; the pax extended headers are built here
 * as bytes (see pax.ts) so that binary values and names survive exactly.
 */
import { once } from 'node:events';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError } from '../errors.js';
import { kindOf, type FileKind } from './modes.js';
import { paxBody, paxRecord, paxTime, xattrKey } from './pax.js';
import { aclText } from './posix-acl.js';
import { fileOwn } from './xattrs.js';
import { walk, type ImageEntry } from './walk-image.js';

/** File data is read from the kernel in pieces of this size. */
const CHUNK = 1 << 20;
/** Files up to this size come with their directory's listing: no trip each. */
const SMALL_FILE = 256 << 10;
/** The archive is handed on in writes of about this size. */
const BATCH = 1 << 20;
/** tar-stream writes owners in 6 octal digits... */
const MAX_ID = 0o777777;
/** ...sizes in 11 (larger ones in base-256, which only GNU readers know)... */
const MAX_SIZE = 0o77777777777;
/** ...and times as 32-bit seconds, none before 1970. */
const MAX_SECONDS = 2 ** 31 - 1;
/** The ustar name and link name fields. */
const USTAR_NAME = 100;

type EntryHeader = Parameters<Pack['entry']>[0];
type Sink = ReturnType<Pack['entry']>;

/** Hands on a piece of the archive; settles once it is written. */
export type WriteArchive = (chunk: Buffer) => Promise<void>;

export interface TarOptions {
  /** The image directory to archive (default "/"): its entries are ./... */
  root?: Buffer;
  /** Stops the archive at the next entry (or piece of file data). */
  signal?: AbortSignal;
  /** Called after each entry with the running totals. */
  progress?: (entries: number, bytes: number) => void;
  /** Called with each entry once it is in the archive; awaited. */
  archived?: (entry: ImageEntry) => Promise<void> | void;
}

export interface TarResult {
  entries: number;
  /** File data archived, in bytes. */
  bytes: number;
  /** What could not be archived, one line per kind. */
  warnings: string[];
}

const TYPES: Record<Exclude<FileKind, 'socket'>, Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
};

/** tar-stream's output, gathered into large writes. */
class Batches {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly write: WriteArchive) {}

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** Awaited before each step of the producer: what waits in memory stays about one batch. */
  async flushIfFull(): Promise<void> {
    if (this.size >= BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const batch = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.size = 0;
    await this.write(batch);
  }
}

/** The archive's name for an image path: "/" -> "./", "/etc" (a directory) -> "etc/". */
function archiveName(path: Buffer, dir: boolean, root: Buffer): Buffer {
  if (path.length === root.length) return Buffer.from('./');
  const rel = path.subarray(root.length === 1 ? 1 : root.length + 1);
  return dir ? Buffer.concat([rel, Buffer.from('/')]) : rel;
}

/**
 * The name or link target for tar-stream's ustar header. One that does not
 * fit (over 100 bytes, or not ASCII: tar-stream would pax-encode it as
 * UTF-8 itself) goes into a pax record as its exact bytes, and the header
 * gets an ASCII stand-in that only readers without pax support use.
 */
function ustarField(bytes: Buffer, key: 'path' | 'linkpath', records: Buffer[]): string {
  const ascii = bytes.every((b) => b < 0x80);
  if (ascii && bytes.length <= USTAR_NAME) return bytes.toString('latin1');
  records.push(paxRecord(key, bytes));
  return Buffer.from(bytes.subarray(0, USTAR_NAME).map((b) => (b < 0x80 ? b : 0x5f))).toString('latin1');
}

/** Whole seconds as tar-stream can write them; the pax mtime is exact. */
function ustarTime(ns: bigint): Date {
  const s = Number(ns / 1_000_000_000n);
  return new Date(Math.min(Math.max(s, 0), MAX_SECONDS) * 1000);
}

/** ACLs as text for GNU tar --acls, then every attribute as its raw bytes. */
function xattrRecords(e: ImageEntry): Buffer[] {
  const acls: Buffer[] = [];
  const raw: Buffer[] = [];
  for (const x of (e.xattrs ?? []).filter((a) => fileOwn(a.name))) {
    const which = /^system\.posix_acl_(access|default)$/.exec(x.name)?.[1];
    const text = which ? aclText(x.value) : undefined;
    if (text !== undefined) acls.push(paxRecord(`SCHILY.acl.${which}`, text));
    raw.push(paxRecord(xattrKey(x.name), x.value));
  }
  return [...acls, ...raw];
}

/** The header and pax records of an entry that is not a later hard link. */
function describeEntry(
  e: ImageEntry,
  name: Buffer,
  kind: Exclude<FileKind, 'socket'>,
  stored = e.stat.size,
): { header: EntryHeader; records: Buffer[] } {
  const st = e.stat;
  const records: Buffer[] = [];
  const header: EntryHeader = {
    name: ustarField(name, 'path', records),
    type: TYPES[kind],
    // With the file type bits: tar-stream takes a mode of 0 for "none given".
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: kind === 'file' ? stored : 0,
    mtime: ustarTime(st.mtimeNs),
  };
  if (e.target) header.linkname = ustarField(e.target, 'linkpath', records);
  records.push(paxRecord('mtime', paxTime(st.mtimeNs)), paxRecord('atime', paxTime(st.atimeNs)));
  if (st.uid > MAX_ID) records.push(paxRecord('uid', String(st.uid)));
  if (st.gid > MAX_ID) records.push(paxRecord('gid', String(st.gid)));
  if (kind === 'file' && stored > MAX_SIZE) records.push(paxRecord('size', String(stored)));
  records.push(...xattrRecords(e));
  return { header, records };
}

/** Where a sparse file has data: [offset, length] pairs. */
type DataMap = [number, number][];

/**
 * A file with holes, in GNU tar's sparse format 1.0 (what tar --sparse
 * --format=posix writes, and GNU tar and libarchive restore with the
 * holes): the entry is named dir/GNUSparseFile.0/name, the real name and
 * size are pax records, and its data is a map ("count\noffset\nlength\n
 * ...", padded to a block) followed by the data extents only.
 */
function describeSparse(e: ImageEntry, name: Buffer, map: DataMap): { header: EntryHeader; records: Buffer[]; mapBlock: Buffer } {
  const text = [map.length, ...map.flat()].join('\n') + '\n';
  const mapBlock = Buffer.alloc(Math.ceil(text.length / 512) * 512);
  mapBlock.write(text, 'latin1');
  const cut = name.lastIndexOf(0x2f) + 1;
  const fake = Buffer.concat([name.subarray(0, cut), Buffer.from('GNUSparseFile.0/'), name.subarray(cut)]);
  const stored = mapBlock.length + map.reduce((n, [, len]) => n + len, 0);
  const { header, records } = describeEntry(e, fake, 'file', stored);
  records.push(
    paxRecord('GNU.sparse.major', '1'),
    paxRecord('GNU.sparse.minor', '0'),
    paxRecord('GNU.sparse.name', name),
    paxRecord('GNU.sparse.realsize', String(e.stat.size)),
  );
  return { header, records, mapBlock };
}

/**
 * Writes a device entry's numbers into its ustar header, and the checksum
 * again. tar-stream writes them in 6 octal digits, which cannot hold a
 * minor over 262143; the fields take 7, enough for Linux's 12-bit majors
 * and 20-bit minors (GNU tar knows no pax record for them).
 */
function writeDeviceNumbers(block: Buffer, major: number, minor: number): void {
  block.write(`${major.toString(8).padStart(7, '0')}\0`, 329, 'latin1');
  block.write(`${minor.toString(8).padStart(7, '0')}\0`, 337, 'latin1');
  block.fill(0x20, 148, 156);
  const sum = block.reduce((n, b) => n + b, 0);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

/** A later name of an inode already archived: a link entry, no data. */
function describeLink(e: ImageEntry, name: Buffer, first: Buffer): { header: EntryHeader; records: Buffer[] } {
  const records: Buffer[] = [];
  const header: EntryHeader = {
    name: ustarField(name, 'path', records),
    type: 'link',
    linkname: ustarField(first, 'linkpath', records),
    mode: e.stat.mode,
    uid: e.stat.uid,
    gid: e.stat.gid,
    mtime: ustarTime(e.stat.mtimeNs),
  };
  return { header, records };
}

class TarOut {
  private readonly pack: Pack;
  private readonly out: Batches;
  /** The device numbers for the next header tar-stream writes. */
  private device: { major: number; minor: number } | undefined;
  /** dev:ino of inodes with several names -> the name archived first. */
  private readonly links = new Map<string, Buffer>();
  private sockets = 0;
  private socketExample = '';
  private entries = 0;
  private bytes = 0;
  /** What is archived: this image directory, as "./". */
  readonly root: Buffer;

  constructor(
    private readonly mount: Mount,
    write: WriteArchive,
    private readonly opts: TarOptions,
  ) {
    this.out = new Batches(write);
    this.root = opts.root ?? Buffer.from('/');
    // Sees every piece as tar-stream pushes it, in order: headers are one 512-byte piece.
    this.pack = tarPack({ mapReadable: (chunk) => this.fixHeader(chunk as Buffer) });
    // The pack's output is Buffers (the typings say unknown).
    this.pack.on('data', (chunk) => this.out.add(chunk as Buffer));
  }

  async add(e: ImageEntry): Promise<void> {
    await this.out.flushIfFull();
    const kind = kindOf(e.stat.mode);
    if (kind === 'socket') {
      if (this.sockets++ === 0) this.socketExample = this.show(e);
      return;
    }
    const name = archiveName(e.path, kind === 'dir', this.root);
    let first: Buffer | undefined;
    if (kind !== 'dir' && e.stat.nlink > 1) {
      const key = `${e.stat.dev}:${e.stat.ino}`;
      first = this.links.get(key);
      if (!first) this.links.set(key, name);
    }
    // Fewer blocks than the size needs: maybe holes (or an inline file).
    const map = !first && kind === 'file' && !e.data && e.stat.blocks * 512 < e.stat.size ? await this.holes(e) : undefined;
    const sparse = map && describeSparse(e, name, map);
    const { header, records } = sparse ?? (first ? describeLink(e, name, first) : describeEntry(e, name, kind));
    if (records.length) await this.paxHeader(paxBody(records), header.mtime);
    if (header.type === 'character-device' || header.type === 'block-device')
      this.device = { major: e.stat.rdevMajor, minor: e.stat.rdevMinor };
    const { sink, done } = this.start(header);
    if (sparse && map) {
      if (!sink.write(sparse.mapBlock)) await once(sink, 'drain');
      await this.copyData(e, sink, map);
    } else if (header.type === 'file' && e.stat.size > 0) {
      await this.copyData(e, sink, [[0, e.stat.size]]);
    }
    // The typings want an argument: no last chunk.
    sink.end(undefined);
    await done;
    if (this.device) throw new Error(`tar-stream wrote the header of ${this.show(e)} in an unexpected way`);
    this.entries++;
    await this.opts.archived?.(e);
    this.opts.progress?.(this.entries, this.bytes);
  }

  /** The data map of a file that has holes; undefined when it has none. */
  private async holes(e: ImageEntry): Promise<DataMap | undefined> {
    const map = await this.mount.kernel.native.dataMap(e.kernelPath);
    const data = map.reduce((n, [, len]) => n + len, 0);
    if (data === e.stat.size) return undefined;
    // A hole at the end: GNU tar takes the file's size from the map's end.
    const [off, len] = map.at(-1) ?? [0, 0];
    if (off + len < e.stat.size) map.push([e.stat.size, 0]);
    return map;
  }

  private fixHeader(chunk: Buffer): Buffer {
    const type = chunk[156];
    if (this.device && chunk.length === 512 && (type === 0x33 || type === 0x34)) {
      writeDeviceNumbers(chunk, this.device.major, this.device.minor);
      this.device = undefined;
    }
    return chunk;
  }

  /**
   * An extended header for the next entry. tar-stream refuses data for a
   * 'pax-header' entry, so it writes only the 512-byte header (with no
   * padding, the body's size being a multiple of 512) and the body goes
   * into its output straight after: nothing else is in flight then, every
   * entry before having been awaited.
   */
  private async paxHeader(body: Buffer, mtime: Date | undefined): Promise<void> {
    // The typings leave out the 'pax-header' type that pack.js knows.
    const type = 'pax-header' as Header['type'];
    await this.start({ name: 'PaxHeader', type, mode: 0o644, size: body.length, mtime }).done;
    this.pack.push(body);
  }

  /** Starts an entry; done settles when tar-stream has all of it. */
  private start(header: EntryHeader): { sink: Sink; done: Promise<void> } {
    let sink: Sink | undefined;
    const done = new Promise<void>((resolve, reject) => {
      sink = this.pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
    // An entry left unfinished because the job failed is no unhandled rejection.
    done.catch(() => undefined);
    return { sink: sink as Sink, done };
  }

  /**
   * Streams a regular file's data into its entry: the ranges given (the
   * whole file, or a sparse file's data extents), as much as lstat said.
   */
  private async copyData(e: ImageEntry, sink: Sink, ranges: DataMap): Promise<void> {
    const size = e.stat.size;
    if (e.data) {
      // Read whole with the listing, exactly lstat's size (the binding checks).
      if (!sink.write(e.data)) await once(sink, 'drain');
      this.bytes += size;
      return;
    }
    const pieces = ranges.flatMap(([off, len]) =>
      Array.from({ length: Math.ceil(len / CHUNK) }, (_, i): [number, number] => [off + i * CHUNK, Math.min(CHUNK, len - i * CHUNK)]),
    );
    const k = this.mount.kernel.native;
    const fd = await k.open(e.kernelPath, k.constants.O_RDONLY, 0);
    // One piece is read while the one before goes into the archive.
    const readAt = async ([at, want]: [number, number]) => {
      // One byte more at the end of the file: one that grew shows without another read.
      const ask = at + want === size ? want + 1 : want;
      // A new buffer each time: tar-stream holds on to what it is given.
      const buf = Buffer.allocUnsafe(ask);
      const n = await k.read(fd, buf, 0, ask, at);
      if (n !== want)
        throw new LklfsError(`${this.mount.image}:${this.show(e)}: changed size while being read (was ${size} bytes)`);
      return buf.subarray(0, n);
    };
    let next = pieces.length ? readAt(pieces[0] as [number, number]) : undefined;
    try {
      for (let i = 0; next; i++) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        const piece = await next;
        const following = pieces[i + 1];
        next = following && readAt(following);
        if (!sink.write(piece)) await once(sink, 'drain');
        this.bytes += piece.length;
        await this.out.flushIfFull();
      }
    } finally {
      // A read still in flight must end before its descriptor is closed.
      await next?.catch(() => undefined);
      await k.close(fd);
    }
  }

  /** Ends the archive (two zero blocks) and writes what is left. */
  async finish(): Promise<TarResult> {
    const ended = once(this.pack, 'end');
    this.pack.finalize();
    await ended;
    await this.out.flush();
    const warnings = this.sockets
      ? [`${this.sockets} socket${this.sockets === 1 ? '' : 's'} not archived (tar cannot hold sockets), e.g. ${this.socketExample}`]
      : [];
    return { entries: this.entries, bytes: this.bytes, warnings };
  }

  private show(e: ImageEntry): string {
    return e.path.toString();
  }
}

/** Writes the image's whole tree as a tar stream through write. */
export async function writeTar(mount: Mount, write: WriteArchive, opts: TarOptions = {}): Promise<TarResult> {
  const tar = new TarOut(mount, write, opts);
  const walkOpts = { xattrs: true, dataLimit: SMALL_FILE, signal: opts.signal };
  for await (const e of walk(mount, tar.root, walkOpts)) await tar.add(e);
  return tar.finish();
}
