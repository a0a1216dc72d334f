/**
 * The host's side of an lklfs mount: what it looks like in the host's
 * mount table, unmounting it (fusermount3, which normal users may run),
 * and waiting for its daemon to let go of the image.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { LklfsError } from '../errors.js';

/** The host's type for our mounts is fuse.SUBTYPE. */
export const FUSE_SUBTYPE = 'lklfs';

export interface HostMount {
  mountpoint: string;
  /** fuse.lklfs for ours. */
  fsType: string;
  /** Ours: the image's absolute path (libfuse's fsname). */
  source: string;
  readOnly: boolean;
}

/** mountinfo's escapes (\040 for a space, \134 for a backslash) undone. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount on mountpoint (an absolute path), the topmost if several. */
export function findMount(mountpoint: string): HostMount | undefined {
  let found: HostMount | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'latin1').split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fsType, source] = right.split(' ');
    if (!fields[4] || !fsType || source === undefined) continue;
    if (Buffer.from(unescape(fields[4]), 'latin1').toString() !== mountpoint) continue;
    found = {
      mountpoint,
      fsType,
      source: Buffer.from(unescape(source), 'latin1').toString(),
      readOnly: (fields[5] ?? '').split(',').includes('ro'),
    };
  }
  return found;
}

/** Why FUSE mounts cannot work here, or undefined if they can. */
export function fuseMissing(): string | undefined {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? '/dev/fuse does not exist (the host kernel has no FUSE: modprobe fuse)'
      : `/dev/fuse is not open to this user (${code})`;
  }
  return undefined;
}

function run(cmd: string, args: string[]): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (e, _stdout, stderr) => {
      if (e && typeof e.code === 'string') reject(e);
      else resolve({ status: typeof e?.code === 'number' ? e.code : 0, stderr: stderr.toString().trim() });
    });
  });
}

/** Unmounts a FUSE mount as its user may: the host first writes back what it cached. */
export async function fusermountUnmount(mountpoint: string): Promise<void> {
  let r;
  try {
    r = await run('fusermount3', ['-u', mountpoint]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new LklfsError('fusermount3 is not installed (Debian: apt-get install fuse3)', 1, { cause: e });
    throw e;
  }
  if (r.status !== 0)
    throw new LklfsError(`cannot unmount ${mountpoint}: ${r.stderr.replace(/^fusermount3: /, '') || `fusermount3 failed (${r.status})`}`);
}
