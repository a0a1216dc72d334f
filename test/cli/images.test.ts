/**
 * Finding the filesystem: its type read from the superblock (so -t can be
 * left out), partitions in MBR (primary, logical) and GPT tables, and a
 * journal that needs replaying on an image that must not be written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, run as runC, sh } from '../kernel/harness.js';
import { partitionOffset, probeFsType } from '../../src/engine/probe.js';
import { expectOk, lklfs } from './cli.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

const kinds: { fs: string; mib: number; make: (img: string, dir: string) => void }[] = [
  { fs: 'ext4', mib: 16, make: (img) => sh('mkfs.ext4', ['-q', '-F', img]) },
  { fs: 'ext4', mib: 16, make: (img) => sh('mkfs.ext2', ['-q', '-F', img]) },
  { fs: 'btrfs', mib: 128, make: (img) => sh('mkfs.btrfs', ['-q', '-f', img]) },
  { fs: 'xfs', mib: 320, make: (img) => sh('mkfs.xfs', ['-q', '-f', img]) },
  { fs: 'f2fs', mib: 64, make: (img) => sh('mkfs.f2fs', ['-q', '-f', img]) },
  { fs: 'vfat', mib: 16, make: (img) => sh('mkfs.vfat', [img]) },
  { fs: 'exfat', mib: 16, make: (img) => sh('mkfs.exfat', [img]) },
  { fs: 'ntfs3', mib: 16, make: (img) => sh('mkntfs', ['-F', '-Q', '-q', img]) },
  { fs: 'udf', mib: 16, make: (img) => sh('mkudffs', ['--media-type=hd', img]) },
  { fs: 'squashfs', mib: 0, make: (img, dir) => sh('mksquashfs', [dir, img, '-noappend', '-quiet']) },
  { fs: 'erofs', mib: 0, make: (img, dir) => sh('mkfs.erofs', [img, dir]) },
  { fs: 'iso9660', mib: 0, make: (img, dir) => sh('genisoimage', ['-quiet', '-R', '-o', img, dir]) },
];

describe('filesystem type from the image', () => {
  test.each(kinds.map((k, i) => ({ ...k, i })))('$fs (#$i) is recognised', (k) =>
    inScratch('probe', async (dir) => {
      const img = join(dir, 'fs.img');
      if (k.mib) sh('truncate', ['-s', `${k.mib}M`, img]);
      sh('mkdir', ['-p', join(dir, 'tree')]);
      k.make(img, join(dir, 'tree'));
      expect(await probeFsType(img, 0)).toBe(k.fs);
    }),
  );

  test('a pipe on standard input is never taken for a missing argument', () =>
    inScratch('stdin-args', (dir) => {
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', img]);
      const input = Buffer.from('/nope\n');
      const listed = lklfs(['ls', '-i', img], { input });
      expectOk(listed);
      expect(listed.stdout.toString()).toBe('lost+found\n');
      const cat = lklfs(['cat', '-i', img], { input });
      expect(cat.status).toBe(2);
      expect(cat.stderr).toMatch(/Missing 1 required arg/);
    }));

  test('a file that holds no filesystem: a clear error asking for -t', () =>
    inScratch('probe-none', async (dir) => {
      const img = join(dir, 'zeros.img');
      sh('truncate', ['-s', '1M', img]);
      expect(await probeFsType(img, 0)).toBeUndefined();
      const r = lklfs(['ls', '-i', img]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/cannot tell the filesystem type of .*zeros\.img: give it with -t/);
    }));
});

describe('partitions', () => {
  /** An image with a partition table (sfdisk script) and filesystems placed by partition number. */
  function partitioned(dir: string, label: 'gpt' | 'dos', table: (img: string) => string, places: Record<number, string>) {
    const img = join(dir, `${label}.img`);
    sh('truncate', ['-s', '64M', img]);
    sh('sfdisk', ['-q', img], { input: `label: ${label}\n${table(img)}` });
    return Promise.all(
      Object.entries(places).map(async ([n, fs]) => {
        const part = join(dir, `p${n}`);
        sh('truncate', ['-s', '8M', part]);
        sh(fs === 'vfat' ? 'mkfs.vfat' : 'mkfs.ext4', fs === 'vfat' ? [part] : ['-q', '-F', part]);
        const at = (await partitionOffset(img, Number(n))) as number;
        sh('dd', [`if=${part}`, `of=${img}`, 'bs=512', `seek=${at / 512}`, 'conv=notrunc', 'status=none']);
      }),
    ).then(() => img);
  }

  test('GPT: partition 2 found, typed and listed without -t', () =>
    inScratch('gpt', async (dir) => {
      const img = await partitioned(dir, 'gpt', () => 'size=10M\nsize=10M\n', { 1: 'vfat', 2: 'ext4' });
      expect(await partitionOffset(img, 2)).toBe((2048 + 20480) * 512);
      expect(await probeFsType(img, 1)).toBe('vfat');
      expect(await probeFsType(img, 2)).toBe('ext4');
      expect(await partitionOffset(img, 3)).toBeUndefined();
      const r = lklfs(['ls', '-i', img, '-P', '2', '/']);
      expectOk(r);
      expect(r.stdout.toString()).toBe('lost+found\n');
    }));

  test('MBR: a logical partition (6) inside an extended one', () =>
    inScratch('mbr', async (dir) => {
      const img = await partitioned(
        dir,
        'dos',
        (img) => `${img}1 : size=10M\n${img}2 : size=40M, type=5\n${img}5 : size=10M\n${img}6 : size=10M\n`,
        { 1: 'vfat', 6: 'ext4' },
      );
      expect(await probeFsType(img, 1)).toBe('vfat');
      expect(await probeFsType(img, 6)).toBe('ext4');
      expect(await partitionOffset(img, 7)).toBeUndefined();
      expectOk(lklfs(['ls', '-i', img, '-P', '6', '/']));
    }));
});

