/**
 * lklfs mount: images mounted with FUSE and used by ordinary tools (cp -a,
 * tar, git, rm -rf, python for the calls tools rarely make), then judged
 * by the filesystems' own checkers; a daemon killed with -9, SIGTERM, a
 * read-only mount that must not change a byte.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { diffTrees, expectOk, lklfs, snapshot } from './cli.js';
import { isRoot, makeRichTree } from './rich-tree.js';

/** Why FUSE mounts cannot be tested here, if they cannot. */
function fuseUnavailable(): string | undefined {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'no usable /dev/fuse';
  }
  if (!haveTool('fusermount3')) return 'no fusermount3 (Debian: fuse3)';
  const addon = join(repoRoot, 'native/build/Release/lklfs.node');
  const probe = spawnSync(process.execPath, ['-e', `process.exit(typeof require(${JSON.stringify(addon)}).fuseMount === 'function' ? 0 : 1)`]);
  if (probe.status !== 0) return 'the binding was built without FUSE (libfuse3-dev)';
  return undefined;
}

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
  for (let i = 0; i < 600; i++) {
    if (cond()) return;
    spawnSync('sleep', ['0.05']);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A scratch directory whose mounts never outlive the test: whatever is
 * still mounted is detached and its daemon killed before the directory
 * goes.
 */
function withMounts(prefix: string, fn: (dir: string) => void): Promise<void> {
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
  });
}

function mount(img: string, mnt: string, ...flags: string[]): void {
  mkdirSync(mnt, { recursive: true });
  const r = lklfs(['mount', ...flags, img, mnt]);
  expectOk(r);
  expect(isMounted(mnt)).toBe(true);
}

function umount(mnt: string): void {
  expectOk(lklfs(['umount', mnt]));
  expect(isMounted(mnt)).toBe(false);
  // The daemon is gone once umount returns.
  expect(daemons(mnt)).toEqual([]);
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
        umount(mnt);
        sh('e2fsck', ['-fn', img]);

        // What git wrote is in the image: mounted again, the repository checks.
        mount(img, mnt, '--ro');
        git(repo, 'fsck', '--strict');
        expect(git(repo, 'rev-parse', 'HEAD').trim()).toBe(head);
        umount(mnt);
      }),
  );
});
