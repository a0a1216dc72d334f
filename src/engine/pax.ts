/**
 * POSIX pax extended header records, read as bytes (tar2fs): values are
 * bytes (capabilities, ACLs, names that are not UTF-8), keys latin1.
 * Writing them is the binding's (native/src/tar_format.cc).
 */

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
