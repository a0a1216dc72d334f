/**
 * lklfs grow and cptofs --grow: images, their last partitions and their
 * filesystems made bigger, judged by the host's own tools (the
 * filesystems' checkers and dumpers, sfdisk, sgdisk) and by the kernel's
 * statfs in a fresh process; refusals leave the image byte for byte as it
 * was.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { diffTrees, expectOk, lklfs, snapshot } from './cli.js';

const MiB = 2 ** 20;
const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A small tree with some data, a hole, a symlink and a hard link. */
function makeTree(root: string, files = 8, fileMiB = 1): void {
  mkdirSync(join(root, 'dir/sub'), { recursive: true });
  for (let i = 0; i < files; i++) {
    const data = Buffer.alloc(fileMiB * MiB);
    for (let j = 0; j < data.length; j += 4096) data.writeUInt32LE((i * 7919 + j) >>> 0, j);
    writeFileSync(join(root, `dir/f${i}`), data);
  }
  writeFileSync(join(root, 'dir/sub/small'), 'hello\n');
  sh('truncate', ['-s', '3M', join(root, 'dir/sparse')]);
  sh('ln', ['-s', 'dir/sub/small', join(root, 'link')]);
  sh('ln', [join(root, 'dir/sub/small'), join(root, 'dir/hard')]);
}

/** What the kernel says of the filesystem, mounted afresh in another process: statfs. */
function kernelStatfs(img: string, fsType: string, partition = 0): { blocks: number; blockSize: number } {
  const script = `
    import { Kernel } from ${JSON.stringify(join(repoRoot, 'dist/src/kernel/kernel.js'))};
    const k = await Kernel.boot();
    const m = await k.mount(process.argv[1], { fsType: process.argv[2], partition: Number(process.argv[3]), readOnly: true });
    const st = await k.native.statfs(m.path('/'));
    await k.halt();
    process.stdout.write(JSON.stringify(st));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, img, fsType, String(partition)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`statfs in the kernel failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { blocks: number; blockSize: number };
}

/** The filesystem's own size, read by its host tools, in bytes. */
const hostSize: Record<string, (img: string) => number> = {
  ext4: (img) => {
    const out = sh('dumpe2fs', ['-h', img]).stdout;
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(out)?.[1]);
    return field('Block count') * field('Block size');
  },
  btrfs: (img) => Number(/^dev_item\.total_bytes\s+(\d+)/m.exec(sh('btrfs', ['inspect-internal', 'dump-super', img]).stdout)?.[1]),
  xfs: (img) => {
    const out = sh('xfs_db', ['-r', '-c', 'sb 0', '-c', 'p dblocks blocksize', img]).stdout;
    return Number(/dblocks = (\d+)/.exec(out)?.[1]) * Number(/blocksize = (\d+)/.exec(out)?.[1]);
  },
};

const check: Record<string, (img: string) => void> = {
  ext4: (img) => void sh('e2fsck', ['-fn', img]),
  btrfs: (img) => void sh('btrfs', ['check', img]),
  xfs: (img) => void sh('xfs_repair', ['-n', img]),
};

const kinds = [
  { fs: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F'], mib: 32 },
  { fs: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], mib: 128 },
  { fs: 'xfs', mkfs: ['mkfs.xfs', '-q', '-f'], mib: 320 },
];

function image(dir: string, k: { fs: string; mkfs: string[]; mib: number }, name = `${k.fs}.img`): string {
  const img = join(dir, name);
  sh('truncate', ['-s', `${k.mib}M`, img]);
  sh(k.mkfs[0] as string, [...k.mkfs.slice(1), img]);
  return img;
}

/** The image's tree copied out and compared with the source's. */
function expectSameTree(img: string, src: string, dir: string, partition = 0): void {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  mkdirSync(out);
  expectOk(lklfs(['cpfromfs', '-i', img, '-P', String(partition), '/.', out]));
  expect(diffTrees(snapshot(src, { skip: (p) => p === '.' }), snapshot(out, { skip: (p) => p === '.' || p === 'lost+found' }))).toEqual([]);
}

