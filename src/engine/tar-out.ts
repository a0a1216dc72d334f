/**
 * A mounted image's whole tree as a POSIX (pax) tar stream, as GNU tar
 * --format=posix --xattrs --acls --numeric-owner would write it from the
 * mounted filesystem: entries depth first in name-byte order, names
 * relative ("etc/passwd", directories "etc/", the root "./"), numeric
 * owners, nanosecond times, extended attributes and ACLs, hard links as
 * links to the first name archived, files with holes in GNU's sparse
 * format. Sockets cannot be archived: they are counted and left out.
 *
 * The tree comes from the kernel in bulk (tree-records.ts: a few MiB of
 * entries and data per trip); each entry's headers are framed here in one
 * pass, straight into the output buffer, which is written in large pieces.
 * The layout is byte for byte what tar-stream (which framed the entries
 * before) wrote: its header fields, its "PaxHeader" extended headers with
 * bodies padded by a comment record (pax.ts), names that do not fit in
 * ustar's 100 bytes (or are not ASCII) as a pax record and a stand-in.
 */
import { LklfsError } from '../errors.js';
import type { Mount } from '../kernel/kernel.js';
import { kindOf, type FileKind } from './modes.js';
import { padBody, paxTime, putAscii, putRecord, xattrKey } from './pax.js';
import { aclText } from './posix-acl.js';
import { CHANGED, DATA, DATA_HEAD, ENTRY, readEntry, readTree, type TreeEntry } from './tree-records.js';
import { fileOwn } from './xattrs.js';

/** Files up to this size come whole with their entry's record: no trip each. */
const SMALL_FILE = 256 << 10;
/** The archive is handed on in writes of this size. */
const OUT = 4 << 20;
const BLOCK = 512;
/** ustar owners hold 6 octal digits... */
const MAX_ID = 0o777777;
/** ...sizes 11 (larger ones are written in base-256, which only GNU readers know)... */
const MAX_SIZE = 0o77777777777;
/** ...and times 32-bit seconds, none before 1970. */
const MAX_SECONDS = 2 ** 31 - 1;
/** The ustar name and link name fields. */
const USTAR_NAME = 100;

/** Hands on a piece of the archive; settles once it is written. */
export type WriteArchive = (chunk: Buffer) => Promise<void>;

export interface TarOptions {
  /** The image directory to archive (default "/"): its entries are ./... */
  root?: Buffer;
  /** Stops the archive at the next batch of entries. */
  signal?: AbortSignal;
  /** Called as the archive grows, with the running totals. */
  progress?: (entries: number, bytes: number) => void;
}

export interface TarResult {
  entries: number;
  /** File data archived, in bytes. */
  bytes: number;
  /** What could not be archived, one line per kind. */
  warnings: string[];
}

const TYPEFLAG: Record<Exclude<FileKind, 'socket'>, number> = {
  file: 0x30,
  dir: 0x35,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  fifo: 0x36,
};
const LINK = 0x31;
const PAX = 0x78;

/** The fields of a ustar header that differ between entries. */
interface Ustar {
  /** ASCII, at most 100 bytes (see standIn). */
  name: Buffer;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds, 0 to 2^31 - 1. */
  mtime: number;
  link?: Buffer;
  device?: [number, number];
}

const SLASH = Buffer.from('/');
const ROOT = Buffer.from('./');
const SPARSE_DIR = Buffer.from('GNUSparseFile.0/');
const PAX_NAME = Buffer.from('PaxHeader');

/** Writes value in octal as tar-stream did: n digits and a space, all 7s when it does not fit. */
function putOctal(out: Buffer, at: number, value: number, n: number): void {
  const text = value.toString(8);
  putAscii(out, at, text.length > n ? `${'7'.repeat(n)} ` : `${text.padStart(n, '0')} `);
}

