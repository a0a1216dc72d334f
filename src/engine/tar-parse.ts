/**
 * Reading a tar stream as it arrives, entry by entry, the way GNU tar and
 * libarchive read what they and `docker export` write: v7, ustar (with its
 * name prefix), GNU (long names and link names, base-256 numbers, old
 * sparse files), POSIX pax (per-entry and global extended headers:
 * nanosecond times, long and non-UTF-8 names, big ids and sizes,
 * SCHILY.xattr.*, LIBARCHIVE.xattr.*, SCHILY.acl.*, GNU sparse 0.0, 0.1
 * and 1.0). Names, link targets and attribute values stay the bytes they
 * are.
 *
 * Our own parser rather than tar-stream's extract: that one decodes pax
 * values as UTF-8 strings (binary attributes and non-UTF-8 names would be
 * mangled), knows no sparse files and tells no byte offsets, which a
 * message about a bad archive needs.
 */
import { LklfsError } from '../errors.js';
import type { HostRange } from '../kernel/binding.js';
import { SourceError, type ByteSource } from './byte-source.js';
import { parsePax, parsePaxTime, xattrNameOfKey, type PaxEntry } from './pax.js';

const BLOCK = 512;
/** Extended headers and long names larger than this are taken for corruption. */
const MAX_META = 64 << 20;

export type EntryKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'link';

export interface TarEntry {
  /** Where the entry's first header (extended ones included) starts in the tar stream. */
  offset: number;
  /** The member name as stored ("./etc/passwd", "usr/bin/", ...). */
  name: Buffer;
  kind: EntryKind;
  /** A type flag this reader does not know: the entry is read as a regular file. */
  unknownType?: string;
  /** Permission bits, set-id and sticky bits included. */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** From a pax atime record, when there is one. */
  atimeNs?: bigint;
  /** A regular file's size (a sparse file's whole size, holes included). */
  size: number;
  /** A symlink's target, or the earlier member a hard link names. */
  linkname?: Buffer;
  devMajor: number;
  devMinor: number;
  /** Extended attributes, by name (latin1: names are bytes), in archive order. */
  xattrs: Map<string, Buffer>;
  /** POSIX ACLs as text (SCHILY.acl.access, SCHILY.acl.default). */
  acl: { access?: string; default?: string };
  /** Where a sparse file has data: [offset, length] pairs; holes elsewhere. */
  sparse?: [number, number][];
}

/**
 * A run of a regular file's data for offset at: the bytes as the pieces
 * they arrived in, or where they are in the archive file (see byte-source.ts).
 */
export interface DataRun {
  at: number;
  pieces: (Buffer | HostRange)[];
  length: number;
}

