/**
 * A tree whose archive is the same bytes on every run: every name, size,
 * byte of data, owner, mode, time, xattr and ACL fixed, and everything an
 * archive's framing has a case for (long and non-UTF-8 names and targets,
 * hard links to plain and sparse files, holes at the end and nothing but
 * holes, devices with large numbers, ids and times past what ustar holds,
 * many xattrs, small files up to and past the size that comes whole, more
 * small data in one directory than one batch of the tree carries). Access
 * times are set after every modification time: reading the tree (relatime)
 * then leaves them be.
 * Needs root (owners, devices, security.* and trusted.* xattrs).
 */
import { chmodSync, lchownSync, linkSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../kernel/harness.js';

/** Deterministic bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function makeFixedTree(root: string): void {
  const p = (...parts: string[]) => join(root, ...parts);
  const raw = (...parts: (string | number[])[]) =>
    Buffer.concat([Buffer.from(root), ...parts.map((x) => (typeof x === 'string' ? Buffer.from(`/${x}`) : Buffer.from(x)))]);
  for (const d of ['etc/deep/a/b/c', 'bin', 'dev', 'many', 'empty', 'x'.repeat(120)]) mkdirSync(p(d), { recursive: true });
  writeFileSync(p('etc/hostname'), 'fixed\n');
  writeFileSync(p('etc/empty'), '');
  writeFileSync(p('etc/deep/a/b/c/leaf'), 'leaf\n');
  writeFileSync(p('x'.repeat(120), 'inside'), 'in a long directory\n');
  writeFileSync(p('n'.repeat(255)), 'a 255-byte name\n');
  writeFileSync(p('y'.repeat(100)), 'a 100-byte name\n');
  writeFileSync(raw([0x2f, 0x6c, 0x61, 0x74, 0x69, 0x6e, 0x2d, 0xe9, 0xff]), 'not UTF-8\n');
  writeFileSync(p('ünïcödé'), 'UTF-8\n');
  writeFileSync(p('bin/tool'), bytes(300_000, 1));
  writeFileSync(p('bin/big'), bytes(3 * 1024 * 1024 + 17, 2));
  writeFileSync(p('bin/exactly-256k'), bytes(256 << 10, 3));
  writeFileSync(p('bin/just-over-256k'), bytes((256 << 10) + 1, 4));
  // Data at 0 and at 5 MiB, a hole to 8 MiB; holes only; data only at the end.
  writeFileSync(p('sparse'), bytes(4096, 5));
  truncateSync(p('sparse'), 8 << 20);
  sh('dd', [`if=${p('bin/big')}`, `of=${p('sparse')}`, 'bs=4096', 'count=2', 'seek=1280', 'conv=notrunc', 'status=none']);
  writeFileSync(p('all-hole'), '');
  truncateSync(p('all-hole'), 3 << 20);
  writeFileSync(p('tail-data'), '');
  truncateSync(p('tail-data'), 2 << 20);
  sh('dd', [`if=${p('bin/tool')}`, `of=${p('tail-data')}`, 'bs=4096', 'count=1', 'seek=511', 'conv=notrunc', 'status=none']);
  // 40 files of 150 KiB: more small data than one batch of the tree (4 MiB).
  for (let i = 0; i < 40; i++) writeFileSync(p('many', `f${String(i).padStart(2, '0')}`), bytes(150 << 10, 100 + i));
  symlinkSync('hostname', p('etc/relative-link'));
  symlinkSync('/etc/hostname', p('absolute-link'));
  symlinkSync('t'.repeat(150), p('long-target'));
  symlinkSync(Buffer.from([0x74, 0xe9, 0xff]), raw('latin1-target'));
  linkSync(p('bin/tool'), p('bin/tool-link'));
  linkSync(p('bin/tool'), p('etc/tool-elsewhere'));
  linkSync(p('sparse'), p('sparse-link'));
  linkSync(p('etc/hostname'), p('y'.repeat(100) + '-link-with-a-long-name'));
  sh('mknod', [p('dev/null'), 'c', '1', '3']);
  sh('mknod', [p('dev/disk'), 'b', '259', '65536']);
  sh('mknod', [p('dev/max'), 'c', '4095', '1048575']);
  sh('mkfifo', [p('dev/fifo')]);
  lchownSync(p('etc/hostname'), 1234, 5678);
  lchownSync(p('absolute-link'), 42, 43);
  lchownSync(p('dev/fifo'), 7, 8);
  lchownSync(p('etc/empty'), 3_000_000, 262143);
  chmodSync(p('bin/tool'), 0o4755);
  chmodSync(p('etc/empty'), 0);
  chmodSync(p('many'), 0o1777);
  chmodSync(p('bin/big'), 0o2710);
  sh('setfattr', ['-n', 'user.origin', '-v', 'fixed tree', p('etc/hostname')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0x00ff0a3d', p('bin/big')]);
  sh('setfattr', ['-n', 'user.a=b%c', '-v', 'escaped', p('etc/empty')]);
  sh('setfattr', ['-n', 'trusted.t', '-v', 'trusted', p('etc/empty')]);
  for (let i = 0; i < 10; i++) sh('setfattr', ['-n', `user.k${i}`, '-v', 'v'.repeat(i * 23), p('etc/deep/a/b/c/leaf')]);
  sh('setfacl', ['-m', 'u:1000:r,g:5:rwx', p('etc/hostname')]);
  sh('setfacl', ['-d', '-m', 'u:7:rwx,g:9:r-x', p('empty')]);
  // cap_net_raw+ep, after the owner (a chown drops it).
  sh('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', p('bin/tool')]);
  // Times last: everything above touched the directories.
  sh('sh', ['-c', `find "$1" -exec touch -h -m -d '2020-02-29 12:34:56.123456789' {} + -exec touch -h -a -d @4200000000.5 {} +`, 'touch', root]);
  sh('touch', ['-h', '-m', '-d', '1999-12-31 23:59:59.999999999', p('etc/relative-link')]);
  sh('touch', ['-h', '-m', '-d', '@-14182939.5', p('etc/empty')]);
  sh('touch', ['-h', '-m', '-d', '@4102444800.000000025', p('bin/exactly-256k')]);
}
