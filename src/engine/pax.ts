/**
 * POSIX pax extended header records, built as bytes: tar-stream's own pax
 * support makes records from JS strings and UTF-8-encodes them, which
 * breaks binary values (capabilities, ACLs) and names that are not UTF-8.
 */

const BLOCK = 512;

/**
 * One record, "<len> <key>=<value>\n", where len is the decimal length of
 * the whole record, its own digits included. Strings are written as
 * UTF-8, buffers as the bytes they are.
 */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  // The length counts its own digits: adding them may add a digit (9 -> 11).
  let digits = String(body.length).length;
  while (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
}

/** Nanoseconds since the epoch as pax writes times: "1582979696.123456789", "-0.5". */
export function paxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
}

/** The record key of an extended attribute; GNU tar escapes "%" and "=" in names. */
export function xattrKey(name: string): string {
  return `SCHILY.xattr.${name.replace(/%/g, '%25').replace(/=/g, '%3D')}`;
}

/**
 * The records as one extended header body whose length is a multiple of
 * 512, the room up to the block end taken by a "comment" record (which
 * readers ignore, by POSIX) instead of tar's zero padding. tar-stream pads
 * header-only entries the moment it writes their header, so a body can
 * follow such a header only if it needs no padding.
 */
export function paxBody(records: Buffer[]): Buffer {
  const body = Buffer.concat(records);
  const gap = (BLOCK - (body.length % BLOCK)) % BLOCK;
  if (gap === 0) return body;
  // The shortest comment is "12 comment=\n"; a gap of exactly 100 cannot
  // be filled either (a 97-byte body makes a 99-byte record): go one block on.
  for (let size = gap; ; size += BLOCK) {
    if (size < 12) continue;
    const comment = paxRecord('comment', '.'.repeat(size - String(size).length - 10));
    if (comment.length === size) return Buffer.concat([body, comment]);
  }
}

/** One record of an extended header: the key's bytes as latin1 (xattr names are bytes), the value as bytes. */
export interface PaxEntry {
  key: string;
  value: Buffer;
}

/**
 * The records of an extended header body, in order (a key may repeat: GNU
 * sparse 0.0 lists its map that way). Throws on a malformed record; NUL
 * bytes after the last record (padding some writers leave) end the body.
 */
export function parsePax(body: Buffer): PaxEntry[] {
  const out: PaxEntry[] = [];
  for (let at = 0; at < body.length && body[at] !== 0; ) {
    const space = body.indexOf(0x20, at);
    const digits = space < 0 ? '' : body.toString('latin1', at, space);
    const len = /^[0-9]{1,12}$/.test(digits) ? Number(digits) : NaN;
    if (!(len > digits.length + 1) || at + len > body.length || body[at + len - 1] !== 0x0a)
      throw new Error(`malformed extended header record at offset ${at} of its body`);
    const eq = body.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= at + len - 1) throw new Error(`extended header record without "=" at offset ${at} of its body`);
    out.push({ key: body.toString('latin1', space + 1, eq), value: body.subarray(eq + 1, at + len - 1) });
    at += len;
  }
  return out;
}

/** A pax time ("1582979696.123456789", "-1.5") in nanoseconds; undefined when malformed. */
export function parsePaxTime(text: string): bigint | undefined {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text);
  if (!m) return undefined;
  const ns = BigInt(m[2] as string) * 1_000_000_000n + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return m[1] ? -ns : ns;
}

/** The attribute name in a SCHILY.xattr key, GNU tar's "%" and "=" escapes undone. */
export function xattrNameOfKey(key: string): string {
  return key.slice('SCHILY.xattr.'.length).replace(/%(25|3D)/gi, (e) => (e === '%25' ? '%' : '='));
}
