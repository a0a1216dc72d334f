/**
 * Disks: attached before and after boot, detached again; discard reaches
 * the image as hole punching; fsync reaches the image as fdatasync.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, parseChecks, program, run, inScratch, sh } from './harness.js';

const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);

describe('disks', () => {
  need('mkfs.ext4', 'e2fsck')('added before and after boot, trimmed, removed; the images stay sparse and clean', () => {
    return inScratch('disks', async (dir) => {
      const [a, b] = ['a.img', 'b.img'].map((n) => join(dir, n)) as [string, string];
      for (const img of [a, b]) {
        sh('truncate', ['-s', '128M', img]);
        sh('mkfs.ext4', ['-q', '-F', img]);
      }
      const baseline = statSync(a).blocks * 512;
      expectAllOk(run('disks', [a, b]));
      // 32 MiB were written to A, deleted and trimmed: the holes are back.
      expect(statSync(a).blocks * 512 - baseline).toBeLessThan(8 << 20);
      sh('e2fsck', ['-fn', a]);
      sh('e2fsck', ['-fn', b]);
      expect(sh('debugfs', ['-R', 'stat /file', b]).stdout).toMatch(/Size: 4194304/);
    });
  });

  need('mkfs.ext4', 'strace')('fsync in the kernel reaches the image file as fdatasync', () => {
    return inScratch('flush', async (dir) => {
      const img = join(dir, 'ext4.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', '-F', img]);
      const r = sh('strace', [
        '-f',
        '-qq',
        '-e',
        'trace=fdatasync',
        '-o',
        join(dir, 'trace'),
        program('fsops'),
        img,
        'ext4',
        '0',
        '',
      ]);
      const checks = parseChecks(r.stdout);
      expect(checks.get('fsync')?.ok).toBe(true);
      const trace = sh('cat', [join(dir, 'trace')]).stdout;
      expect(trace).toMatch(/fdatasync\(\d+\)\s+= 0/);
    });
  });
});
