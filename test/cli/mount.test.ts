/**
 * lklfs mount: images mounted with FUSE and used by ordinary tools (cp -a,
 * tar, git, rm -rf, python for the calls tools rarely make), then judged
 * by the filesystems' own checkers; a daemon killed with -9, SIGTERM, a
 * read-only mount that must not change a byte.
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { diffTrees, expectOk, lklfs, lklfsAsync, snapshot } from './cli.js';
import { isRoot, makeRichTree } from './rich-tree.js';
import { fuseUnavailable } from './fuse.js';

/** Why FUSE mounts cannot be tested here, if they cannot. */
const unavailable = fuseUnavailable();
const describeFuse = unavailable ? describe.skip : describe;
const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function image(dir: string, name: string, sizeMiB: number, mkfs: string[]): string {
  const img = join(dir, name);
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh(mkfs[0] as string, [...mkfs.slice(1), img]);
  return img;
}

/** Processes whose command line has all of words (our daemons: mount IMAGE MOUNTPOINT ... --notify-fd). */
function daemons(...words: string[]): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.some((a) => a.endsWith('bin/run.js')) && words.every((w) => argv.includes(w))) pids.push(Number(pid));
  }
  return pids;
}

function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mountpoint);
}

/** Waits (up to 30 s) for a condition that another process brings about. */
function waitFor(what: string, cond: () => boolean): void {
  for (let i = 0; !cond(); i++) {
    if (i === 600) throw new Error(`timed out waiting for ${what}`);
    spawnSync('sleep', ['0.05']);
  }
}

/**
 * A scratch directory whose mounts never outlive the test: whatever is
 * still mounted is detached and its daemon killed before the directory
 * goes.
 */
function withMounts(prefix: string, fn: (dir: string) => void, base?: string): Promise<void> {
  return inScratch(prefix, (dir) => {
    try {
      fn(dir);
    } finally {
      for (const pid of daemons('--notify-fd=3').filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)))
        process.kill(pid, 'SIGKILL');
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (isMounted(path)) spawnSync('fusermount3', ['-u', '-z', path]);
      }
    }
  }, base);
}

function mount(img: string, mnt: string, ...flags: string[]): void {
  mkdirSync(mnt, { recursive: true });
  const r = lklfs(['mount', ...flags, img, mnt]);
  expectOk(r);
  expect(isMounted(mnt)).toBe(true);
}

function umount(mnt: string, img: string): void {
  expectOk(lklfs(['umount', mnt]));
  expect(isMounted(mnt)).toBe(false);
  // Once umount returns, the image is free for any other job (the daemon
  // has unmounted it inside its kernel and closed it); the daemon exits.
  sh('flock', ['--nonblock', '--exclusive', img, 'true']);
  waitFor('the daemon to exit', () => daemons(mnt).length === 0);
}

/** A listing of a tar archive: what tar itself says is in it. */
function manifest(archive: string): string {
  return sh('tar', ['--numeric-owner', '--full-time', '-tvf', archive]).stdout;
}

function archive(dir: string, out: string): void {
  sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--sort=name', '-C', dir, '-cf', out, '.']);
}

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.name=lklfs', '-c', 'user.email=lklfs@example.org', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
};

