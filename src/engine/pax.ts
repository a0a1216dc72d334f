/**
 * POSIX pax extended header records, written as bytes straight into the
 * archive's buffer: values are bytes (binary xattrs, ACLs, names that are
 * not UTF-8 survive exactly).
 */

const BLOCK = 512;

function digits(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : String(n).length;
}

/**
 * The length of "<len> <key>=<value>\n" for a key and value of these
 * byte lengths: len is the decimal length of the whole record, its own
 * digits included (adding them may add a digit: 9 -> 11).
 */
function recordLength(keyLen: number, valueLen: number): number {
  const body = keyLen + valueLen + 3;
  let d = digits(body);
  while (digits(body + d) > d) d++;
  return body + d;
}

/** Writes ASCII text at out[at]; returns where it ends. */
function putAscii(out: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/**
 * Writes one record at out[at] and returns where it ends. Keys and string
 * values are ASCII here (names, numbers, times, ACL text); Buffers are
 * written as the bytes they are. The caller makes the room: at most
 * key + value + 3 + 8 bytes.
 */
export function putRecord(out: Buffer, at: number, key: string | Buffer, value: string | Buffer): number {
  const len = recordLength(key.length, value.length);
  at = putAscii(out, at, String(len));
  out[at++] = 0x20;
  at = typeof key === 'string' ? putAscii(out, at, key) : at + key.copy(out, at);
  out[at++] = 0x3d;
  at = typeof value === 'string' ? putAscii(out, at, value) : at + value.copy(out, at);
  out[at++] = 0x0a;
  return at;
}

/** One record as a Buffer; string values are written as UTF-8. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const bytes = Buffer.from(value);
  const out = Buffer.alloc(recordLength(Buffer.byteLength(key), bytes.length));
  putRecord(out, 0, Buffer.from(key), bytes);
  return out;
}

/** Seconds and nanoseconds (0 to 999999999, the seconds floored) as pax writes times: "1582979696.123456789", "-0.5". */
export function paxTime(sec: number, nsec: number): string {
  let sign = '';
  if (sec < 0) {
    // -1.5 s is sec -2, nsec 500000000.
    sign = '-';
    sec = nsec ? -sec - 1 : -sec;
    nsec = nsec ? 1_000_000_000 - nsec : 0;
  }
  if (nsec === 0) return `${sign}${sec}`;
  let width = 9;
  while (nsec % 10 === 0) {
    nsec /= 10;
    width--;
  }
  return `${sign}${sec}.${String(nsec).padStart(width, '0')}`;
}

const XATTR_PREFIX = Buffer.from('SCHILY.xattr.');

/** The record key of an extended attribute; GNU tar escapes "%" and "=" in names. */
export function xattrKey(name: Buffer): Buffer {
  const key = Buffer.concat([XATTR_PREFIX, name]);
  if (!name.includes(0x25) && !name.includes(0x3d)) return key;
  return Buffer.from(key.toString('latin1').replace(/%/g, '%25').replace(/=/g, '%3D'), 'latin1');
}

/**
 * Fills out[start, at), an extended header body, up to a multiple of 512
 * bytes with a "comment" record (which readers ignore, by POSIX) instead
 * of zero padding, and returns where it ends (at most 512 + 511 bytes on).
 * tar-stream wrote the archives this way (it padded header-only entries
 * the moment it wrote their header), and the bytes stay as they were.
 */
export function padBody(out: Buffer, start: number, at: number): number {
  const gap = (BLOCK - ((at - start) % BLOCK)) % BLOCK;
  if (gap === 0) return at;
  // The shortest comment is "12 comment=\n"; a gap of exactly 100 cannot
  // be filled either (a 97-byte body makes a 99-byte record): go one block on.
  for (let size = gap; ; size += BLOCK) {
    if (size < 12) continue;
    const dots = size - String(size).length - 10;
    if (recordLength(7, dots) !== size) continue;
    at = putAscii(out, at, `${size} comment=`);
    out.fill(0x2e, at, at + dots);
    out[at + dots] = 0x0a;
    return at + dots + 1;
  }
}
