/** lkl-build/examples/cptofs.c, the C API example, does what it says. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inScratch, program, repoRoot, sh } from './harness.js';

test('the C example copies a tree into an ext4 image that e2fsck finds clean', () =>
  inScratch('example', (dir) => {
    const img = join(dir, 'ext4.img');
    sh('truncate', ['-s', '64M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    const tree = join(repoRoot, 'fixtures/example-rootfs');
    const r = spawnSync(program('cptofs', join(repoRoot, 'lkl-build/examples')), [img, 'ext4', tree], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    sh('e2fsck', ['-fn', img]);
    expect(sh('debugfs', ['-R', 'cat /etc/hostname', img]).stdout).toBe(readFileSync(join(tree, 'etc/hostname'), 'utf8'));
    expect(sh('debugfs', ['-R', 'stat /bin/greet', img]).stdout).toContain('Fast link dest: "hello"');
  }));
