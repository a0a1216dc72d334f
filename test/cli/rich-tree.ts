/**
 * A source tree with everything the copy commands must keep: every file
 * type, holes, hard links, odd names (spaces, UTF-8, bytes that are not
 * UTF-8, 255-byte names, paths over tar's 100 bytes), owners, set-id and
 * sticky bits, nanosecond times, user and security xattrs, ACLs.
 * Owners and device nodes need root; without it they are left out.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, linkSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../kernel/harness.js';

export const isRoot = process.getuid?.() === 0;

/** What makeRichTree leaves out when not run as root. */
const needsRoot = ['device nodes', 'owners other than the caller', 'file capabilities (security.capability)'];

/**
 * Registers one skipped test per part of the rich tree that this run
 * cannot make, so that a run without root reports the coverage it lost
 * instead of passing on a smaller tree.
 */
export function reportRichTreeGaps(suite: string): void {
  if (!isRoot) for (const part of needsRoot) test.skip(`${suite}: rich tree with ${part} (skipped: needs root)`, () => undefined);
}

/** Deterministic bytes: the tree is the same every run. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function makeRichTree(root: string): void {
  const p = (...parts: string[]) => join(root, ...parts);
  mkdirSync(p('etc/deep/er/still/deeper/and/deeper/than/one/hundred/bytes/of/path/for/tar'), { recursive: true });
  mkdirSync(p('bin'));
  mkdirSync(p('tmp'));
  mkdirSync(p('empty'));
  writeFileSync(p('etc/hostname'), 'lklfs\n');
  writeFileSync(p('etc/empty-file'), '');
  writeFileSync(p('bin/tool'), bytes(300_000, 1));
  writeFileSync(p('etc/deep/er/still/deeper/and/deeper/than/one/hundred/bytes/of/path/for/tar/file'), 'deep\n');
  writeFileSync(p('big'), bytes(3 * 1024 * 1024 + 17, 2));
  // Sparse: data at 0, a hole, data at 5 MiB, a hole to 8 MiB.
  writeFileSync(p('sparse'), bytes(4096, 3));
  truncateSync(p('sparse'), 8 << 20);
  sh('dd', ['if=/dev/urandom', `of=${p('sparse')}`, 'bs=4096', 'count=2', 'seek=1280', 'conv=notrunc', 'status=none']);
  writeFileSync(p('name with spaces'), 'spaces\n');
  writeFileSync(p('ünïcödé-名前'), 'utf8\n');
  writeFileSync(Buffer.from([...Buffer.from(root + '/latin1-'), 0xe9, 0xff]), 'not utf-8\n');
  writeFileSync(p('n'.repeat(255)), 'long name\n');
  symlinkSync('hostname', p('etc/relative-link'));
  symlinkSync('/etc/hostname', p('absolute-link'));
  symlinkSync('does/not/exist', p('dangling-link'));
  linkSync(p('bin/tool'), p('bin/tool-hardlink'));
  linkSync(p('bin/tool'), p('etc/tool-elsewhere'));
  sh('mkfifo', [p('tmp/fifo')]);
  // A unix socket: bound by a short-lived python, left behind as a node.
  spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p('tmp/socket')]);
  chmodSync(p('bin/tool'), 0o4755);
  chmodSync(p('tmp'), 0o1777);
  chmodSync(p('etc/hostname'), 0o640);
  sh('setfattr', ['-n', 'user.origin', '-v', 'lklfs test', p('etc/hostname')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', p('big')]);
  sh('setfacl', ['-m', 'u:1000:r', p('etc/hostname')]);
  if (isRoot) {
    sh('mknod', [p('tmp/null'), 'c', '1', '3']);
    sh('mknod', [p('tmp/disk'), 'b', '259', '65536']);
    lchownSync(p('etc/hostname'), 1234, 5678);
    lchownSync(p('absolute-link'), 42, 43);
    lchownSync(p('tmp/fifo'), 7, 8);
    // cap_net_raw+ep, set after the owner (a chown would drop it).
    sh('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', p('bin/tool')]);
  }
  // Times last: everything above touched the directories.
  sh('sh', ['-c', `find "$1" -exec touch -h -d '2020-02-29 12:34:56.123456789' {} +`, 'touch', root]);
  sh('touch', ['-h', '-d', '1999-12-31 23:59:59.999999999', p('etc/relative-link')]);
}