/** The 512-byte ustar header at out[at]. */
function putHeader(out: Buffer, at: number, h: Ustar): void {
  out.fill(0, at, at + BLOCK);
  h.name.copy(out, at);
  putOctal(out, at + 100, h.mode & 0o7777, 6);
  putOctal(out, at + 108, h.uid, 6);
  putOctal(out, at + 116, h.gid, 6);
  if (h.size > MAX_SIZE) {
    // Base-256: a marker byte, then the size big-endian.
    out[at + 124] = 0x80;
    for (let i = 11, n = h.size; i > 0; i--, n = Math.floor(n / 256)) out[at + 124 + i] = n % 256;
  } else putOctal(out, at + 124, h.size, 11);
  putOctal(out, at + 136, h.mtime, 11);
  out[at + 156] = h.typeflag;
  h.link?.copy(out, at + 157);
  putAscii(out, at + 257, 'ustar\x0000');
  putOctal(out, at + 329, 0, 6);
  putOctal(out, at + 337, 0, 6);
  if (h.device) {
    // 7 digits and a NUL: Linux's 12-bit majors and 20-bit minors fit (GNU
    // tar knows no pax record for them). The checksum then came out as
    // digits, NUL, space, where tar-stream's own is digits, space, NUL.
    putAscii(out, at + 329, `${h.device[0].toString(8).padStart(7, '0')}\0${h.device[1].toString(8).padStart(7, '0')}\0`);
    out.fill(0x20, at + 148, at + 156);
    putAscii(out, at + 148, `${checksum(out, at).toString(8).padStart(6, '0')}\0 `);
  } else {
    out.fill(0x20, at + 148, at + 156);
    const sum = checksum(out, at);
    out.fill(0, at + 148, at + 156);
    putOctal(out, at + 148, sum, 6);
  }
}

function checksum(out: Buffer, at: number): number {
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += out[i] as number;
  return sum;
}

/** Whole seconds as a ustar header holds them; the pax mtime is exact. */
function ustarTime(sec: number, nsec: number): number {
  // Truncated toward zero, as the nanoseconds divided used to be.
  const s = sec < 0 && nsec > 0 ? sec + 1 : sec;
  return Math.min(Math.max(s, 0), MAX_SECONDS);
}

/**
 * The ustar field for a name or link target: the bytes when ASCII and at
 * most 100 long; otherwise a pax record (key) carries the exact bytes, and
 * the field gets an ASCII stand-in that only readers without pax use.
 */
function standIn(bytes: Buffer, key: 'path' | 'linkpath', records: [string | Buffer, string | Buffer][]): Buffer {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) >= 0x80) ascii = false;
  if (ascii && bytes.length <= USTAR_NAME) return bytes;
  records.push([key, bytes]);
  return Buffer.from(bytes.subarray(0, USTAR_NAME).map((b) => (b < 0x80 ? b : 0x5f)));
}

/** ACLs as text for GNU tar --acls, then every attribute as its raw bytes. */
function xattrRecords(e: TreeEntry, records: [string | Buffer, string | Buffer][]): void {
  const raw: [Buffer, Buffer][] = [];
  for (const x of e.xattrs) {
    const name = x.name.toString('latin1');
    if (!fileOwn(name)) continue;
    const which = /^system\.posix_acl_(access|default)$/.exec(name)?.[1];
    const text = which ? aclText(x.value) : undefined;
    if (text !== undefined) records.push([`SCHILY.acl.${which}`, text]);
    raw.push([xattrKey(x.name), x.value]);
  }
  records.push(...raw);
}

/** Where a sparse file has data: [offset, length] pairs. */
type DataMap = [number, number][];

/**
 * A file with holes is stored in GNU tar's sparse format 1.0 (what tar
 * --sparse --format=posix writes, and GNU tar and libarchive restore with
 * the holes): named dir/GNUSparseFile.0/name, the real name and size in
 * pax records, its data a map ("count\noffset\nlength\n...", padded to a
 * block) followed by the data extents only.
 */
