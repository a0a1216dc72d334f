/**
 * Filesystems through the kernel library: each image is made by the host's
 * mkfs, written through the kernel, then judged by the host's checker and
 * read back by a host tool that does not use our kernel. HFS+, for which
 * Debian has no tools, gets both from fixtures/ (make-hfsplus.mjs,
 * check-hfsplus.mjs).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, program, repoRoot, run, inScratch, sh } from './harness.js';

const RW_FEATURES = 'symlink,hardlink,xattr,secxattr,acl,chown,mknod,nsec';

/** The 1 MiB pattern fsops writes to /dir/renamed. */
function pattern(): Buffer {
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + Math.floor(i / 4096)) & 0xff;
  return b;
}

interface RwCase {
  fs: string;
  tools: string[];
  sizeMiB: number;
  mkfs: (img: string) => void;
  features: string;
  check: (img: string) => void;
  /** Reads the tree back with host tools; dir is scratch space. */
  read?: (img: string, dir: string) => void;
}

/** ext2/3/4, all served by the ext4 driver, read back with debugfs. */
function extCase(fs: string): RwCase {
  return {
    fs,
    tools: [`mkfs.${fs}`, 'e2fsck', 'debugfs'],
    sizeMiB: 64,
    mkfs: (img) => sh(`mkfs.${fs}`, ['-q', '-F', img]),
    features: RW_FEATURES,
    check: (img) => sh('e2fsck', ['-fn', img]),
    read: (img, dir) => {
      const stat = sh('debugfs', ['-R', 'stat /dir/renamed', img]).stdout;
      expect(stat).toMatch(/User:\s+1234\s+Group:\s+5678/);
      expect(stat).toMatch(/Links: 2/);
      expect(stat).toContain('user.lklfs (5) = "hello"');
      expect(stat).toContain('security.selinux (27) = "system_u:object_r:etc_t:s0\\000"');
      // ext4's own compact on-disk form of user::rw-,user:1000:r--,group::r--,mask::r--,other::r--
      expect(stat).toContain(
        'system.posix_acl_access (28) = 01 00 00 00 01 00 06 00 02 00 04 00 e8 03 00 00 04 00 04 00 10 00 04 00 20 00 04 00',
      );
      // ext4 keeps nanoseconds << 2 in the extra time field.
      expect(stat).toMatch(/mtime: 0x499602d2:1d6f3454/);
      expect(sh('debugfs', ['-R', 'stat /dir/link', img]).stdout).toContain('Fast link dest: "renamed"');
      expect(sh('debugfs', ['-R', 'stat /dir/fifo', img]).stdout).toMatch(/Type: FIFO/);
      const out = join(dir, 'renamed');
      sh('debugfs', ['-R', `dump /dir/renamed ${out}`, img]);
      expect(readFileSync(out).equals(pattern())).toBe(true);
    },
  };
}

