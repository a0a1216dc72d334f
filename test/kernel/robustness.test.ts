/**
 * The kernel library under conditions a tool must survive: partitions,
 * read-only attachment of a dirty journal, a crash right after fsync, bad
 * images and bad arguments, a kernel panic.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, readFileSync, readSync, closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, program, run, inScratch, sh } from './harness.js';

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);

function ext4Image(dir: string, sizeMiB = 64): string {
  const img = join(dir, 'ext4.img');
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh('mkfs.ext4', ['-q', '-F', img]);
  return img;
}

/** mountcheck's "mount: <ret>" line, after checking the process ended cleanly. */
function mountResult(args: string[]): { ret: number; stderr: string } {
  const r = run('mountcheck', args, 60_000);
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  const m = /^mount: (-?\d+)/m.exec(r.stdout);
  if (!m?.[1]) throw new Error(`no mount result:\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^halt: 0$/m);
  return { ret: Number(m[1]), stderr: r.stderr };
}

describe('partitions', () => {
  need(
    'sfdisk',
    'mkfs.ext4',
    'e2fsck',
  )('partition 2 of a GPT image made by sfdisk mounts and is written correctly', () => {
    return inScratch('gpt', async (dir) => {
      const img = join(dir, 'disk.img');
      sh('truncate', ['-s', '96M', img]);
      sh('sfdisk', ['-q', img], { input: 'label: gpt\n,24M\n,\n' });
      const table = JSON.parse(sh('sfdisk', ['-J', img]).stdout) as {
        partitiontable: { partitions: { start: number; size: number }[] };
      };
      const p2 = table.partitiontable.partitions[1];
      if (!p2) throw new Error('sfdisk made no second partition');
      sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${p2.start * 512}`, img, `${(p2.size * 512) / 1024}k`]);
      expectAllOk(run('fsops', [img, 'ext4', '2', 'symlink,hardlink,xattr']));
      const part = join(dir, 'p2.img');
      sh('dd', [`if=${img}`, `of=${part}`, 'bs=512', `skip=${p2.start}`, `count=${p2.size}`, 'status=none']);
      sh('e2fsck', ['-fn', part]);
      expect(sh('debugfs', ['-R', 'ls /dir', part]).stdout).toContain('renamed');
    });
  });
});

describe('read-only attachment', () => {
  need('mkfs.ext4', 'dumpe2fs')('an ext4 image with a dirty journal, attached read-only, is never written', () => {
    return inScratch('dirty', async (dir) => {
      const img = ext4Image(dir);
      // Writes, syncs and exits with the filesystem still mounted.
      expectAllOk(run('fsops', [img, 'ext4', '0', 'symlink,dirty']));
      expect(sh('dumpe2fs', ['-h', img]).stdout).toMatch(/needs_recovery/);
      const before = sha256(img);

      // Replaying the journal would write: ext4 refuses, with its reason.
      const plain = mountResult([img, 'ext4', '0', 'ro']);
      expect(plain.ret).toBe(-30); // EROFS
      expect(plain.stderr).toMatch(/EXT4-fs .*(write access unavailable|norecovery|noload)/);
      expect(sha256(img)).toBe(before);

      // Without replay it mounts, still without a single write.
      expect(mountResult([img, 'ext4', '0', 'ro', 'norecovery']).ret).toBe(0);
      expect(sha256(img)).toBe(before);
    });
  });
});

describe('durability', () => {
  need(
    'mkfs.ext4',
    'e2fsck',
    'debugfs',
  )('512 MiB written and fsynced, then SIGKILL: the image checks clean and holds the data', async () => {
    return inScratch('kill', async (dir) => {
      const img = ext4Image(dir, 1024);
      const mib = 512;
      const child = spawn(program('bigwrite'), [img, 'ext4', String(mib)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('synced\n')) resolve();
        });
        child.on('exit', () => reject(new Error(`bigwrite exited early:\n${out}\n${err}`)));
      });
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      // The kernel was killed mid-mount: replay the journal as the next
      // mount would, then the filesystem must check clean.
      const replay = sh('e2fsck', ['-fy', img], { allowFail: true });
      expect([0, 1]).toContain(replay.status);
      sh('e2fsck', ['-fn', img]);

      const dump = join(dir, 'big');
      sh('debugfs', ['-R', `dump /big ${dump}`, img]);
      const fd = openSync(dump, 'r');
      const chunk = Buffer.alloc(1 << 20);
      try {
        for (let i = 0; i < mib; i++) {
          expect(readSync(fd, chunk, 0, chunk.length, i * chunk.length)).toBe(chunk.length);
          const expected = Buffer.alloc(chunk.length, i & 0xff);
          expected.writeBigInt64LE(BigInt(i), 0);
          if (!chunk.equals(expected)) throw new Error(`MiB ${i} of /big differs`);
        }
        expect(readSync(fd, chunk, 0, 1, mib * chunk.length)).toBe(0);
      } finally {
        closeSync(fd);
      }
    });
  });
});

describe('bad input gives an error, never a hang or a crash', () => {
  const withExt4 = need('mkfs.ext4');

  withExt4('unknown filesystem type', () => {
    return inScratch('bad', async (dir) => {
      expect(mountResult([ext4Image(dir), 'nosuchfs', '0', 'rw']).ret).toBe(-19); // ENODEV
    });
  });

  withExt4('wrong filesystem type for the image', () => {
    return inScratch('bad', async (dir) => {
      const r = mountResult([ext4Image(dir), 'xfs', '0', 'rw']);
      expect(r.ret).toBe(-22); // EINVAL
      expect(r.stderr).toMatch(/XFS/);
    });
  });

  withExt4('missing partition', () => {
    return inScratch('bad', async (dir) => {
      expect(mountResult([ext4Image(dir), 'ext4', '3', 'rw']).ret).toBe(-6); // ENXIO
    });
  });

  withExt4('corrupted superblock', () => {
    return inScratch('bad', async (dir) => {
      const img = ext4Image(dir);
      const fd = openSync(img, 'r+');
      writeSync(fd, Buffer.alloc(1024), 0, 1024, 1024);
      closeSync(fd);
      const r = mountResult([img, 'ext4', '0', 'rw']);
      expect(r.ret).toBe(-22);
      expect(r.stderr).toMatch(/EXT4-fs|VFS/);
    });
  });

  withExt4('truncated image', () => {
    return inScratch('bad', async (dir) => {
      const img = ext4Image(dir);
      sh('truncate', ['-s', '1M', img]);
      const r = mountResult([img, 'ext4', '0', 'rw']);
      expect(r.ret).toBeLessThan(0);
      expect(r.stderr).toMatch(/EXT4-fs/);
    });
  });

  test('a kernel panic reaches the host panic operation and ends the process', () => {
    const r = run('panic', [], 60_000);
    expect(r.status).toBe(70); // LKL_PANIC_EXIT_CODE
    expect(r.stderr).toMatch(/Kernel panic - not syncing: mem=.* too small/);
    expect(r.stdout).not.toContain('returned');
  });
});