describe('lklfs grow', () => {
  describe.each(kinds)('$fs', (k) => {
    need(k.mkfs[0] as string)(`a ${k.fs} image grown by 256M: checker clean, bigger for the kernel and the host tools, content intact`, () =>
      inScratch(`grow-${k.fs}`, (dir) => {
        const src = join(dir, 'src');
        makeTree(src);
        const img = image(dir, k);
        expectOk(lklfs(['cptofs', '-i', img, `${src}/.`, '/']));
        const before = { host: hostSize[k.fs]!(img), kernel: kernelStatfs(img, k.fs) };

        const r = lklfs(['grow', '-i', img, '--size', '+256M']);
        expectOk(r);
        expect(r.stdout.toString()).toMatch(new RegExp(`^${img}: ${k.mib}\\.0 MiB -> ${k.mib + 256}\\.0 MiB; ${k.fs} filesystem: `));
        expect(statSync(img).size).toBe((k.mib + 256) * MiB);
        // Sparse: the new space takes nothing on the host.
        expect(statSync(img).blocks * 512).toBeLessThan((k.mib + 16) * MiB);
        check[k.fs]!(img);
        const host = hostSize[k.fs]!(img);
        expect(host).toBeGreaterThan(before.host + 250 * MiB);
        expect(host).toBeLessThanOrEqual((k.mib + 256) * MiB);
        const st = kernelStatfs(img, k.fs);
        expect(st.blocks * st.blockSize).toBeGreaterThan(before.kernel.blocks * before.kernel.blockSize + 200 * MiB);
        expectSameTree(img, src, dir);

        // The size it already has: the filesystem already fills it.
        expectOk(lklfs(['grow', '-i', img, '--size', `${k.mib + 256}M`]));
        expect(statSync(img).size).toBe((k.mib + 256) * MiB);
        check[k.fs]!(img);
        expect(hostSize[k.fs]!(img)).toBe(host);
      }),
    );
  });

  need('mkfs.ext4')('ext2 (no journal) grows to an absolute size, with -t ext2', () =>
    inScratch('grow-ext2', (dir) => {
      const img = image(dir, { fs: 'ext2', mkfs: ['mkfs.ext2', '-q', '-F'], mib: 16 });
      expectOk(lklfs(['grow', '-i', img, '-t', 'ext2', '--size', '100M']));
      sh('e2fsck', ['-fn', img]);
      expect(hostSize.ext4!(img)).toBe(100 * MiB);
      expect(sh('dumpe2fs', ['-h', img]).stdout).not.toMatch(/has_journal/);
    }),
  );

  need('mkfs.ext4')('an ext4 image whose file was already extended: the filesystem grows to fill it', () =>
    inScratch('grow-fill', (dir) => {
      const img = image(dir, { fs: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F'], mib: 16 });
      sh('truncate', ['-s', '64M', img]);
      expectOk(lklfs(['grow', '-i', img, '--size', '+0']));
      sh('e2fsck', ['-fn', img]);
      expect(hostSize.ext4!(img)).toBe(64 * MiB);
    }),
  );
});

/** An image of mib: partition 1 of 4M, partition 2 after it with an ext4 (holding src's tree, if given). */
function partitioned(dir: string, label: 'gpt' | 'dos', mib: number, src?: string): string {
  const img = join(dir, `${label}.img`);
  sh('truncate', ['-s', `${mib}M`, img]);
  sh('sfdisk', ['-q', img], { input: `label: ${label}\nsize=4M\n,\n` });
  const p2 = partitionOf(img, 2);
  const fs = join(dir, 'p2');
  sh('truncate', ['-s', `${p2.size * 512}`, fs]);
  sh('mkfs.ext4', ['-q', '-F', fs]);
  sh('dd', [`if=${fs}`, `of=${img}`, 'bs=512', `seek=${p2.start}`, 'conv=notrunc', 'status=none']);
  if (src) expectOk(lklfs(['cptofs', '-i', img, '-P', '2', `${src}/.`, '/']));
  return img;
}

function partitionOf(img: string, n: number): { start: number; size: number } {
  const table = JSON.parse(sh('sfdisk', ['-J', img]).stdout) as {
    partitiontable: { partitions: { node: string; start: number; size: number }[]; lastlba?: number };
  };
  const p = table.partitiontable.partitions.find((x) => x.node.endsWith(String(n)));
  if (!p) throw new Error(`sfdisk shows no partition ${n}`);
  return p;
}

/** The partition's filesystem, as a file of its own, checked by e2fsck and measured by dumpe2fs. */
function checkPartition(img: string, n: number, dir: string): number {
  const p = partitionOf(img, n);
  const out = join(dir, `p${n}-out`);
  sh('dd', [`if=${img}`, `of=${out}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none']);
  sh('e2fsck', ['-fn', out]);
  return hostSize.ext4!(out);
}


describe('lklfs grow -P: the last partition', () => {
  need('sfdisk', 'sgdisk', 'mkfs.ext4')('GPT: partition 2 grown by 100M, backup table moved to the new end, both tables valid', () =>
    inScratch('grow-gpt', (dir) => {
      const src = join(dir, 'src');
      makeTree(src, 4);
      const img = partitioned(dir, 'gpt', 64, src);
      const p1 = partitionOf(img, 1);
      const before = partitionOf(img, 2);

      expectOk(lklfs(['grow', '-i', img, '-P', '2', '--size', '+100M']));
      const after = partitionOf(img, 2);
      expect([after.start, after.size]).toEqual([before.start, before.size + 100 * 2048]);
      expect(partitionOf(img, 1)).toEqual(p1);
      // The partition ends at the last usable sector, then come the backup
      // entries (32 sectors) and the backup header, in the image's last sector.
      const sectors = statSync(img).size / 512;
      expect(sectors).toBe(after.start + after.size + 33);
      expect(sh('sfdisk', ['-d', img]).stdout).toMatch(new RegExp(`last-lba: ${after.start + after.size - 1}\\n`));
      const last = readFileSync(img).subarray((sectors - 1) * 512);
      expect(last.subarray(0, 8).toString('latin1')).toBe('EFI PART');
      expect(Number(last.readBigUInt64LE(24))).toBe(sectors - 1);
      expect(sh('sfdisk', ['--verify', img]).stdout).toMatch(/No errors detected/);
      // sgdisk checks both headers, both entry arrays and their CRCs.
      expect(sh('sgdisk', ['-v', img]).stdout).toMatch(/No problems found/);
      expect(checkPartition(img, 2, dir)).toBe(after.size * 512);
      const st = kernelStatfs(img, 'ext4', 2);
      expect(st.blocks * st.blockSize).toBeGreaterThan(100 * MiB);
      expectSameTree(img, src, dir, 2);
    }),
  );

  need('sfdisk', 'sgdisk', 'mkfs.ext4')('GPT: a wiped primary header is refused before anything is written', () =>
    inScratch('grow-gpt-bad', (dir) => {
      const src = join(dir, 'src');
      makeTree(src, 1);
      const img = partitioned(dir, 'gpt', 64, src);
      sh('dd', ['if=/dev/zero', `of=${img}`, 'bs=1', 'seek=600', 'count=8', 'conv=notrunc', 'status=none']);
      const sum = sha256(img);
      const r = lklfs(['grow', '-i', img, '-P', '2', '-t', 'ext4', '--size', '+10M']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/checksum of the primary GPT header does not match/);
      expect(sha256(img)).toBe(sum);
    }),
  );

  need('sfdisk', 'mkfs.ext4')('MBR: partition 2 grown to 200M, the table valid for sfdisk', () =>
    inScratch('grow-mbr', (dir) => {
      const src = join(dir, 'src');
      makeTree(src, 4);
      const img = partitioned(dir, 'dos', 64, src);
      const before = partitionOf(img, 2);
      expectOk(lklfs(['grow', '-i', img, '-P', '2', '--size', '200M']));
      const after = partitionOf(img, 2);
      expect([after.start, after.size]).toEqual([before.start, 200 * 2048]);
      expect(statSync(img).size).toBe((after.start + after.size) * 512);
      expect(sh('sfdisk', ['--verify', img]).stdout).toMatch(/No errors detected/);
      expect(checkPartition(img, 2, dir)).toBe(200 * MiB);
      expectSameTree(img, src, dir, 2);
    }),
  );
});

describe('lklfs grow refuses, leaving the image as it was', () => {
  /** Runs grow, expects status and message, and the image unchanged. */
  function refused(img: string, args: string[], status: number, message: RegExp): void {
    const sum = sha256(img);
    const size = statSync(img).size;
    const r = lklfs(['grow', '-i', img, ...args]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status, stderr: expect.stringMatching(message) });
    expect(statSync(img).size).toBe(size);
    expect(sha256(img)).toBe(sum);
  }

  need('sfdisk', 'mkfs.ext4')('a partition that is not the last, one that is not there, a logical one', () =>
    inScratch('grow-not-last', (dir) => {
      const gpt = join(dir, 'gpt.img');
      sh('truncate', ['-s', '64M', gpt]);
      sh('sfdisk', ['-q', gpt], { input: 'label: gpt\nsize=10M\nsize=10M\n' });
      refused(gpt, ['-P', '1', '-t', 'ext4', '--size', '+10M'], 1, /partition 1 is not the last one of the GPT table \(partition 2 ends after it/);
      refused(gpt, ['-P', '3', '-t', 'ext4', '--size', '+10M'], 1, /gpt\.img: the GPT table has no partition 3/);
      const sum = sha256(gpt);
      const r = lklfs(['cptofs', '-i', gpt, '-P', '1', '-t', 'ext4', '--grow', join(repoRoot, 'package.json'), '/']);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 1, stderr: expect.stringMatching(/partition 1 is not the last one/) });
      expect(sha256(gpt)).toBe(sum);
      const mbr = join(dir, 'mbr.img');
      sh('truncate', ['-s', '64M', mbr]);
      sh('sfdisk', ['-q', mbr], { input: `label: dos\n${mbr}1 : size=10M\n${mbr}2 : size=30M, type=5\n${mbr}5 : size=10M\n` });
      refused(mbr, ['-P', '1', '-t', 'ext4', '--size', '+10M'], 1, /partition 1 is not the last one of the MBR table/);
      refused(mbr, ['-P', '5', '-t', 'ext4', '--size', '+10M'], 1, /partition 5 is a logical partition/);
      refused(mbr, ['-P', '2', '-t', 'ext4', '--size', '+10M'], 1, /partition 2 is the MBR table's extended partition/);
      const plain = join(dir, 'plain.img');
      sh('truncate', ['-s', '16M', plain]);
      sh('mkfs.ext4', ['-q', '-F', plain]);
      refused(plain, ['-P', '1', '-t', 'ext4', '--size', '+10M'], 1, /plain\.img has no partition 1: it has no partition table/);
    }),
  );

  need('mkfs.ext4', 'mkfs.btrfs')('shrinking, a size that is not one, a btrfs under 256M', () =>
    inScratch('grow-shrink', (dir) => {
      const img = image(dir, { fs: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F'], mib: 32 });
      refused(img, ['--size', '16M'], 2, /the size asked for \(16777216 bytes\) is smaller than the image's \(33554432 bytes\): lklfs grow does not shrink/);
      refused(img, ['--size', '1X'], 2, /--size: "1X" is not a size/);
      refused(img, ['--size=-1G'], 2, /is not a size/);
      const btrfs = image(dir, { fs: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], mib: 128 });
      refused(btrfs, ['--size', '+64M'], 2, /btrfs cannot be resized to less than 256\.0 MiB \(the kernel's limit\)/);
    }),
  );

  need('mkfs.vfat', 'mkfs.f2fs')('filesystems the kernel cannot grow: vfat, f2fs (its resize only shrinks)', () =>
    inScratch('grow-unsupported', (dir) => {
      const vfat = image(dir, { fs: 'vfat', mkfs: ['mkfs.vfat'], mib: 16 });
      refused(vfat, ['--size', '+16M'], 1, /vfat cannot be grown: only ext2, ext3, ext4, btrfs and xfs grow online in the kernel/);
      const f2fs = image(dir, { fs: 'f2fs', mkfs: ['mkfs.f2fs', '-q', '-f'], mib: 64 });
      refused(f2fs, ['--size', '+16M'], 1, /f2fs cannot be grown by the kernel: its resize ioctl \(F2FS_IOC_RESIZE_FS\) only shrinks/);
      const r = lklfs(['cptofs', '-i', f2fs, '--grow', join(repoRoot, 'package.json'), '/']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/--grow: .*f2fs cannot be grown/);
    }),
  );
});

describe('cptofs --grow', () => {
  describe.each(kinds)('$fs', (k) => {
    need(k.mkfs[0] as string)(`a tree bigger than the ${k.fs} image: the image grows, the copy succeeds, checker clean`, () =>
      inScratch(`cptofs-grow-${k.fs}`, (dir) => {
        const src = join(dir, 'src');
        makeTree(src, Math.ceil(k.mib / 4) + 16, 4);
        const img = image(dir, k);
        const full = lklfs(['cptofs', '-i', img, `${src}/.`, '/']);
        expect(full.status).toBe(1);
        expect(full.stderr).toMatch(/ENOSPC/);
        check[k.fs]!(img);

        expectOk(lklfs(['cptofs', '-i', img, '--grow', `${src}/.`, '/']));
        expect(statSync(img).size).toBeGreaterThan(k.mib * MiB);
        check[k.fs]!(img);
        expectSameTree(img, src, dir);
      }),
    );
  });

  describe.each([
    { fs: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F'], mib: 32, files: 16, step: 8, first: 0 },
    // btrfs grows to 256M at least (the kernel's limit), then by steps.
    { fs: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], mib: 128, files: 80, step: 16, first: 128 },
  ])('$fs, --grow-step of $step MiB', (k) =>
    need(k.mkfs[0] as string)('grown only when full, by steps; files cut short by ENOSPC completed where they stopped', () =>
      inScratch(`cptofs-grow-step-${k.fs}`, (dir) => {
        const src = join(dir, 'src');
        makeTree(src, k.files, 4);
        const img = image(dir, k);
        expectOk(lklfs(['cptofs', '-i', img, '--grow', '--grow-step', `${k.step}M`, `${src}/.`, '/']));
        check[k.fs]!(img);
        const grown = statSync(img).size - (k.mib + k.first) * MiB;
        expect(grown % (k.step * MiB)).toBe(0);
        // Room made a step at a time, not much more than the data needs.
        const data = k.files * 4 * MiB;
        expect(grown + (k.mib + k.first) * MiB).toBeGreaterThan(data);
        expect(grown + (k.mib + k.first) * MiB).toBeLessThanOrEqual(data + k.mib * MiB);
        expectSameTree(img, src, dir);
      }),
    ),
  );

  need('mkfs.ext4')('ext4 out of inodes, not of blocks: grown again at each ENOSPC, the copy going on where it stopped', () =>
    inScratch('cptofs-grow-inodes', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let i = 0; i < 800; i++) writeFileSync(join(src, `e${i}`), '');
      const img = join(dir, 'inodes.img');
      sh('truncate', ['-s', '16M', img]);
      sh('mkfs.ext4', ['-q', '-F', '-i', '65536', img]); // 256 inodes
      expectOk(lklfs(['cptofs', '-i', img, '--grow', '--grow-step', '8M', '-v', `${src}/.`, '/']));
      sh('e2fsck', ['-fn', img]);
      // Three growths of 8M or more: more than 800 inodes; each entry copied once.
      expect(statSync(img).size).toBeGreaterThanOrEqual(40 * MiB);
      expect(lklfs(['ls', '-i', img, '/']).stdout.toString().split('\n').filter(Boolean).length).toBe(801);
      expectSameTree(img, src, dir);
    }),
  );

  need('sfdisk', 'sgdisk', 'mkfs.ext4')('the last partition of a GPT image grows as the copy needs', () =>
    inScratch('cptofs-grow-gpt', (dir) => {
      const src = join(dir, 'src');
      makeTree(src, 12, 4);
      const img = partitioned(dir, 'gpt', 32);
      expectOk(lklfs(['cptofs', '-i', img, '-P', '2', '--grow', `${src}/.`, '/']));
      expect(sh('sgdisk', ['-v', img]).stdout).toMatch(/No problems found/);
      expect(statSync(img).size).toBeGreaterThan(48 * MiB);
      expectSameTree(img, src, dir, 2);
    }),
  );

  need('mkfs.ext4')('a growth the kernel refuses: exit 1, the reason, the filesystem clean', () =>
    inScratch('cptofs-grow-refused', (dir) => {
      const src = join(dir, 'src');
      makeTree(src, 8, 4);
      const img = join(dir, 'dense.img');
      sh('truncate', ['-s', '16M', img]);
      // An inode for every KiB: growing by 5 TiB (sparse) would need more
      // than 2^32 inodes, which ext4 refuses before changing anything.
      sh('mkfs.ext4', ['-q', '-F', '-b', '1024', '-i', '1024', img]);
      const r = lklfs(['cptofs', '-i', img, '--grow', '--grow-step', '5T', `${src}/.`, '/']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/cannot grow the ext4 filesystem of .*dense\.img: EINVAL: invalid argument\n\s+kernel: .*inodes_count overflow/);
      sh('e2fsck', ['-fn', img]);
      expect(hostSize.ext4!(img)).toBe(16 * MiB);
    }),
  );
});