/** vfat and msdos on an image from mkfs.vfat, read back with mtools. */
function fatCase(fs: string): RwCase {
  return {
    fs,
    tools: ['mkfs.vfat', 'fsck.vfat', 'mtype'],
    sizeMiB: 64,
    mkfs: (img) => sh('mkfs.vfat', [img]),
    features: '',
    check: (img) => sh('fsck.vfat', ['-n', img]),
    read: (img, dir) => {
      // msdos keeps 8.3 names in upper case; vfat the name as given.
      expect(sh('mdir', ['-i', img, '-b', '::/dir']).stdout).toMatch(fs === 'msdos' ? /RENAMED/ : /renamed/);
      const out = join(dir, 'renamed');
      sh('mcopy', ['-i', img, '::/dir/renamed', out]);
      expect(readFileSync(out).equals(pattern())).toBe(true);
    },
  };
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const hex = (s: string): string => Buffer.from(s).toString('hex');

/** An empty HFS+ volume from fixtures/make-hfsplus.mjs, newfs_hfs's layout. */
function makeHfsplus(img: string, sizeMiB: number): void {
  sh(process.execPath, [join(repoRoot, 'fixtures/make-hfsplus.mjs'), img, String(sizeMiB)]);
}

interface HfsEntry {
  type: string;
  cnid: number;
  mode?: string;
  uid?: number;
  gid?: number;
  size?: number;
  nlink?: number;
  sha256?: string;
  target?: string;
  xattrs?: Record<string, string>;
  inode?: HfsEntry & { path: string };
}

interface HfsReport {
  ok: boolean;
  errors: string[];
  volume: {
    signature: string;
    version: number;
    flags: Record<string, boolean>;
    lastMountedVersion: string;
    blockSize: number;
    totalBlocks: number;
    freeBlocks: number;
    fileCount: number;
    folderCount: number;
    writeCount: number;
    label: string;
  };
  trees: Record<'catalog' | 'extents' | 'attributes', Record<string, number>>;
  files: Record<string, HfsEntry>;
}

/**
 * fixtures/check-hfsplus.mjs's report on the volume, which must be
 * consistent: B-trees, catalog, counts, allocation bitmap, and cleanly
 * unmounted.
 */
function checkHfsplus(img: string): HfsReport {
  const r = sh(process.execPath, [join(repoRoot, 'fixtures/check-hfsplus.mjs'), img], { allowFail: true });
  const report = JSON.parse(r.stdout) as HfsReport;
  expect(report.errors).toEqual([]);
  expect(r.status).toBe(0);
  return report;
}

/** The hfsplus rw case: the fresh volume's free blocks, to see the writes use some. */
let hfsFreshFree = 0;

const rwCases: RwCase[] = [
  ...['ext2', 'ext3', 'ext4'].map(extCase),
  {
    fs: 'btrfs',
    tools: ['mkfs.btrfs', 'btrfs'],
    sizeMiB: 256,
    mkfs: (img) => sh('mkfs.btrfs', ['-q', '-f', img]),
    features: RW_FEATURES,
    check: (img) => sh('btrfs', ['check', '--readonly', img]),
    read: (img, dir) => {
      const out = join(dir, 'restore');
      mkdirSync(out);
      sh('btrfs', ['restore', '-x', '-S', img, out]);
      expect(readFileSync(join(out, 'dir/renamed')).equals(pattern())).toBe(true);
      expect(readFileSync(join(out, 'dir/hard')).equals(pattern())).toBe(true);
      expect(sh('readlink', [join(out, 'dir/link')]).stdout.trim()).toBe('renamed');
    },
  },
  {
    fs: 'xfs',
    tools: ['mkfs.xfs', 'xfs_repair', 'xfs_db'],
    sizeMiB: 320,
    mkfs: (img) => sh('mkfs.xfs', ['-q', '-f', img]),
    features: RW_FEATURES,
    check: (img) => sh('xfs_repair', ['-n', '-f', img]),
    read: (img) => {
      const ls = sh('xfs_db', ['-r', '-c', 'path /dir', '-c', 'ls', img]).stdout;
      for (const name of ['renamed', 'link', 'hard', 'fifo']) expect(ls).toContain(name);
      const inode = sh('xfs_db', [
        '-r',
        '-c',
        'path /dir/renamed',
        '-c',
        'print core.uid core.gid core.nlinkv2 core.size',
        img,
      ]).stdout;
      expect(inode).toMatch(/core.uid = 1234/);
      expect(inode).toMatch(/core.gid = 5678/);
      expect(inode).toMatch(/core.size = 1048576/);
    },
  },
  {
    fs: 'f2fs',
    tools: ['mkfs.f2fs', 'fsck.f2fs'],
    sizeMiB: 256,
    mkfs: (img) => sh('mkfs.f2fs', ['-q', '-f', img]),
    features: RW_FEATURES,
    check: (img) => {
      const r = sh('fsck.f2fs', ['--dry-run', img], { allowFail: true });
      expect(r.status).toBe(0);
      expect(r.stdout).not.toMatch(/\[Fail/i);
    },
  },
  // The same FAT image through both drivers: long names, and 8.3 only.
  ...['vfat', 'msdos'].map(fatCase),
  {
    fs: 'exfat',
    tools: ['mkfs.exfat', 'fsck.exfat'],
    sizeMiB: 64,
    mkfs: (img) => sh('mkfs.exfat', [img]),
    features: '',
    check: (img) => sh('fsck.exfat', ['-n', img]),
  },
  {
    fs: 'ntfs3',
    tools: ['mkntfs', 'ntfsfix', 'ntfscat'],
    sizeMiB: 64,
    mkfs: (img) => sh('mkntfs', ['-F', '-Q', '-q', img]),
    features: 'symlink,hardlink,xattr',
    check: (img) => sh('ntfsfix', ['-n', img]),
    read: (img, dir) => {
      const out = join(dir, 'renamed');
      sh('sh', ['-c', 'ntfscat "$1" /dir/renamed > "$2"', 'ntfscat', img, out]);
      expect(readFileSync(out).equals(pattern())).toBe(true);
    },
  },
  {
    fs: 'udf',
    tools: ['mkudffs', 'udfinfo'],
    sizeMiB: 64,
    mkfs: (img) => sh('mkudffs', ['--media-type=hd', '--blocksize=512', img]),
    features: 'symlink,hardlink',
    // Debian 12 has no UDF checker; udfinfo at least parses every descriptor.
    check: (img) => expect(sh('udfinfo', [img]).stdout).toMatch(/^label=LinuxUDF$/m),
  },
  {
    fs: 'hfsplus',
    tools: [], // Debian 12 has no hfsprogs: fixtures/ makes and checks the volume
    sizeMiB: 64,
    mkfs: (img) => {
      makeHfsplus(img, 64);
      hfsFreshFree = checkHfsplus(img).volume.freeBlocks;
    },
    // hfsplus has no POSIX ACLs, and HFS+ dates are whole seconds.
    features: 'symlink,hardlink,xattr,secxattr,chown,mknod',
    check: (img) => {
      const { volume } = checkHfsplus(img);
      // Unmounted cleanly by Linux ('H+Lx'), once.
      expect(volume.flags).toMatchObject({ unmounted: true, inconsistent: false, journaled: false });
      expect(volume.lastMountedVersion).toBe('H+Lx');
      expect(volume.writeCount).toBe(1);
      // /dir and the private folder Linux keeps hard-linked files in; the
      // shared iNode file there, its two links, the symlink and the fifo.
      expect(volume.folderCount).toBe(2);
      expect(volume.fileCount).toBe(5);
      expect(volume.freeBlocks).toBeLessThanOrEqual(hfsFreshFree - (1 << 20) / volume.blockSize);
    },
    read: (img) => {
      // Read without the kernel, by fixtures/check-hfsplus.mjs.
      const { files } = checkHfsplus(img);
      expect(files['/dir/file']).toBeUndefined();
      const renamed = files['/dir/renamed'];
      expect(renamed?.type).toBe('hardlink');
      expect(files['/dir/hard']?.inode).toEqual(renamed?.inode);
      expect(renamed?.inode).toMatchObject({
        type: 'file',
        uid: 1234,
        gid: 5678,
        nlink: 2,
        size: 1 << 20,
        sha256: sha256(pattern()),
        xattrs: { 'user.lklfs': hex('hello'), 'security.selinux': hex('system_u:object_r:etc_t:s0\0') },
      });
      expect(files['/dir/link']).toMatchObject({ type: 'symlink', target: 'renamed' });
      expect(files['/dir/fifo']).toMatchObject({ type: 'fifo' });
    },
  },
];

describe.each(rwCases)('$fs read-write', (c) => {
  const missing = c.tools.filter((t) => !haveTool(t));
  const t = missing.length ? test.skip : test;
  t(
    `create/write/read/readdir/stat/rename/unlink/mkdir${c.features ? `/${c.features}` : ''}, then host check${missing.length ? ` (skipped: ${missing.join(', ')} missing)` : ''}`,
    () => {
      return inScratch(c.fs, async (dir) => {
        const img = join(dir, `${c.fs}.img`);
        sh('truncate', ['-s', `${c.sizeMiB}M`, img]);
        c.mkfs(img);
        expectAllOk(run('fsops', [img, c.fs, '0', c.features]));
        c.check(img);
        c.read?.(img, dir);
      });
    },
  );
});

/** What fsops "ro" reads: /hello.txt, and /big.txt, large enough to be compressed. */
function writeRoTree(src: string): void {
  mkdirSync(src);
  writeFileSync(join(src, 'hello.txt'), 'hello, kernel\n');
  writeFileSync(join(src, 'big.txt'), Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join(''));
}

interface RoCase {
  name: string;
  fs: string;
  tools: string[];
  make: (src: string, img: string) => void;
  list?: (img: string) => string;
}

const squashfs = (comp: string): RoCase => ({
  name: `squashfs (${comp})`,
  fs: 'squashfs',
  tools: ['mksquashfs', 'unsquashfs'],
  make: (src, img) => sh('mksquashfs', [src, img, '-comp', comp, '-noappend', '-quiet']),
  list: (img) => sh('unsquashfs', ['-l', img]).stdout,
});

const roCases: RoCase[] = [
  {
    name: 'iso9660 (Rock Ridge, Joliet)',
    fs: 'iso9660',
    tools: ['genisoimage', 'isoinfo'],
    make: (src, img) => sh('genisoimage', ['-quiet', '-R', '-J', '-o', img, src]),
    list: (img) => sh('isoinfo', ['-R', '-l', '-i', img]).stdout,
  },
  ...['gzip', 'xz', 'lz4', 'lzo', 'zstd'].map(squashfs),
  ...[[], ['-zlz4'], ['-zlz4hc']].map((opts): RoCase => ({
    name: `erofs (${opts[0]?.slice(2) ?? 'uncompressed'})`,
    fs: 'erofs',
    tools: ['mkfs.erofs', 'dump.erofs'],
    make: (src, img) => sh('mkfs.erofs', [...opts, img, src]),
    list: (img) => sh('dump.erofs', ['--ls', '--path=/', img]).stdout,
  })),
];

describe.each(roCases)('$name read-only', (c) => {
  const missing = c.tools.filter((t) => !haveTool(t));
  const t = missing.length ? test.skip : test;
  t(
    `mount, read, readdir, stat; writes refused; image untouched${missing.length ? ` (skipped: ${missing.join(', ')} missing)` : ''}`,
    () => {
      return inScratch(c.fs, async (dir) => {
        const src = join(dir, 'src');
        writeRoTree(src);
        const img = join(dir, `${c.fs}.img`);
        c.make(src, img);
        const before = createHash('sha256').update(readFileSync(img)).digest('hex');
        expectAllOk(run('fsops', [img, c.fs, '0', 'ro']));
        expect(createHash('sha256').update(readFileSync(img)).digest('hex')).toBe(before);
        if (c.list) expect(c.list(img)).toContain('hello.txt');
      });
    },
  );
});

/** mountcheck's result and the kernel's messages (it boots with loglevel=5: warnings show). */
function mountHfsplus(img: string, mode: 'ro' | 'rw'): { ret: number; stderr: string } {
  const r = run('mountcheck', [img, 'hfsplus', '0', mode], 60_000);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^halt: 0$/m);
  const m = /^mount: (-?\d+)/m.exec(r.stdout);
  if (!m?.[1]) throw new Error(`no mount result:\n${r.stdout}\n${r.stderr}`);
  return { ret: Number(m[1]), stderr: r.stderr };
}

const fileSha = (path: string): string => sha256(readFileSync(path));

describe('hfsplus volumes from fixtures/make-hfsplus.mjs', () => {
  test('an empty volume has newfs_hfs\'s layout, mounts read-only (untouched) and read-write without a warning', () =>
    inScratch('hfsplus', (dir) => {
      const img = join(dir, 'empty.img');
      sh(process.execPath, [join(repoRoot, 'fixtures/make-hfsplus.mjs'), img, '64', 'lklfs']);
      const fresh = checkHfsplus(img);
      expect(fresh.volume).toMatchObject({
        signature: 'H+',
        version: 4,
        blockSize: 4096,
        totalBlocks: (64 << 20) / 4096,
        fileCount: 0,
        folderCount: 0,
        writeCount: 0,
        label: 'lklfs',
        flags: { unmounted: true, inconsistent: false, journaled: false },
      });
      expect(fresh.trees.catalog).toMatchObject({
        nodeSize: 4096,
        maxKeyLength: 516,
        keyCompareType: 0xcf,
        attributes: 6, // big keys, variable-length index keys
        depth: 1,
        leafRecords: 2, // the root folder and its thread
      });
      expect(fresh.trees.extents).toMatchObject({ nodeSize: 4096, maxKeyLength: 10, attributes: 2, depth: 0 });
      expect(fresh.trees.attributes).toMatchObject({ nodeSize: 8192, maxKeyLength: 266, attributes: 6, depth: 0 });
      expect(Object.keys(fresh.files)).toEqual(['/']);

      const before = fileSha(img);
      const ro = mountHfsplus(img, 'ro');
      expect(ro.ret).toBe(0);
      expect(ro.stderr).not.toMatch(/hfsplus/i);
      expect(fileSha(img)).toBe(before);

      const rw = mountHfsplus(img, 'rw');
      expect(rw.ret).toBe(0);
      expect(rw.stderr).not.toMatch(/hfsplus/i);
      // Linux made its private folder for hard links, and unmounted cleanly.
      expect(checkHfsplus(img).volume).toMatchObject({ folderCount: 1, writeCount: 1, lastMountedVersion: 'H+Lx' });
    }));

  test('files written on one mount are read on the next, which leaves the image untouched', () =>
    inScratch('hfsplus', (dir) => {
      const img = join(dir, 'hfsplus.img');
      makeHfsplus(img, 16);
      const src = join(dir, 'src');
      writeRoTree(src);
      const cp = spawnSync(program('cptofs', join(repoRoot, 'lkl-build/examples')), [img, 'hfsplus', src], {
        encoding: 'utf8',
      });
      expect(cp.status).toBe(0);
      const before = fileSha(img);
      expectAllOk(run('fsops', [img, 'hfsplus', '0', 'ro']));
      expect(fileSha(img)).toBe(before);
      const { files } = checkHfsplus(img);
      expect(files['/hello.txt']).toMatchObject({ type: 'file', size: 14, sha256: sha256('hello, kernel\n') });
      expect(files['/big.txt']?.sha256).toBe(fileSha(join(src, 'big.txt')));
    }));

  test('neither judge is blind: the kernel warns of an unclean volume, the checker finds a leaked block', () =>
    inScratch('hfsplus', (dir) => {
      const img = join(dir, 'hfsplus.img');
      makeHfsplus(img, 8);
      const pristine = readFileSync(img);
      const checker = (): { status: number | null; errors: string[] } => {
        const r = sh(process.execPath, [join(repoRoot, 'fixtures/check-hfsplus.mjs'), img], { allowFail: true });
        return { status: r.status, errors: (JSON.parse(r.stdout) as HfsReport).errors };
      };

      // kHFSVolumeUnmountedBit is bit 8 of the header's attributes (bytes 1028-1031).
      const dirty = Buffer.from(pristine);
      dirty.writeUInt8(dirty.readUInt8(1030) & ~1, 1030);
      writeFileSync(img, dirty);
      const m = mountHfsplus(img, 'rw');
      expect(m.ret).toBe(0);
      expect(m.stderr).toMatch(/hfsplus: Filesystem was not cleanly unmounted.*mounting read-only/);
      expect(checker()).toEqual({ status: 1, errors: [expect.stringMatching(/not cleanly unmounted/)] });

      // A free block marked used: the allocation file's first extent starts
      // at the block in the header's allocationFile fork (offset 112 + 16).
      const leaked = Buffer.from(pristine);
      const bitmap = leaked.readUInt32BE(1024 + 112 + 16) * 4096;
      const freeBlock = leaked.readUInt32BE(1024 + 44) - 2; // just before the alternate header's block
      const at = bitmap + (freeBlock >> 3);
      leaked.writeUInt8(leaked.readUInt8(at) | (0x80 >> (freeBlock & 7)), at);
      writeFileSync(img, leaked);
      expect(checker()).toEqual({
        status: 1,
        errors: [
          'allocation bitmap: 1 blocks marked used that nothing uses',
          expect.stringMatching(/free blocks, the bitmap/),
        ],
      });
    }));
});
