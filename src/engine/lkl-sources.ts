/**
 * Sources named the way LKL's cptofs and cpfromfs name them, turned into
 * the paths copyIn and copyOut take:
 * - the last component is a shell pattern (fnmatch, see fnmatch.ts)
 *   matched against the names in its directory, so 'etc/*.conf' copies
 *   every .conf file of etc (quoted, the shell leaves the matching to us;
 *   for cpfromfs it can only be done inside the image);
 * - a source made only of "." and "/" ('.', '/', './') stands for the
 *   contents of that directory, like lklfs's "dir/.".
 * The directories are listed by the caller: the host's for cptofs, the
 * image's for cpfromfs.
 */
import { UsageError } from '../errors.js';
import { fnmatcher, isPattern } from './fnmatch.js';

/** The names in a directory (without "." and ".."), in any order. */
export type ListDir = (dir: Buffer) => Promise<Buffer[]>;

const SLASH = 0x2f;

/** Each source as the paths it stands for, in the order given, names sorted by bytes. */
export async function expandSources(sources: (string | Buffer)[], list: ListDir): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const source of sources) out.push(...(await expandOne(Buffer.from(source), list)));
  return out;
}

async function expandOne(source: Buffer, list: ListDir): Promise<Buffer[]> {
  const text = source.toString();
  if (source.length && source.every((b) => b === SLASH || b === 0x2e) && !source.includes('..'))
    return [Buffer.concat([source, Buffer.from(source[source.length - 1] === SLASH ? '.' : '/.')])];
  // "dir/" is "dir", as basename(3) has it.
  let end = source.length;
  while (end > 1 && source[end - 1] === SLASH) end--;
  const path = source.subarray(0, end);
  const cut = path.lastIndexOf(SLASH);
  const base = path.subarray(cut + 1);
  if (base.equals(Buffer.from('..'))) throw new UsageError(`cannot copy ${text}: name the directory itself, not ".."`);
  // A plain name (or "dir/.") is copied as it is: a missing one is the copy's own error.
  if (!isPattern(base)) return [path];
  const dir = cut < 0 ? Buffer.from('.') : cut === 0 ? Buffer.from('/') : path.subarray(0, cut);
  const matches = fnmatcher(base);
  const names = (await list(dir)).filter((n) => !n.equals(DOT) && !n.equals(DOTDOT) && matches(n)).sort(Buffer.compare);
  if (!names.length) throw new UsageError(`no match for ${text}`);
  const prefix = cut < 0 ? Buffer.alloc(0) : path.subarray(0, cut + 1);
  return names.map((n) => Buffer.concat([prefix, n]));
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
