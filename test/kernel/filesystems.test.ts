/**
 * Filesystems through the kernel library: each image is made by the host's
 * mkfs, written through the kernel, then judged by the host's checker and
 * read back by a host tool that does not use our kernel.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, run, inScratch, sh } from './harness.js';

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
        mkdirSync(src);
        writeFileSync(join(src, 'hello.txt'), 'hello, kernel\n');
        writeFileSync(join(src, 'big.txt'), Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join(''));
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
