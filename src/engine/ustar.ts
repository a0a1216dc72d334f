/**
 * ustar header blocks, laid out byte for byte as tar-stream laid them out
 * when it framed fs2tar's entries (the archives stay the same): octal
 * fields of n digits and a space (all 7s when the value does not fit),
 * the checksum as 6 digits, a space and a NUL, magic "ustar\0" version
 * "00", no owner names, device fields "000000 " unless given.
 */

export const BLOCK = 512;

export const TYPE = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
  pax: 0x78,
} as const;

/** Sizes in 11 octal digits; larger ones in base-256, which only GNU readers know. */
export const MAX_SIZE = 0o77777777777;

export interface Ustar {
  /** ASCII, at most 100 bytes. */
  name: Buffer;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds, 0 to 2^31 - 1. */
  mtime: number;
  /** ASCII, at most 100 bytes. */
  link?: Buffer;
  /** [major, minor], each under 8^7 (Linux's are 12 and 20 bits). */
  device?: [number, number];
}

/**
 * What every header starts as: zeros, the magic and version, device
 * fields "000000 " (checksum: the checksum field counts as eight spaces).
 */
const TEMPLATE = Buffer.alloc(BLOCK);
TEMPLATE.write('ustar\x0000', 257, 'latin1');
TEMPLATE.write('000000 \x00000000 ', 329, 'latin1');
const TEMPLATE_SUM = TEMPLATE.reduce((n, b) => n + b, 8 * 0x20);
const NO_DEVICE_SUM = 2 * (6 * 0x30 + 0x20);

/** Copies bytes to out[at]; returns their sum (for the checksum). */
function putBytes(out: Buffer, at: number, bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    out[at + i] = b;
    sum += b;
  }
  return sum;
}

/** value in n octal digits and a space, all 7s when it does not fit; returns the bytes' sum. */
function putOctal(out: Buffer, at: number, value: number, n: number): number {
  let sum = 0x20;
  out[at + n] = 0x20;
  if (value >= 8 ** n) {
    out.fill(0x37, at, at + n);
    return sum + n * 0x37;
  }
  let i = at + n - 1;
  // Integer arithmetic once the value fits in 31 bits (all fields but large sizes).
  for (; value > 0x7fffffff; i--, value = Math.floor(value / 8)) {
    out[i] = 0x30 + (value % 8);
    sum += 0x30 + (value % 8);
  }
  for (; i >= at; i--, value >>>= 3) {
    out[i] = 0x30 + (value & 7);
    sum += 0x30 + (value & 7);
  }
  return sum;
}

/** A device number as 7 octal digits and a NUL; returns the bytes' sum. */
function putDevice(out: Buffer, at: number, value: number): number {
  const sum = putOctal(out, at, value, 7) - 0x20;
  out[at + 7] = 0;
  return sum;
}

/** The 512-byte header h at out[at]. */
export function putHeader(out: Buffer, at: number, h: Ustar): void {
  out.set(TEMPLATE, at);
  let sum = TEMPLATE_SUM + putBytes(out, at, h.name);
  sum += putOctal(out, at + 100, h.mode & 0o7777, 6);
  sum += putOctal(out, at + 108, h.uid, 6);
  sum += putOctal(out, at + 116, h.gid, 6);
  if (h.size > MAX_SIZE) {
    // Base-256: a marker byte, then the size big-endian.
    out[at + 124] = 0x80;
    sum += 0x80;
    for (let i = 11, n = h.size; i > 0; i--, n = Math.floor(n / 256)) {
      out[at + 124 + i] = n % 256;
      sum += n % 256;
    }
  } else sum += putOctal(out, at + 124, h.size, 11);
  sum += putOctal(out, at + 136, h.mtime, 11);
  out[at + 156] = h.typeflag;
  sum += h.typeflag;
  if (h.link) sum += putBytes(out, at + 157, h.link);
  if (h.device) {
    // tar-stream wrote devices in 6 digits, which cannot hold a minor over
    // 262143; fs2tar rewrote them as 7 digits and a NUL (GNU tar knows no
    // pax record for them), with the checksum as digits, NUL, space.
    sum += putDevice(out, at + 329, h.device[0]) + putDevice(out, at + 337, h.device[1]) - NO_DEVICE_SUM;
    putOctal(out, at + 148, sum, 6);
    out[at + 154] = 0;
    out[at + 155] = 0x20;
  } else putOctal(out, at + 148, sum, 6);
}
