/**
 * cpfromfs: trees copied into images by cptofs come back out whole, with
 * every piece of metadata snapshot() sees; the image is never written.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh, workDir } from '../kernel/harness.js';
import { diffTrees, expectOk, lklfs, lklfsAsync, snapshot } from './cli.js';
import { isRoot, makeRichTree, reportRichTreeGaps } from './rich-tree.js';

const tools = (...names: string[]) => names.every(haveTool);
const need = (...names: string[]) => (tools(...names) ? test : test.skip);

/** Whether chattr +i works on a file where the tests make their images. */
function canMakeImmutable(): boolean {
  if (!haveTool('chattr')) return false;
  mkdirSync(workDir, { recursive: true });
  const probe = join(mkdtempSync(join(workDir, 'chattr-')), 'probe');
  writeFileSync(probe, '');
  const ok = sh('chattr', ['+i', probe], { allowFail: true }).status === 0;
  if (ok) sh('chattr', ['-i', probe]);
  rmSync(dirname(probe), { recursive: true });
  return ok;
}

function image(dir: string, fs: string, sizeMiB: number, mkfs: string[]): string {
  const img = join(dir, `${fs}.img`);
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh(mkfs[0] as string, [...mkfs.slice(1), img]);
  return img;
}

/** Anything that would show a write: contents, and the file's own times. */
function fingerprint(img: string): { sha256: string; mtimeNs: bigint; ctimeNs: bigint } {
  const st = statSync(img, { bigint: true });
  return {
    sha256: createHash('sha256').update(readFileSync(img)).digest('hex'),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

/** ACLs, which snapshot() leaves out (it reads no system.* attributes). */
const acl = (path: string) => sh('getfacl', ['-c', '-p', path]).stdout;

/** The rich tree in a fresh image, then back out of it into dir/out. */
function roundTrip(dir: string, fs: string, sizeMiB: number, mkfs: string[]) {
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  makeRichTree(src);
  const img = image(dir, fs, sizeMiB, mkfs);
  expectOk(lklfs(['cptofs', '-t', fs, '-i', img, `${src}/.`, '/']));
  const before = fingerprint(img);
  const r = lklfs(['cpfromfs', '-t', fs, '-i', img, '/.', out]);
  expectOk(r);
  expect(fingerprint(img)).toEqual(before);
  // Sockets are skipped (a copy would have nobody listening on it).
  const diff = diffTrees(snapshot(src), snapshot(out, { skip: (rel) => rel === 'lost+found' }));
  expect(diff).toEqual(['tmp/socket: missing']);
  expect(r.stderr).toMatch(/warning: skipped 1 socket .*e\.g\. .*:\/tmp\/socket/);
  expect(acl(join(out, 'etc/hostname'))).toBe(acl(join(src, 'etc/hostname')));
  return { src, out, img, stderr: r.stderr };
}

describe('cpfromfs', () => {
  reportRichTreeGaps('cpfromfs');

  need('mkfs.ext4', 'getfattr', 'getfacl', 'setfacl', 'setfattr')(
    'ext4: the rich tree comes back whole, sparse files stay sparse, the image is untouched',
    () =>
      inScratch('cpfromfs-ext4', (dir) => {
        const { out, stderr } = roundTrip(dir, 'ext4', 256, ['mkfs.ext4', '-q', '-F']);
        const sparse = statSync(join(out, 'sparse'));
        expect(sparse.size).toBe(8 << 20);
        expect(sparse.blocks * 512).toBeLessThan(256 << 10);
        // Everything else was copied: no other warning.
        expect(stderr.split('\n').filter((l) => l.includes('warning'))).toHaveLength(1);
        expect(lstatSync(join(out, 'lost+found')).isDirectory()).toBe(true);
      }),
  );

  need('mkfs.btrfs', 'getfattr', 'getfacl', 'setfacl', 'setfattr')('btrfs: the rich tree comes back whole', () =>
    inScratch('cpfromfs-btrfs', (dir) => {
      roundTrip(dir, 'btrfs', 256, ['mkfs.btrfs', '-q', '-f']);
    }),
  );

  need('mkfs.xfs', 'getfattr', 'getfacl', 'setfacl', 'setfattr')('xfs: the rich tree comes back whole', () =>
    inScratch('cpfromfs-xfs', (dir) => {
      roundTrip(dir, 'xfs', 320, ['mkfs.xfs', '-q', '-f']);
    }),
  );

  /** An ext4 image holding the rich tree, for the smaller cases. */
  function richImage(dir: string): { src: string; img: string } {
    const src = join(dir, 'src');
    makeRichTree(src);
    const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
    expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
    return { src, img };
  }

  need('mkfs.ext4', 'getfattr', 'getfacl', 'setfacl', 'setfattr')('one file to a new name, with its metadata', () =>
    inScratch('cpfromfs-one', (dir) => {
      const { src, img } = richImage(dir);
      const dest = join(dir, 'renamed');
      expectOk(lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc/hostname', dest]));
      const want = snapshot(join(src, 'etc/hostname')).get('.');
      expect(snapshot(dest).get('.')).toEqual(want);
      expect(acl(dest)).toBe(acl(join(src, 'etc/hostname')));
    }),
  );

  need('mkfs.ext4', 'getfattr', 'getfacl', 'setfacl', 'setfattr')(
    'into an existing directory: files replaced, directories merged, hard links across sources',
    () =>
      inScratch('cpfromfs-into', (dir) => {
        const { src, img } = richImage(dir);
        const dest = join(dir, 'dest');
        mkdirSync(join(dest, 'bin'), { recursive: true });
        writeFileSync(join(dest, 'bin/tool'), 'old contents');
        writeFileSync(join(dest, 'bin/kept'), 'mine');
        writeFileSync(join(dest, 'hostname'), 'old contents');
        expectOk(lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/bin', '/etc/tool-elsewhere', '/etc/hostname', dest]));
        expect(readFileSync(join(dest, 'bin/kept'), 'utf8')).toBe('mine');
        // bin's own times too: set after its contents were copied.
        expect(diffTrees(snapshot(join(src, 'bin')), snapshot(join(dest, 'bin'), { skip: (rel) => rel === 'kept' }))).toEqual([]);
        expect(snapshot(join(dest, 'hostname')).get('.')).toEqual(snapshot(join(src, 'etc/hostname')).get('.'));
        const ino = (p: string) => lstatSync(join(dest, p)).ino;
        expect(ino('tool-elsewhere')).toBe(ino('bin/tool'));
        expect(ino('bin/tool-hardlink')).toBe(ino('bin/tool'));
        expect(lstatSync(join(dest, 'bin/tool')).nlink).toBe(3);
      }),
  );

  need('mkfs.ext4', 'setfacl', 'setfattr')('a directory in the way of a file: an error naming the host path', () =>
    inScratch('cpfromfs-in-the-way', (dir) => {
      const { img } = richImage(dir);
      const dest = join(dir, 'dest');
      mkdirSync(join(dest, 'hostname'), { recursive: true });
      const r = lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc/hostname', dest]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`lklfs cpfromfs: cannot overwrite directory ${dest}/hostname with a non-directory\n`);
    }),
  );

  need('mkfs.ext4', 'setfacl', 'setfattr')('a missing source: a clear error, nothing copied, the image untouched', () =>
    inScratch('cpfromfs-missing', (dir) => {
      const { img } = richImage(dir);
      const before = fingerprint(img);
      const dest = join(dir, 'dest');
      const r = lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc/nope', dest]);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`lklfs cpfromfs: cannot copy ${img}:/etc/nope: ENOENT: no such file or directory\n`);
      expect(existsSync(dest)).toBe(false);
      // "dir/." of something that is not a directory.
      const r2 = lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc/hostname/.', dest]);
      expect(r2.status).toBe(2);
      expect(r2.stderr).toMatch(/cannot copy .*:\/etc\/hostname\/\.: not a directory/);
      expect(fingerprint(img)).toEqual(before);
    }),
  );

  need('mkfs.ext4', 'setfacl', 'setfattr')('a missing source after good ones: every source checked before anything is copied', () =>
    inScratch('cpfromfs-missing-later', (dir) => {
      const { img } = richImage(dir);
      const dest = join(dir, 'dest');
      mkdirSync(dest);
      const r = lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc', '/bin', '/nope', dest]);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`lklfs cpfromfs: cannot copy ${img}:/nope: ENOENT: no such file or directory\n`);
      expect(readdirSync(dest)).toEqual([]);
    }),
  );

  // Not even root may open an immutable file for writing; some host
  // filesystems have no such flag, and only root may set it.
  const immutable = canMakeImmutable();
  (immutable && tools('mkfs.ext4', 'getfattr', 'setfacl', 'setfattr') ? test : test.skip)(
    `the image is only ever opened read-only: an immutable image file copies out${immutable ? '' : ' (skipped: chattr +i is not permitted here)'}`,
    () =>
      inScratch('cpfromfs-immutable', (dir) => {
        const { src, img } = richImage(dir);
        sh('chattr', ['+i', img]);
        try {
          const before = fingerprint(img);
          const out = join(dir, 'out');
          expectOk(lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/etc', out]));
          // The tool's other names are in /bin, not copied here.
          expect(diffTrees(snapshot(join(src, 'etc')), snapshot(out))).toEqual(['tool-elsewhere: links "" != undefined']);
          expect(fingerprint(img)).toEqual(before);
        } finally {
          sh('chattr', ['-i', img]);
        }
      }),
  );

  need('mkfs.ext4', 'getfattr', 'setfacl', 'setfattr')('--owner and --group override the image\'s owners', () =>
    inScratch('cpfromfs-owner', (dir) => {
      const { img } = richImage(dir);
      const out = join(dir, 'out');
      expectOk(lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '-o', '4321', '-g', '8765', '/etc', out]));
      const owners = new Set([...snapshot(out).values()].map((n) => `${n.uid}:${n.gid}`));
      expect([...owners]).toEqual(['4321:8765']);
    }),
  );

  // Needs a checkout that user nobody can read (not one under /root).
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];
  const nobodyCanRun =
    isRoot &&
    ['setpriv', 'mkfs.ext4', 'getfattr', 'getfacl', 'setfacl', 'setfattr'].every(haveTool) &&
    spawnSync('setpriv', [...nobody, 'test', '-r', join(repoRoot, 'native/build/Release/lklfs.node')]).status === 0;
  (nobodyCanRun ? test : test.skip)(
    `not root: own owners, devices and sockets skipped with one warning each, no privileged attributes${nobodyCanRun ? '' : ' (skipped: needs root, setpriv, the attr/acl tools and a checkout user nobody can read)'}`,
    () =>
      inScratch('cpfromfs-nobody', (dir) => {
        const { src, img } = richImage(dir);
        chmodSync(dir, 0o755);
        const out = join(dir, 'out');
        mkdirSync(join(dir, 'home'));
        lchownSync(join(dir, 'home'), 65534, 65534);
        const asNobody = () =>
          spawnSync('setpriv', [...nobody, process.execPath, join(repoRoot, 'bin/run.js'), 'cpfromfs', '-t', 'ext4', '-i', img, '/.', out], {
            env: { ...process.env, HOME: join(dir, 'home') },
            encoding: 'utf8',
          });
        // The scratch directory is root's: no room for out, and the error
        // names the host path.
        const r = asNobody();
        expect(r.status).toBe(1);
        expect(r.stderr).toBe(`lklfs cpfromfs: mkdir ${out}: EACCES: permission denied\n`);
        lchownSync(dir, 65534, 65534);
        const r2 = asNobody();
        expect(r2.status).toBe(0);
        expect(r2.stderr.split('\n').filter((l) => l.includes('warning')).sort()).toEqual([
          expect.stringMatching(/skipped 1 block device \(creating device nodes needs root \(CAP_MKNOD\)\), e\.g\. .*:\/tmp\/disk$/),
          expect.stringMatching(/skipped 1 character device .*:\/tmp\/null$/),
          expect.stringMatching(/skipped 1 socket .*:\/tmp\/socket$/),
        ]);
        const got = snapshot(out, { skip: (rel) => rel === 'lost+found' });
        expect(new Set([...got.values()].map((n) => `${n.uid}:${n.gid}`))).toEqual(new Set(['65534:65534']));
        // Everything else as root would have it, but the capability (it needs
        // CAP_SETFCAP); ACLs are the owner's to set, so they are kept.
        const diff = diffTrees(snapshot(src), got).filter((d) => !/: (uid|gid) /.test(d));
        expect(diff.sort()).toEqual(
          [
            'tmp/disk: missing',
            'tmp/null: missing',
            'tmp/socket: missing',
            ...['bin/tool', 'bin/tool-hardlink', 'etc/tool-elsewhere'].map(
              (f) => `${f}: xattrs {"security.capability":"0x0100000200200000000000000000000000000000"} != {}`,
            ),
          ].sort(),
        );
        expect(acl(join(out, 'etc/hostname'))).toBe(acl(join(src, 'etc/hostname')));
      }),
  );

  need('mkfs.ext4')('SIGINT stops the copy at the next entry; the image is untouched', async () =>
    inScratch('cpfromfs-sigint', async (dir) => {
      const src = join(dir, 'src');
      for (let d = 0; d < 20; d++) {
        mkdirSync(join(src, `d${d}`), { recursive: true });
        for (let f = 0; f < 200; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `${d}/${f}\n`);
      }
      const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
      const before = fingerprint(img);
      const out = join(dir, 'out');
      const r = await lklfsAsync(['cpfromfs', '-t', 'ext4', '-i', img, '/.', out], (child) => {
        // Once the copy has begun (out exists), not before the handlers are in.
        const poll = setInterval(() => {
          if (existsSync(out)) {
            clearInterval(poll);
            child.kill('SIGINT');
          }
        }, 5);
        child.on('close', () => clearInterval(poll));
      });
      expect(r.status).toBe(130);
      expect(r.stderr).toContain('interrupted by SIGINT; the image was unmounted cleanly');
      const copied = readdirSync(out).reduce((n, d) => n + (d.startsWith('d') ? readdirSync(join(out, d)).length : 0), 0);
      expect(copied).toBeLessThan(4000);
      expect(fingerprint(img)).toEqual(before);
    }),
  );

  // Small files are written by a thread of their own behind the walk: a
  // failure there still ends the copy, naming the host file.
  const canMountTmpfs = isRoot && haveTool('mount') && haveTool('umount');
  (canMountTmpfs && tools('mkfs.ext4') ? test : test.skip)(
    `a full host filesystem: the copy fails with ENOSPC on the host path${canMountTmpfs ? '' : ' (skipped: needs root to mount a small tmpfs)'}`,
    () =>
      inScratch('cpfromfs-host-full', (dir) => {
        const src = join(dir, 'src');
        mkdirSync(src);
        for (let f = 0; f < 40; f++) writeFileSync(join(src, `f${f}`), Buffer.alloc(64 << 10, f + 1));
        const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
        expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']));
        const small = join(dir, 'small');
        mkdirSync(small);
        sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
        try {
          const r = lklfs(['cpfromfs', '-t', 'ext4', '-i', img, '/.', join(small, 'out')]);
          expect(r.status).toBe(1);
          expect(r.stderr).toMatch(new RegExp(`^lklfs cpfromfs: write ${small}/out/f\\d+: ENOSPC: no space left on device\\n$`));
        } finally {
          sh('umount', [small]);
        }
      }),
  );

  // ntfs3 lists WSL's owner fields as attributes in no namespace ($LXUID,
  // $LXGID): no Linux filesystem takes them, so they are not copied (nor
  // complained about); owners come from stat.
  (haveTool('mkntfs') ? test : test.skip)('ntfs3: the tree comes back, without ntfs3-only attributes', () =>
    inScratch('cpfromfs-ntfs3', (dir) => {
      const img = join(dir, 'ntfs.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkntfs', ['-F', '-Q', '-q', img]);
      const tree = join(repoRoot, 'fixtures/example-rootfs');
      expectOk(lklfs(['cptofs', '-i', img, `${tree}/.`, '/']));
      const out = join(dir, 'out');
      const r = lklfs(['cpfromfs', '-i', img, '/.', out]);
      expectOk(r);
      expect(r.stderr).toBe('');
      expect(sh('diff', ['-r', tree, out], { allowFail: true }).stdout).toBe('');
    }));
});
