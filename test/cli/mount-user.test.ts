/**
 * lklfs mount as a user without root, the way it is meant to be used: the
 * user mounts an image it owns (fusermount3 is set-uid), works in it as
 * itself, and unmounts it. Run as user nobody from a test running as root,
 * which lets nobody open /dev/fuse for the test's duration where the
 * machine does not already (Debian's udev makes it 0666; containers often
 * leave it 0600) through an ACL entry it removes again.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { fuseUnavailable } from './fuse.js';
import { isRoot } from './rich-tree.js';

const NOBODY = 65534;
const SETPRIV = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
const lklfs = [process.execPath, join(repoRoot, 'bin/run.js')];

function whyNot(): string | undefined {
  const fuse = fuseUnavailable();
  if (fuse) return fuse;
  if (!isRoot) return 'the test runs as root to become user nobody';
  if (!haveTool('setpriv') || !haveTool('setfacl')) return 'needs setpriv and setfacl';
  if (nobody(['test', '-r', lklfs[1] as string]).status !== 0) return 'user nobody cannot read the checkout';
  return undefined;
}

const why = whyNot();

/** Runs cmd as user nobody in dir (its HOME too). */
function nobody(cmd: string[], dir = repoRoot) {
  return spawnSync('setpriv', [...SETPRIV, ...cmd], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } });
}

/** Runs cmd as user nobody; its stdout, or a failure with its output. */
function nobodyOk(cmd: string[], dir: string): string {
  const r = nobody(cmd, dir);
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} as nobody: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const fuseAcl = () => sh('getfacl', ['-c', '/dev/fuse']).stdout;
const fuseAclBefore = why ? '' : fuseAcl();

/** Lets nobody open /dev/fuse while fn runs, if it cannot already. */
function withFuseForNobody<T>(fn: () => T): T {
  if (nobody(['test', '-r', '/dev/fuse', '-a', '-w', '/dev/fuse']).status === 0) return fn();
  const hadAcl = sh('getfacl', ['-cs', '/dev/fuse']).stdout !== '';
  sh('setfacl', ['-m', `u:${NOBODY}:rw`, '/dev/fuse']);
  try {
    return fn();
  } finally {
    // Without an ACL before, none after (-x alone would leave its mask).
    sh('setfacl', hadAcl ? ['-x', `u:${NOBODY}`, '/dev/fuse'] : ['-b', '/dev/fuse']);
  }
}

(why ? describe.skip : describe)(`lklfs mount as a user without root${why ? ` (skipped: ${why})` : ''}`, () => {
  test('mount, write as that user, unmount: owners are the user, root stays root, e2fsck clean', () =>
    inScratch('mount-user', (dir) => {
      chmodSync(dir, 0o755);
      const img = join(dir, 'fs.img');
      sh('truncate', ['-s', '64M', img]);
      sh('mkfs.ext4', ['-q', '-F', '-E', `root_owner=${NOBODY}:${NOBODY}`, img]);
      sh('mkdir', [join(dir, 'mnt')]);
      sh('chown', ['-R', `${NOBODY}:${NOBODY}`, img, join(dir, 'mnt')]);
      // A root-owned file the user must not be able to change.
      const rootOnly = join(dir, 'root-only');
      writeFileSync(rootOnly, 'root\n', { mode: 0o644 });
      sh('debugfs', ['-w', '-R', `write ${rootOnly} root-only`, img]);
      withFuseForNobody(() => {
        nobodyOk([...lklfs, 'mount', img, 'mnt'], dir);
        try {
          nobodyOk(['sh', '-c', 'mkdir mnt/d && echo hello > mnt/d/f && ln -s f mnt/d/l && mkfifo mnt/d/p && chmod 600 mnt/d/f'], dir);
          expect(nobodyOk(['cat', 'mnt/d/f'], dir)).toBe('hello\n');
          expect(nobody(['sh', '-c', 'echo x >> mnt/root-only'], dir).status).not.toBe(0);
          expect(nobody(['chown', '0:0', 'mnt/d/f'], dir).stderr).toMatch(/Operation not permitted/);
        } finally {
          nobodyOk([...lklfs, 'umount', 'mnt'], dir);
        }
      });
      sh('e2fsck', ['-fn', img]);
      const f = sh('debugfs', ['-R', 'stat /d/f', img]).stdout;
      expect(f).toMatch(new RegExp(`User:\\s+${NOBODY}\\s+Group:\\s+${NOBODY}`));
      expect(f).toMatch(/Mode:\s+0600/);
      expect(sh('debugfs', ['-R', 'stat /root-only', img]).stdout).toMatch(/User:\s+0\s+Group:\s+0/);
      expect(sh('debugfs', ['-R', 'stat /d/l', img]).stdout).toMatch(/Type: symlink/);
      expect(sh('debugfs', ['-R', 'stat /d/p', img]).stdout).toMatch(/Type: FIFO/);
    }));

  test('/dev/fuse is as it was', () => {
    expect(fuseAcl()).toBe(fuseAclBefore);
  });
});
