/**
 * fs2tar: an image's tree as a pax archive, judged by GNU tar extracting
 * it (as root, with xattrs and ACLs) into a tree that must match the one
 * the image was filled from, by Python's tarfile reading it against the
 * host's view of that tree, and record by record.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lchownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { acls, diffTrees, expectOk, lklfs, lklfsAsync, snapshot } from './cli.js';
import { debugfsStat } from './debugfs.js';
import { makeFixedTree } from './fixed-tree.js';
import { isRoot, makeRichTree, reportRichTreeGaps } from './rich-tree.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The records of a pax header body: [length, key, value]. */
function parseRecords(body: Buffer): [number, string, Buffer][] {
  const out: [number, string, Buffer][] = [];
  for (let at = 0; at < body.length; ) {
    const space = body.indexOf(0x20, at);
    const len = Number(body.subarray(at, space).toString());
    const record = body.subarray(at, at + len);
    const eq = record.indexOf(0x3d);
    expect(record[record.length - 1]).toBe(0x0a);
    out.push([len, record.subarray(space - at + 1, eq).toString(), record.subarray(eq + 1, len - 1)]);
    at += len;
  }
  return out;
}

/** The extended header bodies of an archive (typeflag "x"), in order. */
function extendedHeaders(archive: Buffer): Buffer[] {
  const bodies: Buffer[] = [];
  for (let at = 0; at + 512 <= archive.length; ) {
    const header = archive.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(header.toString('latin1', 124, 136).trim(), 8);
    if (header[156] === 0x78) bodies.push(archive.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return bodies;
}

describe('extended header records', () => {
  const needTools = ['mkfs.ext4', 'python3', 'getfacl'].every(haveTool) ? test : test.skip;

  needTools('lengths count their own digits; bodies are whole blocks, padded by a comment even where no record fits', () =>
    inScratch('fs2tar-records', (dir) => {
      // One file per length of value, 0 to 1100 bytes (bytes that need care
      // among them): the records cross 99 -> 100 and 999 -> 1000 bytes, and
      // the bodies come in every length modulo 512, so that every gap is
      // padded, those under the shortest comment record (12 bytes) and of
      // exactly 100 bytes (no record is) too.
      const src = join(dir, 'src');
      mkdirSync(src);
      const script = `import os, sys
for v in range(1101):
    path = os.path.join(sys.argv[1], 'f%04d' % v)
    open(path, 'w').close()
    os.setxattr(path, 'user.v', bytes((i * 61 + v) % 256 for i in range(v)))
    os.utime(path, ns=(4200000000500000000, 1582979696123456789))
# Access times after the modification times: reading the tree leaves them be.
os.utime(sys.argv[1], ns=(4200000000500000000, 1582979696123456789))`;
      sh('python3', ['-c', script, src]);
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', '-F', '-I', '256', '-b', '4096', img]);
      expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/src']));
      const archive = join(dir, 'out.tar');
      expectOk(lklfs(['fs2tar', '-i', img, '--root', '/src', archive]));

      const lengths = new Set<number>();
      const gaps = new Set<number>();
      for (const body of extendedHeaders(readFileSync(archive))) {
        const records = parseRecords(body);
        expect(records.reduce((n, [len]) => n + len, 0)).toBe(body.length);
        expect(body.length % 512).toBe(0);
        const last = records.at(-1);
        const padded = last?.[1] === 'comment';
        if (padded) expect(/^\.*$/.test(last?.[2].toString('latin1') ?? '')).toBe(true);
        const used = records.slice(0, padded ? -1 : undefined).reduce((n, [len]) => n + len, 0);
        gaps.add((512 - (used % 512)) % 512);
        for (const [len, key] of records) if (key === 'SCHILY.xattr.user.v') lengths.add(len);
      }
      expect(gaps.size).toBe(512);
      // A body of 98 bytes makes a 101-byte record (100 would need 3 digits, not 2).
      expect([99, 100, 101, 999, 1000, 1001].map((len) => lengths.has(len))).toEqual([true, false, true, true, false, true]);

      // And every value read back exactly, by a reader that is not ours.
      const r = spawnSync('python3', [join(repoRoot, 'test/cli/archive-vs-tree.py'), archive, src], { encoding: 'utf8' });
      expect(r.stdout.trim()).toBe('');
      expect(r.status).toBe(0);
    }));
});

const tools = ['mkfs.ext4', 'tar', 'getfattr', 'setfattr', 'setfacl', 'getfacl', 'python3'];
/** Owners, devices and security.* attributes need root; GNU tar extracts them as root only. */
const needRoot = isRoot && tools.every(haveTool) ? test : test.skip;

function ext4Image(dir: string): string {
  const img = join(dir, 'ext4.img');
  sh('truncate', ['-s', '256M', img]);
  // 256-byte inodes: nanosecond times and dates past 2038.
  sh('mkfs.ext4', ['-q', '-F', '-I', '256', img]);
  return img;
}

/** What makeRichTree leaves out: ids, device numbers and times past what ustar holds, and more. */
function addEdges(root: string): void {
  const p = (...parts: string[]) => join(root, 'edge', ...parts);
  const long = p('a-directory-name-of-sixty-bytes-to-make-the-path-long-enough', 'and-another-one-of-sixty-bytes-to-pass-one-hundred-for-sure');
  mkdirSync(long, { recursive: true });
  writeFileSync(join(long, 'deep-file'), 'deep\n');
  writeFileSync(p('big-ids'), 'ids\n');
  lchownSync(p('big-ids'), 3_000_000, 4_000_000);
  sh('mknod', [p('max-dev'), 'c', '4095', '1048575']);
  writeFileSync(p('no-mode'), 'mode 0\n');
  chmodSync(p('no-mode'), 0);
  writeFileSync(p('sgid'), '');
  chmodSync(p('sgid'), 0o2710);
  symlinkSync('t'.repeat(150), p('long-target'));
  symlinkSync(Buffer.from([0x74, 0xe9, 0xff]), Buffer.from(p('latin1-target')));
  writeFileSync(p('odd-xattr'), '');
  sh('setfattr', ['-n', 'user.a=b%c', '-v', '0x000aff3d', p('odd-xattr')]);
  mkdirSync(p('default-acl'));
  sh('setfacl', ['-d', '-m', 'u:7:rwx,g:9:r-x', p('default-acl')]);
  writeFileSync(p('before-1970'), '');
  sh('touch', ['-h', '-d', '@-14182939.5', p('before-1970')]);
  writeFileSync(p('after-2038'), '');
  sh('touch', ['-h', '-d', '@4102444800.000000025', p('after-2038')]);
}


describe('fs2tar', () => {
  reportRichTreeGaps('fs2tar');

  needRoot('ext4: GNU tar extracts the archive into the tree the image was filled from', () =>
    inScratch('fs2tar-ext4', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      makeRichTree(src);
      addEdges(src);
      const img = ext4Image(dir);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
      const before = sha256(img);

      const archive = join(dir, 'out.tar');
      const r = lklfs(['fs2tar', '-t', 'ext4', '-i', img, archive]);
      expectOk(r);
      expect(r.stderr).toBe('lklfs fs2tar: warning: 1 socket not archived (tar cannot hold sockets), e.g. /tmp/socket\n');
      expect(sha256(img)).toBe(before);

      const out = join(dir, 'out');
      mkdirSync(out);
      const x = sh('tar', ['--xattrs', "--xattrs-include=*", '--acls', '--numeric-owner', '-xpf', archive, '-C', out]);
      // GNU tar's warnings about the edge times (it still sets them exactly); nothing else.
      const complaints = x.stderr.split('\n').filter((l) => l && !/edge\/(before-1970: implausibly old|after-2038: .* in the future)/.test(l));
      expect(complaints).toEqual([]);
      const want = snapshot(src, { skip: (rel) => rel === 'tmp/socket' });
      const got = snapshot(out, { skip: (rel) => rel === 'lost+found' });
      expect(diffTrees(want, got)).toEqual([]);
      // The comparison sees what it should: capabilities, owners, devices, odd names.
      expect(got.get('bin/tool')?.xattrs['security.capability']).toBe('0x0100000200200000000000000000000000000000');
      // getfattr writes "=" in names as \075.
      expect(got.get('edge/odd-xattr')?.xattrs).toEqual({ 'user.a\\075b%c': '0x000aff3d' });
      expect(got.get('edge/big-ids')).toMatchObject({ uid: 3_000_000, gid: 4_000_000 });
      expect(got.get('edge/max-dev')?.rdev).toBe(want.get('edge/max-dev')?.rdev);
      expect(got.get('edge/no-mode')?.mode).toBe(0);
      expect(got.get('edge/before-1970')?.mtimeNs).toBe(-14182939_500_000_000n);
      expect(got.get('edge/after-2038')?.mtimeNs).toBe(4102444800_000_000_025n);
      expect(got.size).toBe(want.size);

      const wantAcls = acls(src);
      expect(wantAcls.get('etc/hostname')).toMatch(/system.posix_acl_access=0x/);
      expect(wantAcls.get('edge/default-acl')).toMatch(/system.posix_acl_default=0x/);
      expect(acls(out)).toEqual(wantAcls);

      // The sparse file (8 MiB, data in two places) keeps its holes: in the
      // archive (GNU sparse 1.0) and once GNU tar has extracted it.
      expect(got.get('sparse')?.size).toBe(8 << 20);
      expect(statSync(join(out, 'sparse')).blocks * 512).toBeLessThan(256 << 10);
      const listing = sh('tar', ['-tvf', archive]).stdout;
      expect(listing).toMatch(/^-rw-r--r-- 0\/0 +8388608 .* sparse$/m);
      expect(listing).toMatch(/^h\S+ 0\/0 +0 .* bin\/tool-hardlink link to bin\/tool$/m);
      expect(listing).toMatch(/^h\S+ 0\/0 +0 .* etc\/tool-elsewhere link to bin\/tool$/m);
      expect(listing).toMatch(/^drwxr-xr-x 0\/0 +0 .* \.\/$/m);

      // The same bytes to standard output.
      const piped = lklfs(['fs2tar', '-t', 'ext4', '-i', img, '-']);
      expectOk(piped);
      expect(piped.stdout.equals(readFileSync(archive))).toBe(true);
      expect(sha256(img)).toBe(before);
    }));

  needRoot('a tree with every case the framing has: the same bytes as before, and exactly the tree as Python\'s tarfile reads it', () =>
    inScratch('fs2tar-fixed', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      makeFixedTree(join(src, 't'));
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '128M', img]);
      sh('mkfs.ext4', ['-q', '-F', '-I', '256', '-b', '4096', img]);
      expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/']));
      const archive = join(dir, 'out.tar');
      expectOk(lklfs(['fs2tar', '-i', img, '--root', '/t', archive]));

      // Recorded with fs2tar as of commit 9691b15, when tar-stream framed
      // the entries. The image comes from cptofs: one that stored the same
      // tree differently (xattrs in another order) needs it recorded again.
      expect(sha256(archive)).toBe('5bdbaaa3fababe7f8c10a42c97b2e99fa4cbaf25a5c7fcda7b59f589a2c4276d');

      // Independently: the archive as Python's tarfile reads it against the
      // tree as the host shows it (order, metadata, data, xattrs, ACLs, holes).
      const r = spawnSync('python3', [join(repoRoot, 'test/cli/archive-vs-tree.py'), archive, join(src, 't')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('');
      expect(r.status).toBe(0);
    }));

  test('a directory of more small files than one batch of the tree carries: all archived, byte for byte', () =>
    inScratch('fs2tar-many-small', (dir) => {
      // 48 files of 250 KiB: 12 MiB, more than the four 1 MiB Buffers queued at once carry.
      const src = join(dir, 'src');
      mkdirSync(join(src, 'many'), { recursive: true });
      for (let i = 0; i < 48; i++) writeFileSync(join(src, 'many', `f${i}`), Buffer.alloc(250 << 10, i + 1));
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/']));
      const archive = join(dir, 'out.tar');
      expectOk(lklfs(['fs2tar', '-i', img, archive]));
      const out = join(dir, 'out');
      mkdirSync(out);
      sh('tar', ['-xf', archive, '-C', out]);
      expect(sh('diff', ['-r', join(src, 'many'), join(out, 'many')], { allowFail: true }).stdout).toBe('');
    }));

  test('--selinux-contexts lists every archived entry that has a label, in archive order, from the archive\'s root', () =>
    inScratch('fs2tar-contexts', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'a/b'), { recursive: true });
      writeFileSync(join(src, 'a/f'), 'f\n');
      sh('ln', [join(src, 'a/f'), join(src, 'a/hard')]);
      symlinkSync('f', join(src, 'a/link'));
      writeFileSync(join(src, 'top'), '');
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      const context = 'system_u:object_r:etc_t:s0';
      // Labels on everything copied; the root and lost+found (mkfs's) have none.
      expectOk(lklfs(['cptofs', '-i', img, '--selinux', context, `${src}/.`, '/']));
      const archive = join(dir, 'out.tar');
      const list = join(dir, 'contexts');
      for (const [root, prefix] of [['/', ''], ['/a', 'a/']] as const) {
        expectOk(lklfs(['fs2tar', '-i', img, '--root', root, '--selinux-contexts', list, archive]));
        // Expected: the archive's names as GNU tar lists them, each with the label debugfs reads in the image.
        const names = sh('tar', ['-tf', archive]).stdout.split('\n').filter(Boolean).map((n) => (n === './' ? '' : n.replace(/\/$/, '')));
        const labels = debugfsStat(img, names.map((n) => `/${prefix}${n}`.replace(/\/$/, '') || '/'), dir);
        const want = names.filter((n) => labels.get(`/${prefix}${n}`.replace(/\/$/, '') || '/')?.xattrs.has('security.selinux')).map((n) => `/${n} ${context}\n`);
        expect(want.length).toBeGreaterThan(4);
        expect(readFileSync(list, 'latin1')).toBe(want.join(''));
      }
    }));

  test('--root archives one directory of the image, as ./ (a symlink to it followed inside the image)', () =>
    inScratch('fs2tar-root', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'usr/lib/sub'), { recursive: true });
      writeFileSync(join(src, 'usr/lib/sub/file'), 'inside\n');
      writeFileSync(join(src, 'outside'), 'not archived\n');
      symlinkSync('/usr/lib', join(src, 'lib'));
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/']));
      const r = lklfs(['fs2tar', '-i', img, '--root', '/lib', '-']);
      expectOk(r);
      const list = spawnSync('tar', ['-tf', '-'], { input: r.stdout, encoding: 'utf8' }).stdout;
      expect(list).toBe('./\nsub/\nsub/file\n');
      const notDir = lklfs(['fs2tar', '-i', img, '--root', '/outside', '-']);
      expect(notDir.status).toBe(2);
      expect(notDir.stderr).toMatch(/--root \/outside: not a directory/);
    }));

  test('errors: a clear message, exit status 1, no archive left behind', () =>
    inScratch('fs2tar-errors', (dir) => {
      const img = ext4Image(dir);
      const before = sha256(img);
      const archive = join(dir, 'out.tar');

      const missing = lklfs(['fs2tar', '-t', 'ext4', '-i', join(dir, 'nope.img'), archive]);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toMatch(/^lklfs fs2tar: cannot open image .*nope\.img: ENOENT/);
      expect(existsSync(archive)).toBe(false);

      const wrongType = lklfs(['fs2tar', '-t', 'xfs', '-i', img, archive]);
      expect(wrongType.status).toBe(1);
      expect(wrongType.stderr).toMatch(/^lklfs fs2tar: cannot mount .*ext4\.img as xfs/);
      expect(existsSync(archive)).toBe(false);

      const noDir = lklfs(['fs2tar', '-t', 'ext4', '-i', img, join(dir, 'no/such/dir/out.tar')]);
      expect(noDir.status).toBe(1);
      expect(noDir.stderr).toMatch(/cannot create .*out\.tar: ENOENT/);

      const full = spawnSync('bash', ['-c', '"$@" > /dev/full', 'bash', process.execPath, join(repoRoot, 'bin/run.js'), 'fs2tar', '-t', 'ext4', '-i', img, '-'], {
        encoding: 'utf8',
      });
      expect(full.status).toBe(1);
      expect(full.stderr).toMatch(/^lklfs fs2tar: cannot write standard output: ENOSPC/);

      const itself = lklfs(['fs2tar', '-t', 'ext4', '-i', img, img]);
      expect(itself.status).toBe(2);
      expect(itself.stderr).toMatch(/is the image itself/);
      expect(sha256(img)).toBe(before);
    }));

  test('a write that fails midway removes the partial archive', () =>
    inScratch('fs2tar-efbig', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'blob'), Buffer.alloc(4 << 20, 7));
      const img = ext4Image(dir);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
      const archive = join(dir, 'out.tar');
      // A 1 MiB file size limit: the archive's writes fail with EFBIG (node ignores SIGXFSZ).
      const r = spawnSync('bash', ['-c', 'ulimit -f 1024; exec "$@"', 'bash', process.execPath, join(repoRoot, 'bin/run.js'), 'fs2tar', '-t', 'ext4', '-i', img, archive], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^lklfs fs2tar: cannot write .*out\.tar: EFBIG/);
      expect(existsSync(archive)).toBe(false);
    }));

  test('a reader that goes away ends the archive quietly', () =>
    inScratch('fs2tar-epipe', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'blob'), Buffer.alloc(8 << 20, 7));
      const img = ext4Image(dir);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
      const r = spawnSync('bash', ['-c', 'set -o pipefail; "$@" | head -c 1000 >/dev/null', 'bash', process.execPath, join(repoRoot, 'bin/run.js'), 'fs2tar', '-t', 'ext4', '-i', img, '-'], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }));

  test('SIGINT stops the archive at the next entry', () =>
    inScratch('fs2tar-sigint', async (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let f = 0; f < 64; f++) writeFileSync(join(src, `f${f}`), Buffer.alloc(1 << 20, f));
      const img = ext4Image(dir);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
      const before = sha256(img);
      // Into a fifo read here: interrupted as soon as the first bytes arrive.
      const fifo = join(dir, 'fifo');
      sh('mkfifo', [fifo]);
      let read = 0;
      const r = await lklfsAsync(['fs2tar', '-t', 'ext4', '-i', img, fifo], (child) => {
        createReadStream(fifo)
          .on('data', (d) => {
            if (read === 0) child.kill('SIGINT');
            read += d.length;
          })
          .on('error', () => undefined);
      });
      expect(r.status).toBe(130);
      expect(r.stderr).toMatch(/interrupted by SIGINT/);
      expect(read).toBeLessThan(64 << 20);
      expect(existsSync(fifo)).toBe(true);
      expect(sha256(img)).toBe(before);
    }));
});
