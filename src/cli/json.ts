/**
 * The shapes --json prints (schemas/*.json describe them). Names in an
 * image are bytes and JSON strings are Unicode: a name that is valid
 * UTF-8 is its string; one that is not also carries its exact bytes in
 * base64 (`pathBase64`, `targetBase64`), its string then showing U+FFFD
 * where the bytes were. Times are RFC 3339 UTC with nanoseconds.
 */
import type { KStat } from '../kernel/binding.js';
import { kindOf, type FileKind } from '../engine/modes.js';
import type { CopyTotals } from '../engine/copy-in.js';
import type { ImageEntry } from '../engine/walk-image.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** { [key]: string } for bytes, plus { [key]Base64 } when they are not UTF-8. */
export function bytesField<K extends string>(key: K, bytes: Buffer): Record<string, string> {
  try {
    return { [key]: utf8.decode(bytes) };
  } catch {
    return { [key]: bytes.toString('utf8'), [`${key}Base64`]: bytes.toString('base64') };
  }
}

/** "2020-02-29T12:34:56.123456789Z" */
export function isoTime(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const frac = ns - seconds * 1_000_000_000n;
  // Before 1970 the remainder is negative: borrow a second.
  const [s, f] = frac < 0n ? [seconds - 1n, frac + 1_000_000_000n] : [seconds, frac];
  const day = new Date(Number(s) * 1000).toISOString().slice(0, 19);
  return `${day}.${f.toString().padStart(9, '0')}Z`;
}

export interface EntryJson {
  path: string;
  pathBase64?: string;
  type: FileKind;
  /** Permission bits with set-id and sticky: mode & 07777. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: string;
  atime: string;
  mtime: string;
  ctime: string;
  target?: string;
  targetBase64?: string;
  rdev?: { major: number; minor: number };
  xattrs: string[];
}

export function entryJson(e: ImageEntry, path: Buffer = e.path): EntryJson {
  const s: KStat = e.stat;
  const type = kindOf(s.mode);
  return {
    ...(bytesField('path', path) as { path: string; pathBase64?: string }),
    type,
    mode: s.mode & 0o7777,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    ino: s.ino.toString(),
    atime: isoTime(s.atimeNs),
    mtime: isoTime(s.mtimeNs),
    ctime: isoTime(s.ctimeNs),
    ...(e.target ? bytesField('target', e.target) : {}),
    ...(type === 'char' || type === 'block' ? { rdev: { major: s.rdevMajor, minor: s.rdevMinor } } : {}),
    xattrs: (e.xattrs ?? []).map((x) => x.name),
  };
}

/** What cptofs and cpfromfs did: counts, bytes, and what was left out (one line per kind). */
export type CopyResult = CopyTotals & { warnings: string[] };
