/**
 * The SELinux contexts list LKL's fs2tar writes with -s: one "PATH
 * CONTEXT" line per entry that has a security.selinux label, PATH from
 * the archive's root with a leading "/" ("/etc/passwd", the root itself
 * "/"), CONTEXT the label without its terminating NUL. Names are bytes
 * and go out as they are.
 */
import type { ImageEntry } from './walk-image.js';

const SLASH = Buffer.from('/');
const SPACE = Buffer.from(' ');
const NEWLINE = Buffer.from('\n');

/** The line for entry (root: the image directory archived), undefined when it has no label. */
export function contextLine(entry: ImageEntry, root: Buffer): Buffer | undefined {
  const label = entry.xattrs?.find((x) => x.name === 'security.selinux')?.value;
  if (!label) return undefined;
  const end = label.indexOf(0);
  const path = root.length === 1 ? entry.path : entry.path.subarray(root.length);
  return Buffer.concat([path.length ? path : SLASH, SPACE, end < 0 ? label : label.subarray(0, end), NEWLINE]);
}