function sparseMap(e: TreeEntry, extents: DataMap): Buffer {
  const map = [...extents];
  // A hole at the end: GNU tar takes the file's size from the map's end.
  const [off, len] = map.at(-1) ?? [0, 0];
  if (off + len < e.size) map.push([e.size, 0]);
  const text = [map.length, ...map.flat()].join('\n') + '\n';
  const block = Buffer.alloc(Math.ceil(text.length / BLOCK) * BLOCK);
  block.write(text, 'latin1');
  return block;
}

class TarOut {
  private out = Buffer.allocUnsafe(OUT);
  private spare = Buffer.allocUnsafe(OUT);
  private pos = 0;
  /** The write of the spare buffer in flight. */
  private writing: Promise<void> = Promise.resolve();
  /** The file whose data records come next: its entry, the bytes still to come, what its data padding is. */
  private file: { e: TreeEntry; left: number; stored: number } | undefined;
  private sockets = 0;
  private socketExample = '';
  entries = 0;
  bytes = 0;

  constructor(
    private readonly write: WriteArchive,
    private readonly image: string,
    /** The image directory archived, as "./". */
    private readonly root: Buffer,
  ) {}

  /** Frames the records of buf[0, used). */
  async take(buf: Buffer, used: number): Promise<void> {
    for (let at = 0; at < used; ) {
      const kind = buf.readUInt32LE(at);
      const len = buf.readUInt32LE(at + 4);
      if (kind === ENTRY) {
        // The most an entry's headers can take: two blocks, two of padding,
        // two for the fixed records, and its record's bytes four times over
        // (a name goes into two records and a header; ACL text and a sparse
        // map take up to three bytes for each of theirs).
        const most = 6 * BLOCK + 4 * len;
        if (this.pos + most > this.out.length) await this.flush(most);
        this.entry(readEntry(buf, at));
      } else if (kind === DATA) {
        await this.data(buf, at + DATA_HEAD, at + DATA_HEAD + buf.readUInt32LE(at + 8));
      } else if (kind === CHANGED) {
        const e = this.file?.e;
        throw new LklfsError(`${this.image}:${e ? this.show(e) : '?'}: changed size while being read (was ${e?.size} bytes)`);
      } else throw new Error(`unknown tree record kind ${kind}`);
      at += len;
    }
  }

  private entry(e: TreeEntry): void {
    const kind = kindOf(e.mode);
    if (kind === 'socket') {
      if (this.sockets++ === 0) this.socketExample = this.show(e);
      return;
    }
    this.entries++;
    const name = e.name.length === 0 ? ROOT : kind === 'dir' ? Buffer.concat([e.name, SLASH]) : e.name;
    const mtime = ustarTime(e.mtimeSec, e.mtimeNsec);
    const records: [string | Buffer, string | Buffer][] = [];
    if (e.hardLink) {
      // A later name of an inode already archived: a link entry, no data.
      const h: Ustar = { name: standIn(name, 'path', records), typeflag: LINK, mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime };
      h.link = standIn(e.link, 'linkpath', records);
      return this.frame(h, records);
    }
    const map = e.extents && sparseMap(e, e.extents);
    const stored = map ? map.length + e.data : e.size;
    let headerName = name;
    if (map) {
      const cut = name.lastIndexOf(0x2f) + 1;
      headerName = Buffer.concat([name.subarray(0, cut), SPARSE_DIR, name.subarray(cut)]);
    }
    const h: Ustar = {
      name: standIn(headerName, 'path', records),
      typeflag: TYPEFLAG[kind],
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: kind === 'file' ? stored : 0,
      mtime,
    };
    if (kind === 'symlink') h.link = standIn(e.link, 'linkpath', records);
    if (kind === 'char' || kind === 'block') h.device = [e.rdevMajor, e.rdevMinor];
    records.push(['mtime', paxTime(e.mtimeSec, e.mtimeNsec)], ['atime', paxTime(e.atimeSec, e.atimeNsec)]);
    if (e.uid > MAX_ID) records.push(['uid', String(e.uid)]);
    if (e.gid > MAX_ID) records.push(['gid', String(e.gid)]);
    if (kind === 'file' && stored > MAX_SIZE) records.push(['size', String(stored)]);
    xattrRecords(e, records);
    if (map) records.push(['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', name], ['GNU.sparse.realsize', String(e.size)]);
    this.frame(h, records);
    if (kind !== 'file' || stored === 0) return;
    this.file = { e, left: e.data, stored };
    if (map) {
      map.copy(this.out, this.pos);
      this.pos += map.length;
    }
    if (e.data === 0) this.endFile();
  }