describe('a journal that needs replaying, on a read-only job', () => {
  const t = haveTool('dumpe2fs') ? test : test.skip;
  t('the image is read as of its last checkpoint, with a warning, and never written', () =>
    inScratch('unreplayed', (dir) => {
      const img = join(dir, 'dirty.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      runC('fsops', [img, 'ext4', '0', 'symlink,dirty']);
      expect(sh('dumpe2fs', ['-h', img]).stdout).toMatch(/needs_recovery/);
      const before = sha256(img);
      const r = lklfs(['ls', '-t', 'ext4', '-i', img, '/']);
      expectOk(r);
      expect(r.stderr).toMatch(/warning: .*dirty\.img was not unmounted cleanly/);
      expect(sha256(img)).toBe(before);
    }));
});

describe('an image in use by another process', () => {
  /** Runs fn while `flock` (util-linux) holds the image's lock. */
  async function whileLocked(img: string, mode: '-x' | '-s', fn: () => void): Promise<void> {
    // -o: the lock stays with flock itself, so killing it frees the image.
    const holder = spawn('flock', ['-o', mode, img, 'sleep', '30'], { stdio: 'ignore', detached: true });
    try {
      // Until the lock is taken: a non-blocking probe of our own fails.
      for (let i = 0; i < 100 && spawnSync('flock', ['-n', '-x', img, 'true']).status === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      fn();
    } finally {
      process.kill(-(holder.pid as number)); // flock and its sleep
    }
  }

  test('a writer is refused while anyone has it; readers share it with readers', () =>
    inScratch('locked', async (dir) => {
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      await whileLocked(img, '-s', () => {
        expectOk(lklfs(['ls', '-i', img]));
        const w = lklfs(['cptofs', '-i', img, join(repoRoot, 'README.md'), '/']);
        expect(w.status).toBe(1);
        expect(w.stderr).toMatch(/image .*fs\.img is in use: another process has it open/);
      });
      await whileLocked(img, '-x', () => {
        const r = lklfs(['ls', '-i', img]);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/is in use: another process has it open for writing/);
      });
      expectOk(lklfs(['cptofs', '-i', img, join(repoRoot, 'README.md'), '/']));
    }));
});

describe('paths given on the command line', () => {
  test('symlinks in them are followed inside the image, absolute ones from its root', () =>
    inScratch('symlinks', (dir) => {
      const tree = join(dir, 'tree');
      sh('mkdir', ['-p', join(tree, 'usr/lib/modules'), join(tree, 'usr/share/zoneinfo'), join(tree, 'etc')]);
      writeFileSync(join(tree, 'usr/share/zoneinfo/UTC'), 'TZif\n');
      writeFileSync(join(tree, 'usr/lib/modules/a.ko'), 'module\n');
      symlinkSync('/usr/share/zoneinfo/UTC', join(tree, 'etc/localtime'));
      symlinkSync('/usr/lib', join(tree, 'lib'));
      symlinkSync('loop2', join(tree, 'loop1'));
      symlinkSync('loop1', join(tree, 'loop2'));
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '32M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      expectOk(lklfs(['cptofs', '-i', img, `${tree}/.`, '/']));

      expect(lklfs(['cat', '-i', img, '/etc/localtime']).stdout.toString()).toBe('TZif\n');
      expect(lklfs(['ls', '-i', img, '/lib/modules']).stdout.toString()).toBe('a.ko\n');
      expect(lklfs(['ls', '-i', img, '/lib']).stdout.toString()).toBe('modules\n');
      expect(lklfs(['ls', '-l', '-i', img, '/lib']).stdout.toString()).toMatch(/^l.* \/lib -> \/usr\/lib\n$/);
      // ".." stops at the image's root.
      expect(lklfs(['cat', '-i', img, '/../../etc/localtime']).stdout.toString()).toBe('TZif\n');

      // A destination through a symlink: the directory it points to.
      writeFileSync(join(dir, 'b.ko'), 'another\n');
      expectOk(lklfs(['cptofs', '-i', img, join(dir, 'b.ko'), '/lib/modules']));
      expect(lklfs(['ls', '-i', img, '/usr/lib/modules']).stdout.toString()).toBe('a.ko\nb.ko\n');
      expect(lklfs(['ls', '-l', '-i', img, '/lib']).stdout.toString()).toMatch(/-> \/usr\/lib/);

      // A source through one; the last component itself is copied as it is.
      const out = join(dir, 'out');
      expectOk(lklfs(['cpfromfs', '-i', img, '/lib/modules', out]));
      expect(readFileSync(join(out, 'b.ko'), 'utf8')).toBe('another\n');

      const loop = lklfs(['cat', '-i', img, '/loop1']);
      expect(loop.status).toBe(1);
      expect(loop.stderr).toMatch(/ELOOP/);
      sh('e2fsck', ['-fn', img]);
    }));
});
