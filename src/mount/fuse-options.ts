/**
 * libfuse's arguments for a mount: the options given with -o, and ours.
 */
import { UsageError } from '../errors.js';
import { FUSE_SUBTYPE } from './host-mounts.js';

export interface FuseArgs {
  /** For libfuse: -o OPTIONS. */
  args: string[];
  /** -o ro was among the options: the same as --ro. */
  readOnly: boolean;
}

/** A value inside libfuse's comma-separated -o list: commas and backslashes escaped. */
function escapeOption(value: string): string {
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

/**
 * The options for mounting image: the user's (-o a,b -o c), then ours.
 * The host's permission checks are always on (default_permissions): our
 * kernel runs every call as root. The mount's source is the image's path
 * and its type fuse.lklfs, so `lklfs umount` can tell which image it is.
 */
export function fuseArgs(image: string, readOnly: boolean, given: string[]): FuseArgs {
  const options: string[] = [];
  for (const option of given.flatMap((o) => o.split(',')).filter(Boolean)) {
    const name = option.replace(/=.*/s, '');
    if (option === 'ro') readOnly = true;
    else if (option === 'rw') continue;
    else if (name === 'fsname' || name === 'subtype')
      throw new UsageError(`-o ${name} is lklfs's own: the mount's source is the image, its type fuse.${FUSE_SUBTYPE}`);
    else options.push(option);
  }
  options.push(`fsname=${escapeOption(image)}`, `subtype=${FUSE_SUBTYPE}`, 'default_permissions');
  if (readOnly) options.push('ro');
  return { args: ['-o', options.join(',')], readOnly };
}