  /** An entry's extended header (when it has records) and ustar header, into the room entry() made. */
  private frame(h: Ustar, records: [string | Buffer, string | Buffer][]): void {
    if (records.length) {
      const body = this.pos + BLOCK;
      let at = body;
      for (const [key, value] of records) at = putRecord(this.out, at, key, value);
      at = padBody(this.out, body, at);
      putHeader(this.out, this.pos, { name: PAX_NAME, typeflag: PAX, mode: 0o644, uid: 0, gid: 0, size: at - body, mtime: h.mtime });
      this.pos = at;
    }
    putHeader(this.out, this.pos, h);
    this.pos += BLOCK;
  }

  /** A file's data, buf[from, to), then its padding once it is all there. */
  private async data(buf: Buffer, from: number, to: number): Promise<void> {
    const file = this.file;
    if (!file || to - from > file.left) throw new Error('tree data without a file to hold it');
    this.bytes += to - from;
    file.left -= to - from;
    while (from < to) {
      if (this.pos === this.out.length) await this.flush(0);
      const n = Math.min(to - from, this.out.length - this.pos);
      buf.copy(this.out, this.pos, from, from + n);
      this.pos += n;
      from += n;
    }
    if (file.left === 0) {
      if (this.pos + BLOCK > this.out.length) await this.flush(BLOCK);
      this.endFile();
    }
  }

  private endFile(): void {
    const pad = (BLOCK - ((this.file?.stored ?? 0) % BLOCK)) % BLOCK;
    this.out.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
    this.file = undefined;
  }

  /**
   * Hands on what the output buffer holds and goes on in the spare one
   * (once its own write is done), which is made room bytes large if smaller.
   */
  private async flush(room: number): Promise<void> {
    if (this.pos > 0) {
      await this.writing;
      const chunk = this.out.subarray(0, this.pos);
      this.writing = this.write(chunk);
      // Awaited before the next flush; a failure meanwhile is no unhandled rejection.
      this.writing.catch(() => undefined);
      [this.out, this.spare] = [this.spare, this.out];
      this.pos = 0;
    }
    if (room > this.out.length) this.out = Buffer.allocUnsafe(room);
  }

  /** Ends the archive (two zero blocks) and writes what is left. */
  async finish(): Promise<TarResult> {
    if (this.file) throw new Error('the tree ended in the middle of a file');
    if (this.pos + 2 * BLOCK > this.out.length) await this.flush(2 * BLOCK);
    this.out.fill(0, this.pos, this.pos + 2 * BLOCK);
    this.pos += 2 * BLOCK;
    await this.flush(0);
    await this.writing;
    const warnings = this.sockets
      ? [`${this.sockets} socket${this.sockets === 1 ? '' : 's'} not archived (tar cannot hold sockets), e.g. ${this.socketExample}`]
      : [];
    return { entries: this.entries, bytes: this.bytes, warnings };
  }

  /** An entry's path in the image, for messages. */
  private show(e: TreeEntry): string {
    if (e.name.length === 0) return this.root.toString();
    return Buffer.concat([this.root.length === 1 ? Buffer.alloc(0) : this.root, SLASH, e.name]).toString();
  }
}

/** Writes the image's whole tree as a tar stream through write. */
export async function writeTar(mount: Mount, write: WriteArchive, opts: TarOptions = {}): Promise<TarResult> {
  const root = opts.root ?? Buffer.from('/');
  const tar = new TarOut(write, mount.image, root);
  for await (const { buf, used } of readTree(mount, root, SMALL_FILE)) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    await tar.take(buf, used);
    opts.progress?.(tar.entries, tar.bytes);
  }
  return tar.finish();
}
