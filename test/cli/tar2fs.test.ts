/**
 * tar2fs: tar streams into images, judged by the filesystems' checkers, by
 * fs2tar of the result (an image archived, unpacked into a fresh image
 * and archived again gives the same bytes) and by cpfromfs of the result
 * against the tree GNU tar or bsdtar archived; and the tar reader on its
 * own, on archives of every format GNU tar writes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, lchownSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aclFromText } from '../../src/engine/posix-acl.js';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { acls, diffTrees, expectOk, lklfs, snapshot, type Node } from './cli.js';
import { isRoot, makeRichTree } from './rich-tree.js';

/** One pax record, "<len> <key>=<value>\n", len counting its own digits: archives made by hand. */
function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`);
  let len = body.length + String(body.length).length;
  if (String(len).length > String(body.length).length) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const bin = join(repoRoot, 'bin/run.js');
const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);
/** Owners, device nodes and security.* attributes need root. */
const needRoot = (...tools: string[]) => (isRoot && tools.every(haveTool) ? test : test.skip);

function image(dir: string, name: string, type: string, sizeMiB: number): string {
  const img = join(dir, `${name}.img`);
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  const mkfs: Record<string, string[]> = {
    ext4: ['mkfs.ext4', '-q', '-F', '-I', '256'],
    btrfs: ['mkfs.btrfs', '-q', '-f'],
    xfs: ['mkfs.xfs', '-q', '-f'],
    vfat: ['mkfs.vfat'],
    exfat: ['mkfs.exfat'],
  };
  const [cmd, ...args] = mkfs[type] as string[];
  sh(cmd as string, [...args, img]);
  return img;
}

/** The host's checker for each type: throws when it finds anything wrong. */
function check(type: string, img: string): void {
  const checker: Record<string, [string, string[]]> = {
    ext4: ['e2fsck', ['-fn', img]],
    btrfs: ['btrfs', ['check', img]],
    xfs: ['xfs_repair', ['-n', '-f', img]],
    vfat: ['fsck.vfat', ['-n', img]],
    exfat: ['fsck.exfat', ['-n', img]],
  };
  const [cmd, args] = checker[type] as [string, string[]];
  sh(cmd, args);
}

/** `lklfs fs2tar -i A - | lklfs tar2fs -i B -`, both statuses checked. */
function pipeImages(from: string, to: string, extra: string[] = []): { stderr: string } {
  const r = spawnSync(
    'bash',
    ['-c', 'set -o pipefail; node "$1" fs2tar -i "$2" - | node "$1" tar2fs -i "$3" "${@:4}"', 'bash', bin, from, to, ...extra],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`fs2tar | tar2fs failed (${r.status}):\n${r.stderr}`);
  return { stderr: r.stderr };
}

function fs2tar(img: string): Buffer {
  const r = lklfs(['fs2tar', '-i', img, '-']);
  expectOk(r);
  return r.stdout;
}

/** More than makeRichTree has: ids past ustar's fields, long targets, odd attribute names, default ACLs. */
function addEdges(root: string): void {
  const p = (...parts: string[]) => join(root, 'edge', ...parts);
  mkdirSync(p('a-directory-name-of-sixty-bytes-to-make-the-path-long-enough', 'and-another-one-of-sixty-bytes-to-pass-one-hundred-for-sure'), {
    recursive: true,
  });
  writeFileSync(p('big-ids'), 'ids\n');
  lchownSync(p('big-ids'), 3_000_000, 4_000_000);
  symlinkSync('t'.repeat(150), p('long-target'));
  writeFileSync(p('odd-xattr'), '');
  sh('setfattr', ['-n', 'user.a=b%c', '-v', '0x000aff3d', p('odd-xattr')]);
  mkdirSync(p('default-acl'));
  sh('setfacl', ['-d', '-m', 'u:7:rwx,g:9:r-x', p('default-acl')]);
  // Holes at both ends.
  writeFileSync(p('holes-around'), '');
  truncateSync(p('holes-around'), 3 << 20);
  sh('dd', ['if=/dev/urandom', `of=${p('holes-around')}`, 'bs=4096', 'count=3', 'seek=300', 'conv=notrunc', 'status=none']);
  sh('touch', ['-h', '-d', '2021-03-04 05:06:07.000000001', p('big-ids'), p('odd-xattr'), p('holes-around'), p('default-acl'), p('long-target'), root + '/edge']);
}


/** dir/src: the rich tree and the edges. */
function edgeTree(dir: string): string {
  const src = join(dir, 'src');
  mkdirSync(src);
  makeRichTree(src);
  addEdges(src);
  return src;
}

/** The rich tree (and edges) in an image of type, through cptofs. */
function richImage(dir: string, type: string, sizeMiB: number): { src: string; img: string } {
  const src = edgeTree(dir);
  const img = image(dir, 'a', type, sizeMiB);
  expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/']));
  return { src, img };
}

describe('tar2fs: fs2tar | tar2fs into a fresh image archives the same, byte for byte', () => {
  const sizes: [string, number, string[]][] = [
    ['ext4', 256, ['mkfs.ext4', 'e2fsck']],
    ['btrfs', 256, ['mkfs.btrfs', 'btrfs']],
    ['xfs', 320, ['mkfs.xfs', 'xfs_repair']],
  ];
  for (const [type, size, tools] of sizes)
    needRoot(...tools, 'setfattr', 'setfacl')(type, () =>
      inScratch(`tar2fs-${type}`, (dir) => {
        const { img } = richImage(dir, type, size);
        const first = fs2tar(img);
        const copy = image(dir, 'b', type, size);
        const { stderr } = pipeImages(img, copy);
        // fs2tar's own warning about the socket; tar2fs has none.
        expect(stderr).toBe('lklfs fs2tar: warning: 1 socket not archived (tar cannot hold sockets), e.g. /tmp/socket\n');
        check(type, copy);
        const second = fs2tar(copy);
        expect(second.length).toBe(first.length);
        expect(second.equals(first)).toBe(true);
        // The comparison sees what it should.
        const listing = spawnSync('tar', ['-tvf', '-'], { input: second, encoding: 'utf8' }).stdout;
        expect(listing).toMatch(/^-rwsr-xr-x 0\/0 +300000 .* bin\/tool$/m);
        expect(listing).toMatch(/^-rw-r----- 1234\/5678 .* etc\/hostname$/m);
        expect(listing).toMatch(/^crw-r--r-- 0\/0 +1,3 .* tmp\/null$/m);
        expect(listing).toMatch(/^h.* bin\/tool-hardlink link to bin\/tool$/m);
      }),
    );
});

/**
 * An fs2tar archive without its first entry, the root directory: FAT
 * keeps no times for it (exfat shows the time of the mount).
 */
function afterRoot(archive: Buffer): Buffer {
  // A pax header and its body (a whole number of blocks), then the "./" header.
  const body = parseInt(archive.toString('latin1', 124, 136), 8);
  expect(archive.toString('latin1', 512 + body + 0, 512 + body + 3)).toBe('./\0');
  return archive.subarray(512 + body + 512);
}

describe('tar2fs: FAT holds what it can', () => {
  for (const type of ['vfat', 'exfat'])
    needRoot(`mkfs.${type}`, `fsck.${type}`, 'mkfs.ext4')(`${type}: owners, symlinks, hard links and nodes warned once per kind; a second round trip is exact`, () =>
      inScratch(`tar2fs-${type}`, (dir) => {
        const src = join(dir, 'src');
        mkdirSync(join(src, 'docs/deeper'), { recursive: true });
        writeFileSync(join(src, 'docs/readme.txt'), 'hello from lklfs\n');
        writeFileSync(join(src, 'docs/deeper/big.bin'), Buffer.alloc(3 << 20, 0x5a));
        writeFileSync(join(src, 'owned'), 'owned\n');
        lchownSync(join(src, 'owned'), 1000, 1000);
        symlinkSync('docs/readme.txt', join(src, 'link'));
        sh('ln', [join(src, 'owned'), join(src, 'hardlink')]);
        sh('mkfifo', [join(src, 'fifo')]);
        sh('touch', ['-d', '2022-01-02 03:04:06', join(src, 'owned'), join(src, 'docs/readme.txt')]);
        const ext4 = image(dir, 'src', 'ext4', 64);
        expectOk(lklfs(['cptofs', '-i', ext4, `${src}/.`, '/']));

        const fat = image(dir, 'fat', type, 64);
        const { stderr } = pipeImages(ext4, fat);
        expect(stderr).toMatch(/^lklfs tar2fs: warning: owner not kept on \d+ entr(y|ies) \(E(PERM|INVAL)\)/m);
        expect(stderr).toMatch(/^lklfs tar2fs: warning: symlink not kept on 1 entry \(EPERM\), e\.g\. \/link$/m);
        expect(stderr).toMatch(/^lklfs tar2fs: warning: hard link not kept on 1 entry \(EPERM\), e\.g\. \/owned$/m);
        expect(stderr).toMatch(/^lklfs tar2fs: warning: fifo not kept on 1 entry \(EPERM\), e\.g\. \/fifo$/m);
        check(type, fat);
        // The archive's first name of the two holds the data; the hard link to it is what was left out.
        const r = lklfs(['cat', '-i', fat, '/docs/readme.txt', '/hardlink', '/docs/deeper/big.bin']);
        expectOk(r);
        expect(r.stdout.equals(Buffer.concat([Buffer.from('hello from lklfs\nowned\n'), Buffer.alloc(3 << 20, 0x5a)]))).toBe(true);

        // What FAT holds goes through a second time without a loss.
        const again = image(dir, 'again', type, 64);
        expect(pipeImages(fat, again).stderr).toBe('');
        check(type, again);
        expect(afterRoot(fs2tar(again)).equals(afterRoot(fs2tar(fat)))).toBe(true);
      }),
    );
});

/** cpfromfs of the image into dir/out, compared with src; what differs, as diffTrees says it. */
function unpackedMatches(dir: string, img: string, src: string, map: (n: Node) => Node = (n) => n): string[] {
  const out = join(dir, 'out');
  expectOk(lklfs(['cpfromfs', '-i', img, '/.', out]));
  const mapped = (m: Map<string, Node>) => new Map([...m].map(([k, v]) => [k, map(v)]));
  const want = mapped(snapshot(src, { skip: (rel) => rel === 'tmp/socket' }));
  const got = mapped(snapshot(out, { skip: (rel) => rel === 'lost+found' }));
  return diffTrees(want, got);
}

describe('tar2fs: archives written by GNU tar and bsdtar', () => {
  needRoot('tar', 'mkfs.ext4', 'e2fsck', 'setfattr', 'setfacl', 'getfattr')(
    'GNU tar, pax with xattrs, ACLs and sparse files: the tree lands whole, metadata included',
    () =>
      inScratch('tar2fs-gnu', (dir) => {
        const src = edgeTree(dir);
        const archive = join(dir, 'a.tar');
        // GNU tar says it leaves the socket out.
        sh('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '--acls', '--sparse', '--numeric-owner', '-cf', archive, '-C', src, '.'], { allowFail: true });
        const img = image(dir, 'img', 'ext4', 256);
        const r = lklfs(['tar2fs', '-i', img, archive]);
        expectOk(r);
        expect(r.stderr).toBe('');
        check('ext4', img);
        expect(unpackedMatches(dir, img, src)).toEqual([]);
        expect(acls(join(dir, 'out'))).toEqual(acls(src));
        expect(acls(src).get('edge/default-acl')).toMatch(/system.posix_acl_default=0x/);
        // The holes stayed holes in the image (cpfromfs copies data extents only).
        expect(statSync(join(dir, 'out/sparse')).blocks * 512).toBeLessThan(256 << 10);
        expect(statSync(join(dir, 'out/edge/holes-around')).blocks * 512).toBeLessThan(64 << 10);
      }),
  );

  needRoot('tar', 'mkfs.ext4', 'e2fsck', 'setfattr', 'setfacl')(
    'GNU tar, GNU format: long names through L and K headers, base-256 ids, old sparse files',
    () =>
      inScratch('tar2fs-gnu-format', (dir) => {
        const src = edgeTree(dir);
        const archive = join(dir, 'a.tar');
        sh('tar', ['--format=gnu', '--sparse', '--numeric-owner', '-cf', archive, '-C', src, '.'], { allowFail: true });
        const img = image(dir, 'img', 'ext4', 256);
        expectOk(lklfs(['tar2fs', '-i', img, archive]));
        check('ext4', img);
        // The GNU format keeps whole seconds and no attributes.
        const seconds = (n: Node): Node => ({ ...n, mtimeNs: (n.mtimeNs / 1_000_000_000n) * 1_000_000_000n, xattrs: {} });
        expect(unpackedMatches(dir, img, src, seconds)).toEqual([]);
        expect(statSync(join(dir, 'out/sparse')).blocks * 512).toBeLessThan(256 << 10);
      }),
  );

  needRoot('bsdtar', 'mkfs.ext4', 'e2fsck', 'setfattr', 'setfacl', 'getfattr')(
    'bsdtar, pax: LIBARCHIVE.xattr attributes and ACL text with names and ids',
    () =>
      inScratch('tar2fs-bsdtar', (dir) => {
        const src = edgeTree(dir);
        const archive = join(dir, 'a.tar');
        sh('bsdtar', ['--format=pax', '--acls', '--xattrs', '--numeric-owner', '-cf', archive, '-C', src, '.'], { allowFail: true });
        expect(readFileSync(archive).includes('LIBARCHIVE.xattr.user.binary=')).toBe(true);
        const img = image(dir, 'img', 'ext4', 256);
        const r = lklfs(['tar2fs', '-i', img, archive]);
        expectOk(r);
        expect(r.stderr).toBe('');
        check('ext4', img);
        expect(unpackedMatches(dir, img, src)).toEqual([]);
        expect(acls(join(dir, 'out'))).toEqual(acls(src));
      }),
  );
});

describe('tar2fs: compressed archives and standard input', () => {
  need('tar', 'gzip', 'xz', 'zstd', 'mkfs.ext4', 'e2fsck')('gzip, xz and zstd are told by their first bytes; - and no ARCHIVE read standard input', () =>
    inScratch('tar2fs-compressed', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'sub'), { recursive: true });
      for (let i = 0; i < 40; i++) writeFileSync(join(src, 'sub', `f${i}`), Buffer.alloc(1000 * i + 1, i));
      writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 0x42));
      const tarball = join(dir, 'a.tar');
      sh('tar', ['--format=posix', '-cf', tarball, '-C', src, '.']);
      const plain = readFileSync(tarball);
      const compressed: Record<string, Buffer> = {
        gzip: spawnSync('gzip', ['-c', tarball]).stdout,
        xz: spawnSync('xz', ['-c', '-T1', tarball]).stdout,
        zstd: spawnSync('zstd', ['-q', '-c', tarball]).stdout,
      };
      // Copies of one empty image: lost+found, which the archive does not have, is the same in each.
      const empty = image(dir, 'empty', 'ext4', 64);
      const fresh = (name: string) => {
        const img = join(dir, `${name}.img`);
        copyFileSync(empty, img);
        return img;
      };
      const reference = fresh('ref');
      expectOk(lklfs(['tar2fs', '-i', reference, tarball]));
      const want = fs2tar(reference);
      for (const [how, bytes] of Object.entries(compressed)) {
        const file = join(dir, `a.tar.${how}`);
        writeFileSync(file, bytes);
        // Standard input, named or not, for one of them.
        for (const args of how === 'zstd' ? [[file], ['-'], []] : [[file]]) {
          const img = fresh(`${how}-${args.length}`);
          const r = lklfs(['tar2fs', '-i', img, ...args], { input: args[0] === file ? undefined : bytes });
          expectOk(r);
          check('ext4', img);
          expect(fs2tar(img).equals(want)).toBe(true);
        }
      }
      const img = fresh('stdin');
      expectOk(lklfs(['tar2fs', '-i', img, '-', '/'], { input: plain }));
      expect(fs2tar(img).equals(want)).toBe(true);

      // A damaged stream: the decompressor's complaint, with where in the archive.
      for (const [how, bytes] of Object.entries(compressed)) {
        const bad = Buffer.from(bytes);
        const middle = Math.floor(bad.length / 2);
        bad[middle] = (bad[middle] as number) ^ 0xff;
        const cut = bytes.subarray(0, Math.floor(bytes.length * 0.7));
        for (const [what, input] of [['corrupt', bad], ['truncated', cut]] as const) {
          const img = image(dir, `bad-${how}`, 'ext4', 64);
          const r = lklfs(['tar2fs', '-i', img], { input });
          expect(r.status).toBe(1);
          expect(r.stderr).toMatch(new RegExp(`^lklfs tar2fs: (cannot decompress standard input \\(${how}\\): .*\\(at byte \\d+ of the tar stream, (in|after) entry .*\\)|standard input: (truncated|corrupt) archive: .*byte \\d+.*)$`, 'm'));
          expect(`${what} ${how}: ${r.stderr.split('\n').length}`).toBe(`${what} ${how}: 2`);
          check('ext4', img);
        }
      }
    }),
  );
});

describe('tar2fs: container layers', () => {
  need('tar', 'mkfs.ext4', 'e2fsck')('--whiteouts: .wh.NAME removes NAME, .wh..wh..opq empties its directory of what was there before', () =>
    inScratch('tar2fs-whiteouts', (dir) => {
      const base = join(dir, 'base');
      for (const d of ['a', 'b/old-dir/inside', 'c']) mkdirSync(join(base, d), { recursive: true });
      for (const f of ['a/x', 'a/y', 'b/z', 'b/old-dir/inside/f', 'c/keep']) writeFileSync(join(base, f), f);
      mkdirSync(join(base, 'a/gone-dir/sub'), { recursive: true });
      writeFileSync(join(base, 'a/gone-dir/sub/f'), 'f');
      const layer = join(dir, 'layer');
      for (const d of ['a', 'b', 'c']) mkdirSync(join(layer, d), { recursive: true });
      for (const f of ['a/.wh.x', 'a/.wh.gone-dir', 'b/.wh..wh..opq', 'c/.wh.not-there']) writeFileSync(join(layer, f), '');
      writeFileSync(join(layer, 'b/new'), 'new');
      const archive = join(dir, 'layer.tar');
      // b/new before the opaque marker: the layer's own entries stay.
      sh('tar', ['--format=posix', '-cf', archive, '-C', layer, 'a', 'b/new', 'b/.wh..wh..opq', 'c']);

      const img = image(dir, 'img', 'ext4', 64);
      expectOk(lklfs(['cptofs', '-i', img, `${base}/.`, '/']));
      expectOk(lklfs(['tar2fs', '-i', img, '--whiteouts', archive]));
      check('ext4', img);
      const list = lklfs(['ls', '-i', img, '-R', '/a', '/b', '/c']);
      expectOk(list);
      expect(list.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['/a/y', '/b/new', '/c/keep']);

      // Without the flag they are files like any other.
      const plain = image(dir, 'plain', 'ext4', 64);
      expectOk(lklfs(['tar2fs', '-i', plain, archive]));
      expectOk(lklfs(['cat', '-i', plain, '/a/.wh.x', '/b/.wh..wh..opq']));
    }),
  );
});

/** A small archive of three 100 KiB files, made by GNU tar; where each header is. */
function threeFiles(dir: string): { archive: Buffer; headers: number[] } {
  const src = join(dir, 'three');
  mkdirSync(src);
  for (const n of [1, 2, 3]) writeFileSync(join(src, `f${n}`), Buffer.alloc(100_000, n));
  const file = join(dir, 'three.tar');
  sh('tar', ['--format=ustar', '-cf', file, '-C', src, 'f1', 'f2', 'f3']);
  const archive = readFileSync(file);
  // Each entry: one header block, then 100,000 bytes padded to 196 blocks.
  return { archive, headers: [0, 197 * 512, 2 * 197 * 512] };
}

describe('tar2fs: bad archives and bad usage', () => {
  need('tar', 'mkfs.ext4', 'e2fsck')('a truncated or corrupt archive: exit 1, the entry and the byte named, a clean filesystem', () =>
    inScratch('tar2fs-bad', (dir) => {
      const { archive, headers } = threeFiles(dir);
      const run = (input: Buffer) => {
        const img = image(dir, 'img', 'ext4', 64);
        const r = lklfs(['tar2fs', '-i', img, '-'], { input });
        check('ext4', img);
        return { r, img };
      };

      const cut = run(archive.subarray(0, (headers[1] as number) + 512 + 50_000));
      expect(cut.r.status).toBe(1);
      expect(cut.r.stderr).toBe(
        `lklfs tar2fs: standard input: truncated archive: entry f2 (header at byte ${headers[1]}) is cut short: the archive ends at byte ${(headers[1] as number) + 512 + 50_000}, in its data\n`,
      );
      // What came before is there.
      expect(lklfs(['cat', '-i', cut.img, '/f1']).stdout.equals(Buffer.alloc(100_000, 1))).toBe(true);
      // The same from a file, whose data the binding reads where it is.
      const cutFile = join(dir, 'cut.tar');
      writeFileSync(cutFile, archive.subarray(0, (headers[1] as number) + 512 + 50_000));
      const img = image(dir, 'img', 'ext4', 64);
      const fromFile = lklfs(['tar2fs', '-i', img, cutFile]);
      expect(fromFile.status).toBe(1);
      expect(fromFile.stderr).toBe(cut.r.stderr.replace('standard input', cutFile));
      check('ext4', img);

      const corrupt = Buffer.from(archive);
      const flip = (headers[2] as number) + 10;
      corrupt[flip] = (corrupt[flip] as number) ^ 0x01;
      const bad = run(corrupt);
      expect(bad.r.status).toBe(1);
      expect(bad.r.stderr).toBe(`lklfs tar2fs: standard input: corrupt archive: a header with a bad checksum at byte ${headers[2]} (after entry f2)\n`);

      const inHeader = run(archive.subarray(0, (headers[2] as number) + 100));
      expect(inHeader.r.status).toBe(1);
      expect(inHeader.r.stderr).toMatch(/truncated archive: the archive ends at byte \d+, in a header .*after entry f2/);

      const notTar = run(Buffer.alloc(4096, 0x61));
      expect(notTar.r.status).toBe(1);
      expect(notTar.r.stderr).toBe('lklfs tar2fs: standard input: not a tar archive (no tar header at its start)\n');

      const empty = run(Buffer.alloc(0));
      expect(empty.r.status).toBe(1);
      expect(empty.r.stderr).toBe('lklfs tar2fs: standard input: not a tar archive (it is empty)\n');

      const bzip2 = run(Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(100)]));
      expect(bzip2.r.status).toBe(1);
      expect(bzip2.r.stderr).toMatch(/standard input is compressed with bzip2, which tar2fs does not read/);
    }),
  );

  need('tar', 'mkfs.ext4', 'e2fsck')('a full image: exit 1 with ENOSPC, a clean filesystem', () =>
    inScratch('tar2fs-full', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let i = 0; i < 6; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(4 << 20, i + 1));
      const archive = join(dir, 'a.tar');
      sh('tar', ['-cf', archive, '-C', src, '.']);
      const img = image(dir, 'img', 'ext4', 16);
      const r = lklfs(['tar2fs', '-i', img, archive]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^lklfs tar2fs: write .*img\.img:\/f\d: ENOSPC: no space left on device$/m);
      check('ext4', img);
    }),
  );

  need('tar', 'mkfs.ext4')('usage: no archive, a destination that is no directory, the image as its own archive', () =>
    inScratch('tar2fs-usage', (dir) => {
      const img = image(dir, 'img', 'ext4', 32);
      const { archive } = threeFiles(dir);
      const file = join(dir, 'a.tar');
      writeFileSync(file, archive);
      const missing = lklfs(['tar2fs', '-i', img, join(dir, 'nope.tar')]);
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/cannot read .*nope\.tar: ENOENT/);
      expectOk(lklfs(['tar2fs', '-i', img, file]));
      const notDir = lklfs(['tar2fs', '-i', img, file, '/f1']);
      expect(notDir.status).toBe(2);
      expect(notDir.stderr).toMatch(/destination \/f1 is not a directory in the image/);
      const noDest = lklfs(['tar2fs', '-i', img, file, '/no/such']);
      expect(noDest.status).toBe(2);
      const directory = lklfs(['tar2fs', '-i', img, dir]);
      expect(directory.status).toBe(2);
      expect(directory.stderr).toMatch(/is a directory, not an archive/);
      const itself = lklfs(['tar2fs', '-i', img, img]);
      expect(itself.status).toBe(2);
      expect(itself.stderr).toMatch(/is the image itself/);
      check('ext4', img);
    }),
  );

  need('tar', 'mkfs.ext4', 'e2fsck')('names: leading / dropped, ".." refused with a warning, DEST as the root, parents made', () =>
    inScratch('tar2fs-names', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'deep/er'), { recursive: true });
      writeFileSync(join(src, 'deep/er/file'), 'deep\n');
      writeFileSync(join(src, 'evil'), 'evil\n');
      writeFileSync(join(src, 'abs'), 'abs\n');
      const archive = join(dir, 'a.tar');
      // Only the file, no directory entries; one name with "..", one absolute.
      sh('tar', ['-P', '--transform', 's,^evil$,../evil,;s,^abs$,/abs,', '-cf', archive, '-C', src, 'deep/er/file', 'evil', 'abs']);
      const img = image(dir, 'img', 'ext4', 32);
      expectOk(lklfs(['cptofs', '-i', img, join(src, 'deep'), '/opt']));
      sh('rm', ['-r', join(src, 'deep')]);
      const r = lklfs(['tar2fs', '-i', img, '--owner', '7', '--group', '8', archive, '/opt']);
      expectOk(r);
      expect(r.stderr).toBe('lklfs tar2fs: warning: 1 entry not extracted (names with ".."), e.g. ../evil\n');
      check('ext4', img);
      const cat = lklfs(['cat', '-i', img, '/opt/deep/er/file', '/opt/abs']);
      expect(cat.stdout.toString()).toBe('deep\nabs\n');
      expect(lklfs(['ls', '-i', img, '/evil', '/opt/evil']).status).toBe(1);
      // The owner given, on what the archive had and on the directories made for it.
      const list = lklfs(['ls', '-i', img, '-l', '-R', '/opt']).stdout.toString();
      expect(list).toMatch(/^drwxr-xr-x +\d+ +7 +8 .* \/opt\/deep$/m);
      expect(list).toMatch(/^drwxr-xr-x +\d+ +7 +8 .* \/opt\/deep\/er$/m);
      expect(list).toMatch(/^-rw-r--r-- +1 +7 +8 .* \/opt\/deep\/er\/file$/m);
    }),
  );

  need('tar', 'mkfs.ext4', 'e2fsck')('SIGINT while waiting for more of the archive: exit 130, a clean filesystem', () =>
    inScratch('tar2fs-sigint', async (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let i = 0; i < 1200; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(2000, i));
      const archive = join(dir, 'a.tar');
      sh('tar', ['-cf', archive, '-C', src, '.']);
      const img = image(dir, 'img', 'ext4', 32);
      // Half the archive (more than a batch of entries: -v shows them in
      // the image), and the pipe left open: tar2fs waits for the rest.
      const child = spawn(process.execPath, [bin, 'tar2fs', '-v', '-i', img, '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.once('data', () => child.kill('SIGINT'));
      // What it had not read when it stopped: EPIPE here.
      child.stdin.on('error', () => undefined);
      child.stdin.write(readFileSync(archive).subarray(0, 1500 * 1024));
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      child.stdin.destroy();
      expect(status).toBe(130);
      expect(stderr).toMatch(/interrupted by SIGINT; the image was unmounted cleanly/);
      check('ext4', img);
    }),
  );

  need('mkfs.ext4')('memory stays flat: 512 MiB of file data through a pipe', () =>
    inScratch('tar2fs-memory', (dir) => {
      const img = image(dir, 'img', 'ext4', 700);
      // A one-member archive written on the fly: a ustar header, then the data.
      const size = 512 << 20;
      const header = Buffer.alloc(512);
      header.write('big', 0);
      header.write('0000644\0', 100);
      header.write('0000000\0', 108);
      header.write('0000000\0', 116);
      header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
      header.write('00000000000\0', 136);
      header.write('0', 156);
      header.write('ustar\x0000', 257);
      header.fill(0x20, 148, 156);
      header.write(`${header.reduce((n, b) => n + b, 0).toString(8).padStart(6, '0')}\0 `, 148);
      const gen = `const h=Buffer.from(process.argv[1],'hex');process.stdout.write(h);const b=Buffer.alloc(1<<20,7);let n=${size >> 20};` +
        `const go=()=>{while(n>0){n--;if(!process.stdout.write(b))return process.stdout.once('drain',go)}process.stdout.write(Buffer.alloc(1024))};go()`;
      const r = spawnSync(
        'bash',
        ['-c', 'set -o pipefail; node -e "$1" "$2" | /usr/bin/time -f "%M" node "$3" tar2fs -i "$4" -', 'bash', gen, header.toString('hex'), bin, img],
        { encoding: 'utf8' },
      );
      expect(r.status).toBe(0);
      const peakMiB = Number(r.stderr.trim().split('\n').pop()) / 1024;
      // The kernel's 128 MiB (prefaulted), Node, two batches of 8 MiB: far below the data's size.
      expect(peakMiB).toBeLessThan(400);
      expect(statSync(img).size).toBe(700 << 20);
      const head = lklfs(['ls', '-i', img, '-l', '/big']);
      expect(head.stdout.toString()).toMatch(/ 536870912 /);
      check('ext4', img);
    }),
  );
});

/** A header block by hand, for what no tar at hand writes. */
function header(fields: { name: string; type: string; size?: number; uid?: number }): Buffer {
  const h = Buffer.alloc(512);
  h.write(fields.name, 0);
  h.write('0000644\0', 100);
  h.write(`${(fields.uid ?? 0).toString(8).padStart(7, '0')}\0`, 108);
  h.write('0000000\0', 116);
  h.write(`${(fields.size ?? 0).toString(8).padStart(11, '0')}\0`, 124);
  h.write('14000000000\0', 136);
  h.write(fields.type, 156);
  h.write('ustar\x0000', 257);
  h.fill(0x20, 148, 156);
  h.write(`${h.reduce((n, b) => n + b, 0).toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
const padded = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/** `lklfs ls --json -l` of paths in img: each entry's JSON by path. */
function listing(img: string, ...paths: string[]): Map<string, { type: string; uid: number; size: number; mtime: string; target?: string }> {
  const r = lklfs(['ls', '-i', img, '--json', '-l', ...paths]);
  expectOk(r);
  const entries = (JSON.parse(r.stdout.toString()) as { entries: { path: string; type: string; uid: number; size: number; mtime: string; target?: string }[] }).entries;
  return new Map(entries.map((e) => [e.path, e]));
}

describe('tar2fs: the tar reader', () => {
  need('tar', 'mkfs.ext4', 'e2fsck')('every format GNU tar writes: v7, ustar, gnu, posix; sparse 0.0, 0.1, 1.0 and GNU', () =>
    inScratch('tar-reader', (dir) => {
      const src = join(dir, 'src');
      const long = 'd'.repeat(90);
      mkdirSync(join(src, long), { recursive: true });
      writeFileSync(join(src, long, 'f'.repeat(60)), 'long\n');
      symlinkSync('t'.repeat(120), join(src, 'sym'));
      writeFileSync(join(src, 'sparse'), '');
      truncateSync(join(src, 'sparse'), 5 << 20);
      sh('dd', ['if=/dev/urandom', `of=${join(src, 'sparse')}`, 'bs=4096', 'count=5', 'seek=700', 'conv=notrunc', 'status=none']);
      const sparse = readFileSync(join(src, 'sparse'));
      const file = join(dir, 'x.tar');
      const make = (...args: string[]) => {
        sh('tar', [...args, '--sparse', '-cf', file, '-C', src, '.'], { allowFail: true });
        return readFileSync(file);
      };
      const longName = `/${long}/${'f'.repeat(60)}`;
      // Read from the file where it lies, or through a pipe as it comes.
      const unpack = (archive: Buffer, fromFile: boolean): string => {
        const img = image(dir, 'img', 'ext4', 64);
        expectOk(fromFile ? lklfs(['tar2fs', '-i', img, file]) : lklfs(['tar2fs', '-i', img, '-'], { input: archive }));
        check('ext4', img);
        expect(lklfs(['cat', '-i', img, '/sparse']).stdout.equals(sparse)).toBe(true);
        return img;
      };
      /** The sparse file's holes stayed holes (cpfromfs copies data extents only). */
      const holesKept = (img: string) => {
        const out = join(dir, 'sparse.out');
        sh('rm', ['-f', out]);
        expectOk(lklfs(['cpfromfs', '-i', img, '/sparse', out]));
        expect(statSync(out).blocks * 512).toBeLessThan(256 << 10);
      };
      for (const [format, fromFile] of [['gnu', false], ['posix', false], ['ustar', false], ['gnu', true], ['posix', true]] as const) {
        const img = unpack(make(`--format=${format}`), fromFile);
        if (format === 'ustar') continue;
        const entries = listing(img, longName, '/sym');
        expect(entries.get(longName)?.type).toBe('file');
        expect(entries.get('/sym')?.target).toBe('t'.repeat(120));
        holesKept(img);
      }
      for (const version of ['0.0', '0.1', '1.0']) {
        const img = unpack(make('--format=posix', `--sparse-version=${version}`), false);
        expect(listing(img, '/sparse').get('/sparse')?.size).toBe(5 << 20);
        holesKept(img);
      }
      const v7 = unpack(make('--format=v7'), false);
      expect(listing(v7, '/sym').get('/sym')?.type).toBe('symlink');
    }),
  );

  need('mkfs.ext4')('pax global headers apply to every entry after them; an entry’s own records win', () =>
    inScratch('tar-reader-pax', (dir) => {
      const global = Buffer.concat([paxRecord('uid', '77'), paxRecord('comment', 'made by hand')]);
      const local = Buffer.concat([paxRecord('uid', '5'), paxRecord('mtime', '1.5')]);
      const archive = Buffer.concat([
        header({ name: 'pax_global_header', type: 'g', size: global.length }),
        padded(global),
        header({ name: 'a', type: '0', size: 3 }),
        padded(Buffer.from('abc')),
        header({ name: 'PaxHeader/b', type: 'x', size: local.length }),
        padded(local),
        header({ name: 'b', type: '0' }),
        Buffer.alloc(1024),
      ]);
      const img = image(dir, 'img', 'ext4', 32);
      expectOk(lklfs(['tar2fs', '-i', img, '-'], { input: archive }));
      const entries = listing(img, '/a', '/b');
      expect([...entries.values()].map((e) => [e.uid, e.mtime])).toEqual([
        [77, new Date(0o14000000000 * 1000).toISOString().replace('.000Z', '.000000000Z')],
        [5, '1970-01-01T00:00:01.500000000Z'],
      ]);
      expect(lklfs(['cat', '-i', img, '/a']).stdout.toString()).toBe('abc');
      // b's entry starts at its extended header, byte 2048.
      const cut = lklfs(['tar2fs', '-i', image(dir, 'cut', 'ext4', 32), '-'], { input: archive.subarray(0, 512 * 6 + 100) });
      expect(cut.status).toBe(1);
      expect(cut.stderr.toString()).toBe(
        'lklfs tar2fs: standard input: truncated archive: the archive ends at byte 3172, in a header (header at byte 2048), after entry a\n',
      );
    }),
  );

  need('mkfs.ext4')('a bad extended header record is an error that says where', () =>
    inScratch('tar-reader-bad-pax', (dir) => {
      const body = Buffer.from('12 path=abc\n99 broken\n');
      const archive = Buffer.concat([header({ name: 'f', type: '0' }), header({ name: 'PaxHeader', type: 'x', size: body.length }), padded(body), header({ name: 'g', type: '0' })]);
      const r = lklfs(['tar2fs', '-i', image(dir, 'img', 'ext4', 32), '-'], { input: archive });
      expect(r.status).toBe(1);
      expect(r.stderr.toString()).toBe(
        'lklfs tar2fs: standard input: corrupt archive: a bad extended header (malformed extended header record at offset 12 of its body) at byte 512 (after entry f)\n',
      );
    }),
  );

  test('ACL text as GNU tar (names, newlines) and libarchive (ids after the permissions, commas) store it', () => {
    const ids = new Map([['user:alice', 1000], ['group:staff', 50]]);
    const lookup = (kind: 'user' | 'group', name: string) => ids.get(`${kind}:${name}`);
    const gnu = aclFromText('user::rw-\nuser:alice:r--\ngroup::r--\ngroup:staff:rw-\nmask::rw-\nother::r--\n', lookup);
    const star = aclFromText('user::rw-,group::r--,other::r--,user:bob:r--:1000,group:x:rw-:50,mask::rw-', lookup);
    const want = Buffer.from('02000000' + '01000600ffffffff' + '02000400e8030000' + '04000400ffffffff' + '0800060032000000' + '10000600ffffffff' + '20000400ffffffff', 'hex');
    expect(gnu.toString('hex')).toBe(want.toString('hex'));
    expect(star.toString('hex')).toBe(want.toString('hex'));
    // No mask given: computed from the group class, as setfacl does.
    expect(aclFromText('u::rwx,u:7:r-x,g::r--,o::---', lookup).toString('hex')).toBe(
      '02000000' + '01000700ffffffff' + '0200050007000000' + '04000400ffffffff' + '10000500ffffffff' + '20000000ffffffff',
    );
    expect(() => aclFromText('user::rw-,user:nobody-here:r--,group::r--,other::r--', lookup)).toThrow(/unknown user "nobody-here"/);
    expect(() => aclFromText('user::rw-,other::r--', lookup)).toThrow(/without its/);
  });
});