describeFuse(`lklfs mount${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  need('mkfs.ext4', 'e2fsck', 'tar', 'git', 'getfacl', 'getfattr')(
    'ext4: cp -a of a rich tree in, tar out with the same manifest, git init + commit, rm -rf; e2fsck clean',
    () =>
      withMounts('mount-ext4', (dir) => {
        const src = join(dir, 'src');
        mkdirSync(src);
        makeRichTree(src);
        const img = image(dir, 'ext4.img', 256, ['mkfs.ext4', '-q', '-F']);
        const mnt = join(dir, 'mnt');
        mount(img, mnt);

        const tree = join(mnt, 'tree');
        sh('cp', ['-a', src, tree]);
        expect(diffTrees(snapshot(src), snapshot(tree))).toEqual([]);
        // Every entry's ACL, one block each, in name order (getfacl lists in directory order).
        const acls = (root: string) =>
          sh('sh', ['-c', 'cd "$1" && getfacl -R -n .', 'acls', root]).stdout.split('\n\n').sort().join('\n\n');
        expect(acls(tree)).toBe(acls(src));

        archive(src, join(dir, 'src.tar'));
        archive(tree, join(dir, 'mnt.tar'));
        expect(manifest(join(dir, 'mnt.tar'))).toBe(manifest(join(dir, 'src.tar')));
        const back = join(dir, 'back');
        mkdirSync(back);
        sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '-C', back, '-xpf', join(dir, 'mnt.tar')]);
        // tar leaves sockets out.
        expect(diffTrees(snapshot(src, { skip: (rel) => rel === 'tmp/socket' }), snapshot(back))).toEqual([]);

        const repo = join(mnt, 'repo');
        sh('cp', ['-a', join(repoRoot, 'src'), repo]);
        git(repo, 'init', '-q');
        git(repo, 'add', '-A');
        git(repo, 'commit', '-q', '-m', 'the sources');
        git(repo, 'fsck', '--strict');
        expect(git(repo, 'status', '--porcelain')).toBe('');
        const head = git(repo, 'rev-parse', 'HEAD').trim();

        sh('rm', ['-rf', tree]);
        expect(readdirSync(mnt).sort()).toEqual(['lost+found', 'repo']);
        umount(mnt, img);
        sh('e2fsck', ['-fn', img]);

        // What git wrote is in the image: mounted again, the repository checks.
        mount(img, mnt, '--ro');
        git(repo, 'fsck', '--strict');
        expect(git(repo, 'rev-parse', 'HEAD').trim()).toBe(head);
        umount(mnt, img);
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'python3')(
    'the calls tools rarely make: holes (SEEK_DATA/SEEK_HOLE, fallocate), rename flags, xattrs on symlinks, capabilities dropped by a write, more files than the daemon keeps open, listings side by side, a file unlinked while open, statfs, nanosecond times',
    () =>
      withMounts('mount-calls', (dir) => {
        const img = image(dir, 'ext4.img', 128, ['mkfs.ext4', '-q', '-F', '-b', '4096']);
        const mnt = join(dir, 'mnt');
        mount(img, mnt);
        const r = sh('python3', [join(repoRoot, 'test/cli/mount-calls.py'), mnt]);
        const got = JSON.parse(r.stdout) as Record<string, unknown>;
        const MiB = 1 << 20;
        expect(got).toEqual({
          // Data at 0 and at 5 MiB in an 8 MiB file.
          seek: [0, 4096, 5 * MiB, 5 * MiB + 4096, 'ENXIO'],
          // 1 MiB allocated at 1 MiB, then 4 KiB of it punched out.
          blocksAfterFallocate: 2 * 8 + 2048,
          blocksAfterPunch: 2 * 8 + 2048 - 8,
          noreplace: 'EEXIST',
          exchanged: ['second', 'first'],
          whiteout: 'ok',
          symlinkXattr: 'value',
          userXattrOnSymlink: 'EPERM',
          mtimeNs: '1234567890123456789',
          caps: ['ENODATA', '0100000200200000000000000000000000000000', 'ENODATA'],
          manyFilesWrong: [],
          listingsIncomplete: [],
          unlinkedOpen: ['still here!', 0],
          statfs: expect.anything(),
        });
        umount(mnt, img);
        sh('e2fsck', ['-fn', img]);
        // statfs as the superblock has it once unmounted.
        const sb = sh('dumpe2fs', ['-h', img]).stdout;
        const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(sb)?.[1]);
        expect(got.statfs).toEqual({
          frsize: field('Block size'),
          bfree: field('Free blocks'),
          files: field('Inode count'),
          ffree: field('Free inodes'),
        });
        // Nanoseconds are the image's, not the host's cache.
        mount(img, mnt, '--ro');
        expect(sh('stat', ['-c', '%.9Y', join(mnt, 'times')]).stdout.trim()).toBe('1234567890.123456789');
        umount(mnt, img);
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'python3')(
    'kill -9 of the daemon: fusermount3 -u frees the mount point; read-only, the image stays byte for byte; the next mount replays what fsync wrote',
    () =>
      withMounts('mount-kill', (dir) => {
        const img = image(dir, 'ext4.img', 128, ['mkfs.ext4', '-q', '-F']);
        const mnt = join(dir, 'mnt');
        mount(img, mnt);
        // One file fsynced (it must survive), a directory of others that may not.
        sh('python3', ['-c', `import os
fd = os.open("${mnt}/synced", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"kept\\n" * 1000)
os.fsync(fd)`]);
        mkdirSync(join(mnt, 'unsynced'));
        for (let i = 0; i < 50; i++) writeFileSync(join(mnt, 'unsynced', `f${i}`), 'x'.repeat(i * 100));
        const [pid, ...more] = daemons(img, mnt);
        expect(more).toEqual([]);
        process.kill(pid as number, 'SIGKILL');
        waitFor('the daemon to die', () => daemons(img, mnt).length === 0);
        const ls = spawnSync('ls', [mnt], { encoding: 'utf8' });
        // ECONNABORTED for what was in flight, ENOTCONN after.
        expect(ls.stderr).toMatch(/Software caused connection abort|Transport endpoint is not connected/);
        sh('fusermount3', ['-u', mnt]);
        expect(isMounted(mnt)).toBe(false);

        // Read-only: the journal is not replayed, nothing is written.
        const before = sha256(img);
        mkdirSync(mnt, { recursive: true });
        const ro = lklfs(['mount', '--ro', img, mnt]);
        expectOk(ro);
        expect(ro.stderr).toMatch(/warning: .*ext4\.img was not unmounted cleanly/);
        readdirSync(mnt);
        const write = spawnSync('touch', [join(mnt, 'new')], { encoding: 'utf8' });
        expect(write.stderr).toMatch(/Read-only file system/);
        umount(mnt, img);
        expect(sha256(img)).toBe(before);

        // Read-write: replayed, and what fsync wrote is there.
        mount(img, mnt);
        expect(readFileSync(join(mnt, 'synced'), 'utf8')).toBe('kept\n'.repeat(1000));
        umount(mnt, img);
        sh('e2fsck', ['-fn', img]);
      }),
  );

  need('mkfs.ext4', 'e2fsck')('SIGTERM to the daemon, even with the mount busy, writes back what the host cached and unmounts cleanly', () =>
    withMounts('mount-term', (dir) => {
      const img = image(dir, 'ext4.img', 128, ['mkfs.ext4', '-q', '-F']);
      const mnt = join(dir, 'mnt');
      const data = Buffer.alloc(20 << 20, 'lklfs');
      for (const busy of [false, true]) {
        mount(img, mnt);
        writeFileSync(join(mnt, `data-${busy}`), data);
        // A shell sitting in the mount keeps it busy: fusermount3 -u cannot take it.
        const sitter = busy ? spawn('sleep', ['60'], { cwd: mnt, stdio: 'ignore' }) : undefined;
        try {
          const [pid] = daemons(img, mnt);
          process.kill(pid as number, 'SIGTERM');
          waitFor('the daemon to finish', () => daemons(img, mnt).length === 0);
        } finally {
          sitter?.kill('SIGKILL');
        }
        if (busy) spawnSync('fusermount3', ['-u', '-z', mnt]);
        expect(isMounted(mnt)).toBe(false);
        sh('e2fsck', ['-fn', img]);
        const cat = lklfs(['cat', '-i', img, `/data-${busy}`]);
        expectOk(cat);
        expect(cat.stdout.equals(data)).toBe(true);
      }
    }));

  need('mkfs.ext4', 'e2fsck')('-f stays in the foreground; ^C unmounts cleanly', async () => {
    await inScratch('mount-foreground', async (dir) => {
      const img = image(dir, 'ext4.img', 64, ['mkfs.ext4', '-q', '-F']);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      const r = await lklfsAsync(['mount', '-f', img, mnt], (child) => {
        waitFor('the mount', () => isMounted(mnt));
        writeFileSync(join(mnt, 'hello'), 'hello\n');
        child.kill('SIGINT');
      });
      expectOk(r);
      expect(isMounted(mnt)).toBe(false);
      sh('e2fsck', ['-fn', img]);
      expect(lklfs(['cat', '-i', img, '/hello']).stdout.toString()).toBe('hello\n');
    });
  });

  for (const fs of [
    { name: 'btrfs', size: 256, mkfs: ['mkfs.btrfs', '-q', '-f'], check: ['btrfs', 'check'] },
    // xfs keeps ACLs as trusted.SGI_ACL_* attributes too, which root sees.
    { name: 'xfs', size: 320, mkfs: ['mkfs.xfs', '-q', '-f'], check: ['xfs_repair', '-n'], extra: /^trusted\.SGI_ACL_/ },
  ])
    need(fs.mkfs[0] as string, fs.check[0] as string)(`${fs.name}: cp -a of a rich tree in and back the same; ${fs.check.join(' ')} clean`, () =>
      withMounts(`mount-${fs.name}`, (dir) => {
        const src = join(dir, 'src');
        mkdirSync(src);
        makeRichTree(src);
        const img = image(dir, `${fs.name}.img`, fs.size, fs.mkfs);
        const mnt = join(dir, 'mnt');
        const inImage = () => {
          const tree = snapshot(join(mnt, 'tree'));
          for (const node of tree.values())
            for (const name of Object.keys(node.xattrs)) if (fs.extra?.test(name)) delete node.xattrs[name];
          return tree;
        };
        mount(img, mnt);
        sh('cp', ['-a', src, join(mnt, 'tree')]);
        expect(diffTrees(snapshot(src), inImage())).toEqual([]);
        umount(mnt, img);
        sh(fs.check[0] as string, [...fs.check.slice(1), img]);
        mount(img, mnt, '--ro');
        expect(diffTrees(snapshot(src), inImage())).toEqual([]);
        umount(mnt, img);
      }),
    );

  // exfat has no file handles: its inodes are held open while the host knows them.
  need('mkfs.exfat', 'fsck.exfat', 'diff')('exfat: a tree in and out, a file unlinked while open; fsck.exfat clean', () =>
    withMounts('mount-exfat', (dir) => {
      const img = image(dir, 'exfat.img', 64, ['mkfs.exfat']);
      const mnt = join(dir, 'mnt');
      mount(img, mnt);
      sh('cp', ['-r', join(repoRoot, 'src'), join(mnt, 'src')]);
      sh('diff', ['-r', join(repoRoot, 'src'), join(mnt, 'src')]);
      sh('python3', ['-c', `import os
fd = os.open("${mnt}/doomed", os.O_RDWR | os.O_CREAT)
os.write(fd, b"still here")
os.unlink("${mnt}/doomed")
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
assert os.pread(fd, 100, 0) == b"still here"`]);
      sh('mv', [join(mnt, 'src'), join(mnt, 'moved')]);
      umount(mnt, img);
      sh('fsck.exfat', ['-n', img]);
      mount(img, mnt, '--ro');
      sh('diff', ['-r', join(repoRoot, 'src'), join(mnt, 'moved')]);
      expect(readdirSync(mnt)).toEqual(['moved']);
      umount(mnt, img);
    }));

  need('mksquashfs', 'diff')('squashfs: mounted --ro, the tree reads back; without --ro, a clear error', () =>
    withMounts('mount-squashfs', (dir) => {
      const img = join(dir, 'fs.squashfs');
      sh('mksquashfs', [join(repoRoot, 'src'), img, '-quiet', '-noappend']);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      const rw = lklfs(['mount', img, mnt]);
      expect(rw.status).toBe(1);
      expect(rw.stderr).toBe(`lklfs mount: cannot write to ${img}: the kernel mounted its squashfs filesystem read-only\n`);
      expect(isMounted(mnt)).toBe(false);
      mount(img, mnt, '--ro');
      sh('diff', ['-r', join(repoRoot, 'src'), mnt]);
      umount(mnt, img);
    }));

  // Files made through the mount are their maker's, as on a local filesystem.
  const user = ['--reuid=1000', '--regid=1000', '--clear-groups'];
  const canDropRoot = isRoot && haveTool('setpriv') && haveTool('mkfs.ext4');
  (canDropRoot ? test : test.skip)('allow_other: what another user makes is theirs, with their umask and set-group-ID directories; permissions enforced', () =>
    withMounts('mount-user', (dir) => {
      chmodSync(dir, 0o755);
      const img = image(dir, 'ext4.img', 64, ['mkfs.ext4', '-q', '-F']);
      const mnt = join(dir, 'mnt');
      mount(img, mnt, '-o', 'allow_other');
      mkdirSync(join(mnt, 'shared'), { mode: 0o777 });
      chmodSync(join(mnt, 'shared'), 0o1777);
      mkdirSync(join(mnt, 'group'));
      sh('chgrp', ['100', join(mnt, 'group')]);
      chmodSync(join(mnt, 'group'), 0o2777);
      const r = spawnSync('setpriv', [...user, 'sh', '-c', `umask 027
cd "$1" && touch shared/file && mkdir shared/dir && ln -s file shared/link && touch group/file && mkdir group/dir
touch root-owned 2>&1`, 'user', mnt], { encoding: 'utf8' });
      expect(r.stdout).toMatch(/'root-owned': Permission denied/);
      const owners = (rel: string) => sh('stat', ['-c', '%u:%g %a', join(mnt, rel)]).stdout.trim();
      expect(owners('shared/file')).toBe('1000:1000 640');
      expect(owners('shared/dir')).toBe('1000:1000 750');
      expect(owners('group/file')).toBe('1000:100 640');
      expect(owners('group/dir')).toBe('1000:100 2750');
      umount(mnt, img);
      sh('e2fsck', ['-fn', img]);
      // In the system's temporary directory: the other user must reach the
      // mount point, which a checkout under /root would not let it do.
    }, tmpdir()));

  test('bad input: clear errors and exit statuses, nothing left mounted', () =>
    withMounts('mount-errors', (dir) => {
      const img = image(dir, 'ext4.img', 64, ['mkfs.ext4', '-q', '-F']);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      const noDir = lklfs(['mount', img, join(dir, 'nowhere')]);
      expect(noDir.status).toBe(2);
      expect(noDir.stderr).toBe(`lklfs mount: mount point ${join(dir, 'nowhere')}: ENOENT: no such file or directory\n`);
      const fsname = lklfs(['mount', '-o', 'fsname=x', img, mnt]);
      expect(fsname.status).toBe(2);
      const unknown = lklfs(['mount', '-o', 'no_such_option', img, mnt]);
      expect(unknown.status).toBe(1);
      expect(unknown.stderr).toMatch(/^lklfs mount: cannot mount .* on .*mnt: unknown option.*no_such_option/);
      expect(isMounted(mnt)).toBe(false);

      mount(img, mnt);
      mkdirSync(join(dir, 'mnt2'));
      const busy = lklfs(['mount', img, join(dir, 'mnt2')]);
      expect(busy.status).toBe(1);
      expect(busy.stderr).toBe(`lklfs mount: image ${img} is in use: another process has it open\n`);
      // /proc is a mount point wherever the tests run (in a chroot, / may not be).
      const notOurs = lklfs(['umount', '/proc']);
      expect(notOurs.status).toBe(2);
      expect(notOurs.stderr).toMatch(/^lklfs umount: \/proc is not an lklfs mount \(it is proc\)/);
      umount(mnt, img);
      const notMounted = lklfs(['umount', mnt]);
      expect(notMounted.status).toBe(2);
      expect(notMounted.stderr).toBe(`lklfs umount: ${mnt} is not a mount point\n`);
      sh('e2fsck', ['-fn', img]);
    }));
});
