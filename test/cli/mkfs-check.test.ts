/** mkfs-check: the host's mkfs, a write through the kernel, the host's checker. */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inScratch } from '../kernel/harness.js';
import { expectOk, lklfs } from './cli.js';

describe('mkfs-check', () => {
  test('ext4, vfat and squashfs pass the round trip', () => {
    const r = lklfs(['mkfs-check', '-t', 'ext4', '-t', 'vfat', '-t', 'squashfs']);
    expectOk(r);
    const lines = r.stdout.toString().trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ext4 +ok +made by mkfs\.ext4, written, e2fsck clean, read back/);
    expect(lines[1]).toMatch(/^vfat +ok +made by mkfs\.vfat, written, fsck\.vfat clean, read back/);
    expect(lines[2]).toMatch(/^squashfs +ok +made by mksquashfs, no checker, read back/);
  });

  test('a checker that finds problems fails the type, and the command', () =>
    inScratch('mkfs-check-bad', (dir) => {
      // An e2fsck that finds fault with everything, first on the PATH.
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'e2fsck'), '#!/bin/sh\necho "Inode 12 is broken (fake)"\nexit 4\n');
      chmodSync(join(bin, 'e2fsck'), 0o755);
      const r = lklfs(['mkfs-check', '-t', 'ext4'], { env: { PATH: `${bin}:${process.env.PATH}` } });
      expect(r.status).toBe(1);
      expect(r.stdout.toString()).toMatch(/^ext4 +failed +e2fsck found problems: Inode 12 is broken \(fake\)/);
      expect(r.stderr).toMatch(/lklfs mkfs-check: ext4 failed/);
    }));

  test('missing tools: skipped, with the package to install', () =>
    inScratch('mkfs-check-missing', (dir) => {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      symlinkSync('/bin/sh', join(bin, 'sh'));
      const r = lklfs(['mkfs-check', '-t', 'xfs'], { env: { PATH: bin } });
      expectOk(r);
      expect(r.stdout.toString()).toMatch(/^xfs +skipped +mkfs\.xfs, xfs_repair not found \(Debian package xfsprogs\)/);
    }));

  test('an unknown type is a usage error', () => {
    const r = lklfs(['mkfs-check', '-t', 'zfs']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown filesystem type: zfs/);
  });
});
