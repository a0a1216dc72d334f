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
import { kindOf } from './modes.js';
import { padBody, paxTime, putRecord, xattrKey } from './pax.js';
import { aclText } from './posix-acl.js';
import { CHANGED, DATA, DATA_HEAD, ENTRY, readEntry, treeBatches, type TreeEntry } from './tree-records.js';
import { BLOCK, MAX_SIZE, putHeader, TYPE, type Ustar } from './ustar.js';
import { fileOwn } from './xattrs.js';

/** Files up to this size come whole with their entry's record: no trip each. */
const SMALL_FILE = 256 << 10;
/** The archive is handed on in writes of this size. */
const OUT = 4 << 20;
/** ustar owners hold 6 octal digits... */
const MAX_ID = 0o777777;
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

const SLASH = Buffer.from('/');
const ROOT = Buffer.from('./');
const SPARSE_DIR = Buffer.from('GNUSparseFile.0/');
const PAX_NAME = Buffer.from('PaxHeader');

/** Whole seconds as a ustar header holds them; the pax mtime is exact. */
function ustarTime(sec: number, nsec: number): number {
  // Truncated toward zero, as the nanoseconds divided used to be.
  const s = sec < 0 && nsec > 0 ? sec + 1 : sec;
  return Math.min(Math.max(s, 0), MAX_SECONDS);
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
  /** Where the next extended header record of the entry being framed goes. */
  private at = 0;
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

  /**
   * An entry's extended header (when it needs one) and ustar header: the
   * records are written first, after the room of the extended header's
   * own block, which is filled in once the body's size is known.
   */
  private entry(e: TreeEntry): void {
    const kind = kindOf(e.mode);
    if (kind === 'socket') {
      if (this.sockets++ === 0) this.socketExample = this.show(e);
      return;
    }
    this.entries++;
    const name = e.name.length === 0 ? ROOT : kind === 'dir' ? Buffer.concat([e.name, SLASH]) : e.name;
    const mtime = ustarTime(e.mtimeSec, e.mtimeNsec);
    const start = this.pos;
    this.at = start + BLOCK;
    let h: Ustar;
    let map: Buffer | undefined;
    if (e.hardLink) {
      // A later name of an inode already archived: a link entry, no data.
      h = { name: this.standIn(name, 'path'), typeflag: TYPE.link, mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime };
      h.link = this.standIn(e.link, 'linkpath');
    } else {
      map = e.extents && sparseMap(e, e.extents);
      const stored = map ? map.length + e.data : e.size;
      let headerName = name;
      if (map) {
        const cut = name.lastIndexOf(0x2f) + 1;
        headerName = Buffer.concat([name.subarray(0, cut), SPARSE_DIR, name.subarray(cut)]);
      }
      h = { name: this.standIn(headerName, 'path'), typeflag: TYPE[kind], mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime };
      if (kind === 'file') h.size = stored;
      if (kind === 'symlink') h.link = this.standIn(e.link, 'linkpath');
      if (kind === 'char' || kind === 'block') h.device = [e.rdevMajor, e.rdevMinor];
      this.record('mtime', paxTime(e.mtimeSec, e.mtimeNsec));
      this.record('atime', paxTime(e.atimeSec, e.atimeNsec));
      if (e.uid > MAX_ID) this.record('uid', String(e.uid));
      if (e.gid > MAX_ID) this.record('gid', String(e.gid));
      if (kind === 'file' && stored > MAX_SIZE) this.record('size', String(stored));
      this.xattrRecords(e);
      if (map) {
        this.record('GNU.sparse.major', '1');
        this.record('GNU.sparse.minor', '0');
        this.record('GNU.sparse.name', name);
        this.record('GNU.sparse.realsize', String(e.size));
      }
    }
    if (this.at > start + BLOCK) {
      const end = padBody(this.out, start + BLOCK, this.at);
      putHeader(this.out, start, { name: PAX_NAME, typeflag: TYPE.pax, mode: 0o644, uid: 0, gid: 0, size: end - start - BLOCK, mtime });
      this.pos = end;
    }
    putHeader(this.out, this.pos, h);
    this.pos += BLOCK;
    if (h.typeflag !== TYPE.file || h.size === 0) return;
    this.file = { e, left: e.data, stored: h.size };
    if (map) {
      map.copy(this.out, this.pos);
      this.pos += map.length;
    }
    if (e.data === 0) this.endFile();
  }

  /** An extended header record of the entry being framed. */
  private record(key: string | Buffer, value: string | Buffer): void {
    this.at = putRecord(this.out, this.at, key, value);
  }

  /**
   * The ustar field for a name or link target: the bytes when ASCII and at
   * most 100 long; otherwise a pax record (key) carries the exact bytes,
   * and the field gets an ASCII stand-in that only readers without pax use.
   */
  private standIn(bytes: Buffer, key: 'path' | 'linkpath'): Buffer {
    let ascii = true;
    for (let i = 0; i < bytes.length && ascii; i++) ascii = (bytes[i] as number) < 0x80;
    if (ascii && bytes.length <= USTAR_NAME) return bytes;
    this.record(key, bytes);
    return Buffer.from(bytes.subarray(0, USTAR_NAME).map((b) => (b < 0x80 ? b : 0x5f)));
  }

  /** ACLs as text for GNU tar --acls, then every attribute as its raw bytes. */
  private xattrRecords(e: TreeEntry): void {
    if (e.xattrs.length === 0) return;
    const own = e.xattrs.filter((x) => fileOwn(x.name.toString('latin1')));
    for (const x of own) {
      const which = /^system\.posix_acl_(access|default)$/.exec(x.name.toString('latin1'))?.[1];
      const text = which ? aclText(x.value) : undefined;
      if (text !== undefined) this.record(`SCHILY.acl.${which}`, text);
    }
    for (const x of own) this.record(xattrKey(x.name), x.value);
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
  for await (const { buf, used } of treeBatches(mount, root, SMALL_FILE)) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    await tar.take(buf, used);
    opts.progress?.(tar.entries, tar.bytes);
  }
  return tar.finish();
}
