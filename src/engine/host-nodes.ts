/**
 * Fifos and device nodes on the host. Node has no mknod(2) or mkfifo(3),
 * so coreutils' mknod makes them. Its arguments are strings, while names
 * are bytes that need not be UTF-8: the node is made under a temporary
 * ASCII name, in the target's directory reached through a descriptor the
 * child inherits (/proc/self/fd/3), and renamed into place with Buffer
 * paths. The rename stays in one directory, so one filesystem.
 */
import { spawn } from 'node:child_process';
import { open, rename } from 'node:fs/promises';
import { LklfsError } from '../errors.js';

export type NodeKind = 'fifo' | 'char' | 'block';

const SLASH = 0x2f;
let serial = 0;

/** The directory of a host path given as bytes ("a/b" -> "a", "b" -> "."). */
function dirOf(path: Buffer): Buffer {
  const at = path.lastIndexOf(SLASH);
  return at < 0 ? Buffer.from('.') : at === 0 ? Buffer.from('/') : path.subarray(0, at);
}

/** Runs mknod with dirFd as its descriptor 3; its error message, if any. */
function mknod(args: string[], dirFd: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    // C messages: "Operation not permitted" is looked for below.
    const child = spawn('mknod', args, { stdio: ['ignore', 'ignore', 'pipe', dirFd], env: { ...process.env, LC_ALL: 'C' } });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve(status === 0 ? undefined : err.trim() || `mknod exited with ${status}`));
  });
}

/**
 * Makes a fifo or a device node at path with mode 0600 (the caller sets
 * the real mode later). False when the host does not allow it (devices
 * without CAP_MKNOD); other failures throw.
 */
export async function makeNode(path: Buffer, kind: NodeKind, major = 0, minor = 0): Promise<boolean> {
  const dir = dirOf(path);
  const temp = `.lklfs-node-${process.pid}-${serial++}`;
  const dirHandle = await open(dir, 'r');
  let failure: string | undefined;
  try {
    const type = { fifo: ['p'], char: ['c', String(major), String(minor)], block: ['b', String(major), String(minor)] }[kind];
    failure = await mknod(['-m', '600', '--', `/proc/self/fd/3/${temp}`, ...type], dirHandle.fd);
  } finally {
    await dirHandle.close();
  }
  if (failure === undefined) {
    await rename(Buffer.concat([dir, Buffer.from(`/${temp}`)]), path);
    return true;
  }
  if (failure.includes('Operation not permitted')) return false;
  throw new LklfsError(`mknod ${path.toString()}: ${failure}`);
}