/** A name's bytes for messages: UTF-8 where it is, \xNN escapes elsewhere. */
export function showName(name: Buffer): string {
  const s = name.toString('utf8');
  if (Buffer.from(s).equals(name)) return s;
  return [...name].map((c) => (c < 0x80 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

/** A field's bytes up to its first NUL. */
function cstring(block: Buffer, at: number, len: number): Buffer {
  const field = block.subarray(at, at + len);
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

/**
 * A numeric header field: octal digits (spaces and NULs around them), or
 * GNU's base-256 (first byte 0x80 positive, 0xff negative, big-endian).
 * undefined when it is neither, or too large for a safe integer. (Read
 * byte by byte: there are seven in every header.)
 */
export function headerNumber(block: Buffer, at: number, len: number): number | undefined {
  const first = block[at] as number;
  if (first === 0x80 || first === 0xff) {
    let n = first === 0xff ? -1n : 0n;
    for (let i = 1; i < len; i++) n = (n << 8n) | BigInt(block[at + i] as number);
    const v = Number(n);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  let i = at;
  const end = at + len;
  while (i < end && block[i] === 0x20) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c < 0x30 || c > 0x37) break;
    n = n * 8 + (c - 0x30);
  }
  // Only spaces and NULs may follow the digits.
  for (; i < end; i++) if (block[i] !== 0 && block[i] !== 0x20) return undefined;
  return n;
}

/** Whether block's checksum is right (unsigned bytes, as POSIX says; signed, as some old tars summed). */
function checksumOk(block: Buffer): boolean {
  const want = headerNumber(block, 148, 8);
  if (want === undefined) return false;
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 0x20;
  for (let i = 0; i < 148; i++) unsigned += block[i] as number;
  for (let i = 156; i < BLOCK; i++) unsigned += block[i] as number;
  if (unsigned === want) return true;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && (block[i] as number) > 127) high++;
  return unsigned - 256 * high === want;
}

const KINDS: Record<string, EntryKind> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  D: 'dir',
  '6': 'fifo',
};

/** Extended-header state for the entry being read: global records first, then the entry's own. */
interface Meta {
  global: PaxEntry[];
  local: PaxEntry[];
  longName?: Buffer;
  longLink?: Buffer;
  /** Where the first header of the entry was. */
  start?: number;
}

export class TarReader {
  /** Stored data of the current entry not yet read, and its padding. */
  private remaining = 0;
  private padding = 0;
  private current: TarEntry | undefined;
  /** The current entry's data extents still to come: [offset, length]. */
  private extents: [number, number][] = [];
  private global: PaxEntry[] = [];
  /** The last entry's name (shown only in messages). */
  private previous: Buffer | undefined;
  /** The archive ended without its two zero blocks (a warning, as GNU tar would not mind). */
  endedWithoutMarker = false;

  /** label names the archive in messages ("rootfs.tar", "standard input"). */
  constructor(
    private readonly src: ByteSource,
    private readonly label: string,
  ) {}

  /** The next entry, or null at the end of the archive. Data not read is skipped. */
  async next(): Promise<TarEntry | null> {
    try {
      return await this.nextEntry();
    } catch (e) {
      throw this.sourceFailed(e);
    }
  }

  /**
   * The next run of the current regular file's data, up to max bytes (what
   * has arrived, at least one byte), with the file offset it goes to; null
   * once all of it has been read.
   */
  async read(max: number): Promise<DataRun | null> {
    try {
      return await this.readRun(max);
    } catch (e) {
      throw this.sourceFailed(e);
    }
  }

  /** A failure of the stream itself, placed in the archive. */
  private sourceFailed(e: unknown): unknown {
    if (!(e instanceof SourceError)) return e;
    const cause = e.cause;
    const what = cause instanceof LklfsError ? cause.message : `cannot read ${this.label}: ${e.message}`;
    const c = this.current;
    const where = c
      ? `in entry ${showName(c.name)} (header at byte ${c.offset})`
      : this.previous === undefined
        ? 'before its first entry'
        : `after entry ${showName(this.previous)}`;
    return new LklfsError(`${what} (at byte ${e.position} of the tar stream, ${where})`, 1, { cause });
  }

  private async nextEntry(): Promise<TarEntry | null> {
    if (this.current) await this.skipData();
    const meta: Meta = { global: this.global, local: [] };
    for (;;) {
      const at = this.src.position;
      meta.start ??= at;
      if (!(await this.src.fill(BLOCK))) {
        if (at === 0 && this.src.available === 0) throw new LklfsError(`${this.label}: not a tar archive (it is empty)`);
        if (this.src.available > 0 || meta.start !== at) this.truncated(this.end(), 'a header', meta.start);
        this.endedWithoutMarker = true;
        return null;
      }
      const block = this.src.take(BLOCK);
      if (!checksumOk(block) && block.every((b) => b === 0)) {
        if (meta.start !== at) throw this.corrupt(at, 'an end-of-archive block where an entry was expected');
        // The end: a second zero block (or nothing), then padding to the record's end.
        await this.src.drain();
        return null;
      }
      if (!checksumOk(block)) {
        if (at === 0) throw new LklfsError(`${this.label}: not a tar archive (no tar header at its start)`);
        throw this.corrupt(at, 'a header with a bad checksum');
      }
      const type = String.fromCharCode(block[156] as number);
      const size = this.number(block, 124, 12, 'size', at);
      if (type === 'x' || type === 'X' || type === 'g') {
        const records = this.parseRecords(await this.body(size, at, 'extended header'), at);
        if (type === 'g') {
          this.global = [...this.global, ...records];
          meta.global = this.global;
        } else meta.local.push(...records);
        continue;
      }
      if (type === 'L' || type === 'K') {
        const body = await this.body(size, at, type === 'L' ? 'long name' : 'long link name');
        const value = cstring(body, 0, body.length);
        if (type === 'L') meta.longName = value;
        else meta.longLink = value;
        continue;
      }
      if (type === 'V') {
        // A volume label: nothing to extract.
        await this.body(size, at, 'volume label');
        meta.start = undefined;
        continue;
      }
      if (type === 'M') throw this.corrupt(at, 'a multi-volume continuation, which tar2fs does not read');
      return this.entry(block, type, size, meta, at);
    }
  }

  private async readRun(max: number): Promise<DataRun | null> {
    while (this.extents.length && (this.extents[0] as [number, number])[1] === 0) this.extents.shift();
    const extent = this.extents[0];
    if (!extent || !this.current) return null;
    const pieces = await this.src.takeData(Math.min(max, extent[1]));
    if (!pieces.length) this.truncated(this.src.position, 'its data');
    const length = pieces.reduce((n, p) => n + p.length, 0);
    const run = { at: extent[0], pieces, length };
    extent[0] += length;
    extent[1] -= length;
    this.remaining -= length;
    return run;
  }

  private async entry(block: Buffer, type: string, size: number, meta: Meta, at: number): Promise<TarEntry> {
    const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
    const gnu = block.toString('latin1', 257, 265) === 'ustar  \0';
    let name = cstring(block, 0, 100);
    const prefix = ustar ? cstring(block, 345, 155) : Buffer.alloc(0);
    if (prefix.length) name = Buffer.concat([prefix, Buffer.from('/'), name]);
    let kind = KINDS[type];
    // Old archives mark directories by a trailing slash only.
    if ((type === '0' || type === '\0') && name[name.length - 1] === 0x2f) kind = 'dir';
    const num = (off: number, len: number, what: string) => this.number(block, off, len, what, at);
    const e: TarEntry = {
      offset: meta.start ?? at,
      name: meta.longName ?? name,
      kind: kind ?? 'file',
      unknownType: kind ? undefined : type,
      mode: num(100, 8, 'mode') & 0o7777,
      uid: this.safe(num(108, 8, 'uid'), 'uid', at),
      gid: this.safe(num(116, 8, 'gid'), 'gid', at),
      mtimeNs: BigInt(num(136, 12, 'mtime')) * 1_000_000_000n,
      size: 0,
      linkname: kind === 'symlink' || kind === 'link' ? (meta.longLink ?? cstring(block, 157, 100)) : undefined,
      devMajor: kind === 'char' || kind === 'block' ? num(329, 8, 'devmajor') : 0,
      devMinor: kind === 'char' || kind === 'block' ? num(337, 8, 'devminor') : 0,
      xattrs: new Map(),
      acl: {},
    };
    let stored = size;
    let sparse: Sparse = {};
    for (const r of [...meta.global, ...meta.local]) {
      const s = this.applyRecord(e, r, sparse, at);
      if (s !== undefined) stored = s;
    }
    if (sparse.name) e.name = sparse.name;
    if (gnu && type === 'S') sparse = await this.oldGnuSparse(block, at);
    // Data is stored for regular files, and skipped for hard links and
    // directories that carry some; the other kinds have none, whatever their size says.
    const hasData = e.kind === 'file' || e.kind === 'link' || e.kind === 'dir';
    this.remaining = hasData ? this.safe(stored, 'size', at) : 0;
    this.padding = (BLOCK - (this.remaining % BLOCK)) % BLOCK;
    this.current = e;
    this.previous = e.name;
    this.extents = [];
    if (e.kind !== 'file') return e;
    e.size = this.remaining;
    if (sparse.major === '1') sparse.map = await this.sparseMap(e, at);
    if (sparse.map) {
      e.size = this.safe(sparse.realSize ?? this.remaining, 'sparse file size', at);
      e.sparse = this.checkMap(sparse.map, e, at);
      this.extents = e.sparse.map(([o, l]) => [o, l]);
    } else this.extents = [[0, this.remaining]];
    return e;
  }

  /** Applies one extended header record to e; a new stored size when it gives one. */
  private applyRecord(e: TarEntry, r: PaxEntry, sparse: Sparse, at: number): number | undefined {
    const text = () => r.value.toString('utf8');
    const decimal = () => {
      const n = Number(text());
      if (!/^[0-9]+$/.test(text()) || !Number.isSafeInteger(n)) throw this.corrupt(at, `an extended header with a bad ${r.key} value`);
      return n;
    };
    const time = () => {
      const t = parsePaxTime(text());
      if (t === undefined) throw this.corrupt(at, `an extended header with a bad ${r.key} value`);
      return t;
    };
    switch (r.key) {
      case 'path':
        e.name = r.value;
        return;
      case 'linkpath':
        if (e.linkname) e.linkname = r.value;
        return;
      case 'size':
        return decimal();
      case 'uid':
        e.uid = this.safe(decimal(), 'uid', at);
        return;
      case 'gid':
        e.gid = this.safe(decimal(), 'gid', at);
        return;
      case 'mtime':
        e.mtimeNs = time();
        return;
      case 'atime':
        e.atimeNs = time();
        return;
      case 'SCHILY.devmajor':
        e.devMajor = this.safe(decimal(), 'devmajor', at);
        return;
      case 'SCHILY.devminor':
        e.devMinor = this.safe(decimal(), 'devminor', at);
        return;
      case 'SCHILY.acl.access':
        e.acl.access = text();
        return;
      case 'SCHILY.acl.default':
        e.acl.default = text();
        return;
      case 'GNU.sparse.name':
        sparse.name = r.value;
        return;
      case 'GNU.sparse.size':
      case 'GNU.sparse.realsize':
        sparse.realSize = decimal();
        return;
      case 'GNU.sparse.major':
        sparse.major = text();
        return;
      case 'GNU.sparse.offset':
        (sparse.map ??= []).push([this.safe(decimal(), 'sparse offset', at), 0]);
        return;
      case 'GNU.sparse.numbytes': {
        const last = sparse.map?.at(-1);
        if (!last || last[1] !== 0) throw this.corrupt(at, 'a sparse map with a length before its offset');
        last[1] = this.safe(decimal(), 'sparse length', at);
        return;
      }
      case 'GNU.sparse.map': {
        const nums = text().split(',').filter(Boolean);
        if (nums.length % 2 || !nums.every((n) => /^[0-9]+$/.test(n))) throw this.corrupt(at, 'a bad GNU.sparse.map');
        sparse.map = [];
        for (let i = 0; i < nums.length; i += 2) sparse.map.push([Number(nums[i]), Number(nums[i + 1])]);
        return;
      }
    }
    if (r.key.startsWith('SCHILY.xattr.')) e.xattrs.set(xattrNameOfKey(r.key), r.value);
    else if (r.key.startsWith('LIBARCHIVE.xattr.')) {
      // libarchive: the name URL-encoded, the value in base64.
      const encoded = r.key.slice('LIBARCHIVE.xattr.'.length);
      const name = encoded.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      e.xattrs.set(name, Buffer.from(text(), 'base64'));
    }
    return undefined;
  }

  /** GNU's old sparse format: the map in the header, then in extension blocks. */
  private async oldGnuSparse(block: Buffer, at: number): Promise<Sparse> {
    const map: [number, number][] = [];
    const entries = (b: Buffer, from: number, count: number) => {
      for (let i = 0; i < count; i++) {
        const off = from + 24 * i;
        if (b[off] === 0) break;
        map.push([this.safe(this.number(b, off, 12, 'sparse offset', at), 'sparse offset', at), this.safe(this.number(b, off + 12, 12, 'sparse length', at), 'sparse length', at)]);
      }
    };
    entries(block, 386, 4);
    let extended = block[482] !== 0;
    while (extended) {
      if (!(await this.src.fill(BLOCK))) this.truncated(this.end(), 'its sparse map', at);
      const ext = this.src.take(BLOCK);
      entries(ext, 0, 21);
      extended = ext[504] !== 0;
    }
    return { map, realSize: this.number(block, 483, 12, 'sparse file size', at) };
  }

  /** GNU sparse 1.0: the map at the start of the data, in decimal lines, padded to a block. */
  private async sparseMap(e: TarEntry, at: number): Promise<[number, number][]> {
    let text = '';
    const numbers: number[] = [];
    let want = -1;
    while (want < 0 || numbers.length < want) {
      if (this.remaining < BLOCK) throw this.corrupt(at, `entry ${showName(e.name)} with a sparse map longer than its data`);
      if (!(await this.src.fill(BLOCK))) this.truncated(this.end(), 'its sparse map');
      text += this.src.take(BLOCK).toString('latin1');
      this.remaining -= BLOCK;
      const lines = text.split('\n');
      text = lines.pop() as string;
      for (const line of lines) {
        if (!/^[0-9]+$/.test(line)) throw this.corrupt(at, `entry ${showName(e.name)} with a bad sparse map`);
        if (want < 0) want = 1 + 2 * Number(line);
        numbers.push(Number(line));
        if (numbers.length === want) break;
      }
    }
    const map: [number, number][] = [];
    for (let i = 1; i < numbers.length; i += 2) map.push([numbers[i] as number, numbers[i + 1] as number]);
    return map;
  }

  /** The map must be in order, inside the file, and account for the data stored. */
  private checkMap(map: [number, number][], e: TarEntry, at: number): [number, number][] {
    let end = 0;
    let data = 0;
    for (const [off, len] of map) {
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < end || off + len > e.size)
        throw this.corrupt(at, `entry ${showName(e.name)} with a bad sparse map`);
      end = off + len;
      data += len;
    }
    if (data !== this.remaining)
      throw this.corrupt(at, `entry ${showName(e.name)} whose sparse map accounts for ${data} bytes of its ${this.remaining}`);
    return map;
  }

  /** An extended header's or long name's body. */
  private async body(size: number, at: number, what: string): Promise<Buffer> {
    if (size > MAX_META) throw this.corrupt(at, `a ${what} of ${size} bytes`);
    const n = size;
    const padded = n + ((BLOCK - (n % BLOCK)) % BLOCK);
    if (!(await this.src.fill(padded))) this.truncated(this.end(), `a ${what}`, at);
    const body = Buffer.from(this.src.take(n));
    this.src.take(padded - n);
    return body;
  }

  private parseRecords(body: Buffer, at: number): PaxEntry[] {
    try {
      return parsePax(body);
    } catch (e) {
      throw this.corrupt(at, `a bad extended header (${(e as Error).message})`);
    }
  }

  private async skipData(): Promise<void> {
    const want = this.remaining + this.padding;
    const at = this.src.position;
    const got = await this.src.skip(want);
    if (got < want) this.truncated(at + got, 'its data');
    this.remaining = 0;
    this.padding = 0;
    this.extents = [];
    this.current = undefined;
  }

  private number(block: Buffer, off: number, len: number, what: string, at: number): number {
    const n = headerNumber(block, off, len);
    if (n === undefined) throw this.corrupt(at, `a header with a bad ${what} field`);
    return n;
  }

  /** Where the stream ended, once a fill has come up short. */
  private end(): number {
    return this.src.position + this.src.available;
  }

  /** A number that must be a count: not negative. */
  private safe(n: number, what: string, at: number): number {
    if (n < 0) throw this.corrupt(at, `a ${what} of ${n}`);
    return n;
  }

  private corrupt(at: number, what: string): LklfsError {
    const after = this.previous === undefined ? 'its first entry' : `after entry ${showName(this.previous)}`;
    return new LklfsError(`${this.label}: corrupt archive: ${what} at byte ${at} (${after})`);
  }

  /** The stream ended at byte at, in the middle of what (of the current entry, or of the headers at byte header). */
  private truncated(at: number, what: string, header?: number): never {
    const e = this.current;
    const where = e
      ? `entry ${showName(e.name)} (header at byte ${e.offset}) is cut short: the archive ends at byte ${at}, in ${what}`
      : `the archive ends at byte ${at}, in ${what}${header === undefined ? '' : ` (header at byte ${header})`}${this.previous === undefined ? '' : `, after entry ${showName(this.previous)}`}`;
    throw new LklfsError(`${this.label}: truncated archive: ${where}`);
  }
}

interface Sparse {
  /** The real name (0.1, 1.0: the header's is a stand-in). */
  name?: Buffer;
  major?: string;
  realSize?: number;
  map?: [number, number][];
}
