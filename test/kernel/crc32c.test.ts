/**
 * crc32c with the SSE4.2 instruction (arch/lkl/crypto/crc32c.c): it agrees
 * with crc32c-generic (its own check, run at boot on request), every
 * filesystem that checksums with crc32c uses it and nothing uses the
 * generic driver (the references /proc/crypto counts), and what it wrote
 * passes the host's checker.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectAllOk, haveTool, inScratch, run, sh } from './harness.js';

const DRIVER = 'crc32c-sse42';

const sse42 = process.arch === 'x64' && /^flags\s*:.*\bsse4_2\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

interface Case {
  fs: string;
  tools: string[];
  sizeMiB: number;
  mkfs: (img: string) => void;
  check: (img: string) => void;
  /** Transforms the mount allocates, held while mounted. */
  mountRefs: number;
  why: string;
}

const cases: Case[] = [
  {
    fs: 'ext4',
    tools: ['mkfs.ext4', 'e2fsck'],
    sizeMiB: 64,
    mkfs: (img) => sh('mkfs.ext4', ['-q', '-F', '-O', 'metadata_csum', img]),
    check: (img) => sh('e2fsck', ['-fn', img]),
    mountRefs: 2,
    why: 'ext4 (metadata_csum) and jbd2 each allocate "crc32c" at mount',
  },
  {
    fs: 'btrfs',
    tools: ['mkfs.btrfs', 'btrfs'],
    sizeMiB: 256,
    mkfs: (img) => sh('mkfs.btrfs', ['-q', '-f', '--csum', 'crc32c', img]),
    check: (img) => sh('btrfs', ['check', '--readonly', img]),
    mountRefs: 1,
    why: 'btrfs allocates its checksum driver at mount; name hashes go through libcrc32c',
  },
  {
    fs: 'xfs',
    tools: ['mkfs.xfs', 'xfs_repair'],
    sizeMiB: 320,
    mkfs: (img) => sh('mkfs.xfs', ['-q', '-f', '-m', 'crc=1', img]),
    check: (img) => sh('xfs_repair', ['-n', '-f', img]),
    mountRefs: 0,
    why: "xfs calls crc32c(), libcrc32c's transform allocated at boot",
  },
];

interface DriverRefs {
  priority: number;
  booted: number;
  mounted: number;
}

function drivers(stdout: string): Map<string, DriverRefs> {
  const found = new Map<string, DriverRefs>();
  for (const m of stdout.matchAll(/^crc32c (\S+) priority (\d+) refs (-?\d+) (-?\d+)$/gm)) {
    found.set(m[1] as string, { priority: Number(m[2]), booted: Number(m[3]), mounted: Number(m[4]) });
  }
  return found;
}

const title = sse42 ? 'crc32c with SSE4.2' : 'crc32c with SSE4.2 (skipped: the CPU is not x86-64 with SSE4.2)';
(sse42 ? describe : describe.skip)(title, () => {
  for (const c of cases) {
    const need = c.tools.every(haveTool) ? test : test.skip;
    need(`${c.fs}: agrees with crc32c-generic, is the one used (${c.why}), and the image checks clean`, () => {
      return inScratch(`crc32c-${c.fs}`, (dir) => {
        const img = join(dir, `${c.fs}.img`);
        sh('truncate', ['-s', `${c.sizeMiB}M`, img]);
        c.mkfs(img);
        const r = run('crc32c', [img, c.fs]);
        expectAllOk(r, [
          'the driver agrees with crc32c-generic',
          '/proc/crypto after boot',
          'mount',
          'writes',
          '/proc/crypto when mounted',
          'umount',
          'halt',
        ]);
        // Lengths 0-1024 and eight longer ones, 16 alignments, 4 seeds.
        expect(r.stdout).toMatch(/^check: crc32c-sse42: agrees with crc32c-generic in 66112 cases \((three streams|one stream)\)$/m);

        // Registration holds one reference: nobody holds the generic
        // driver, libcrc32c holds ours from boot, the mount adds its own.
        const d = drivers(r.stdout);
        expect(d.get('crc32c-generic')).toEqual({ priority: 100, booted: 1, mounted: 1 });
        expect(d.get(DRIVER)).toEqual({ priority: 200, booted: 2, mounted: 2 + c.mountRefs });
        c.check(img);
      });
    });
  }
});
