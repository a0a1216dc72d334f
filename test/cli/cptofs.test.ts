/**
 * cptofs: host trees into images, judged by the filesystems' own checkers
 * and, for ext4, by debugfs reading every entry's metadata back.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { expectOk, lklfs, lklfsAsync, snapshot } from './cli.js';
import { debugfsStat } from './debugfs.js';
import { isRoot, makeRichTree, reportRichTreeGaps } from './rich-tree.js';

/** snapshot() shows bytes that are not UTF-8 as \xNN. */
const notUtf8 = (key: string) => /\\x[0-9a-f]{2}/.test(key);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function image(dir: string, fs: string, sizeMiB: number, mkfs: string[]): string {
  const img = join(dir, `${fs}.img`);
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh(mkfs[0] as string, [...mkfs.slice(1), img]);
  return img;
}

const debugfsType: Record<string, string> = {
  file: 'regular',
  dir: 'directory',
  symlink: 'symlink',
  char: 'character special',
  block: 'block special',
  fifo: 'FIFO',
  socket: 'socket',
};

describe('cptofs', () => {
  reportRichTreeGaps('cptofs');

  test('ext4: every kind of entry with all its metadata, as debugfs and e2fsck see it', () =>
    inScratch('cptofs-ext4', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      makeRichTree(src);
      const img = image(dir, 'ext4', 256, ['mkfs.ext4', '-q', '-F']);
      const r = lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']);
      expectOk(r);
      expect(r.stderr).toBe('');
      sh('e2fsck', ['-fn', img]);

      const want = snapshot(src);
      // debugfs takes names on its command line: the UTF-8 ones.
      const utf8 = [...want.keys()].filter((p) => !notUtf8(p));
      const got = debugfsStat(img, utf8.map((p) => (p === '.' ? '/' : `/${p}`)), dir);
      const problems: string[] = [];
      for (const rel of utf8) {
        const w = want.get(rel)!;
        const g = got.get(rel === '.' ? '/' : `/${rel}`)!;
        const check = (what: string, a: unknown, b: unknown) => {
          if (a !== b) problems.push(`${rel}: ${what} ${String(a)} != ${String(b)}`);
        };
        check('type', debugfsType[w.kind], g.type);
        if (w.kind !== 'symlink') check('mode', w.mode.toString(8), g.mode.toString(8));
        check('uid', w.uid, g.uid);
        check('gid', w.gid, g.gid);
        check('mtime', w.mtimeNs, g.mtimeNs);
        if (w.kind === 'file') check('size', w.size, g.size);
        if (w.links !== undefined) check('links', w.links.split(',').length + 1, g.links);
        if (w.target && g.fastLink !== undefined) check('target', Buffer.from(w.target, 'hex').toString(), g.fastLink);
        for (const name of Object.keys(w.xattrs)) if (!g.xattrs.has(name)) problems.push(`${rel}: xattr ${name} missing`);
        if (w.kind === 'char' || w.kind === 'block') expect(g.device).toBeDefined();
      }
      expect(problems).toEqual([]);
      expect(got.get('/etc/hostname')?.xattrs.has('system.posix_acl_access')).toBe(true);
      expect(got.get('/etc/hostname')?.xattrs.get('user.origin')).toBe('"lklfs test"');
      if (isRoot) expect(got.get('/tmp/null')?.device).toMatch(/^0?1:0?3$/);

      // Contents, including a sparse file that must stay sparse.
      for (const f of ['big', 'sparse', 'bin/tool']) {
        const out = join(dir, 'dump');
        sh('debugfs', ['-R', `dump /${f} ${out}`, img]);
        expect(sha256(out)).toBe(sha256(join(src, f)));
      }
      const blocks = Number(/Blockcount: (\d+)/.exec(sh('debugfs', ['-R', 'stat /sparse', img]).stdout)?.[1]);
      expect(blocks * 512).toBeLessThan(256 * 1024);
    }));

  const others = [
    { fs: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], size: 256, check: ['btrfs', 'check', '--readonly'] },
    { fs: 'xfs', mkfs: ['mkfs.xfs', '-q', '-f'], size: 320, check: ['xfs_repair', '-n', '-f'] },
    { fs: 'f2fs', mkfs: ['mkfs.f2fs', '-q', '-f'], size: 256, check: ['fsck.f2fs', '--dry-run'] },
  ];
  for (const c of others) {
    const mkfs = c.mkfs[0] as string;
    const title = `${c.fs}: the same tree, clean by its checker, every name there`;
    (haveTool(mkfs) ? test : test.skip)(haveTool(mkfs) ? title : `${title} (skipped: no ${mkfs})`, () =>
    inScratch(`cptofs-${c.fs}`, (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      makeRichTree(src);
      const img = image(dir, c.fs, c.size, c.mkfs);
      expectOk(lklfs(['cptofs', '-t', c.fs, '-i', img, `${src}/.`, '/']));
      const check = sh(c.check[0] as string, [...c.check.slice(1), img], { allowFail: true });
      expect(check.status).toBe(0);
      expect(check.stdout).not.toMatch(/\[Fail/);
      const listed = lklfs(['ls', '-t', c.fs, '-i', img, '-R', '-a', '/']);
      expectOk(listed);
      const names = new Set(listed.stdout.toString().split('\n').filter(Boolean));
      for (const rel of snapshot(src).keys()) if (rel !== '.' && !notUtf8(rel)) expect(names).toContain(`/${rel}`);
      expect(listed.stdout.includes(Buffer.from([0xe9, 0xff]))).toBe(true);
    }),
    );
  }

  test('vfat: metadata or entries the filesystem cannot hold are warnings, not a failure', () =>
    inScratch('cptofs-vfat', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'docs'), { recursive: true });
      writeFileSync(join(src, 'docs/readme.txt'), 'hello from lklfs\n');
      symlinkSync('readme.txt', join(src, 'docs/link'));
      const img = image(dir, 'vfat', 64, ['mkfs.vfat']);
      const r = lklfs(['cptofs', '-t', 'vfat', '-i', img, '--owner', '1000', `${src}/.`, '/']);
      expectOk(r);
      expect(r.stderr).toMatch(/warning: owner not kept on \d+ entr(y|ies) \(EPERM\)/);
      // FAT holds no symlinks: that entry is left out, the rest copied.
      expect(r.stderr).toMatch(/warning: symlink not kept on 1 entry \(EPERM\), e\.g\. \/docs\/link/);
      sh('fsck.vfat', ['-n', img]);
      expect(sh('mtype', ['-i', img, '::/docs/readme.txt']).stdout).toBe('hello from lklfs\n');
    }));

  test('a full image fails the copy cleanly: clear error, filesystem still consistent', () =>
    inScratch('cptofs-full', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let i = 0; i < 3; i++) writeFileSync(join(src, `blob${i}`), Buffer.alloc(12 << 20, i + 1));
      const img = image(dir, 'ext4', 24, ['mkfs.ext4', '-q', '-F']);
      const r = lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/.`, '/']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/ext4\.img:\/blob\d: ENOSPC: no space left on device/);
      sh('e2fsck', ['-fn', img]);
    }));

  test.each([
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s stops the copy, and the image is unmounted cleanly', (sig, status) =>
    inScratch('cptofs-signal', async (dir) => {
      const src = join(dir, 'src');
      for (let d = 0; d < 40; d++) {
        mkdirSync(join(src, `d${d}`), { recursive: true });
        for (let f = 0; f < 125; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`);
      }
      const img = image(dir, 'ext4', 256, ['mkfs.ext4', '-q', '-F']);
      // Interrupted as soon as it reports its first entry: far from done.
      const r = await lklfsAsync(['cptofs', '-v', '-t', 'ext4', '-i', img, `${src}/.`, '/'], (child) => {
        child.stdout?.once('data', () => child.kill(sig));
      });
      expect(r.status).toBe(status);
      expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}`));
      sh('e2fsck', ['-fn', img]);
    }));

  test('read-only commands leave the image byte for byte as it was', () =>
    inScratch('cptofs-ro', (dir) => {
      const src = join(dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'file'), 'content\n');
      const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
      sh('mkfifo', [join(src, 'fifo')]);
      expectOk(lklfs(['cptofs', '-t', 'ext4', '-i', img, `${src}/file`, `${src}/fifo`, '/']));
      const before = sha256(img);
      const mtime = statSync(img).mtimeMs;
      expectOk(lklfs(['ls', '-t', 'ext4', '-i', img, '-R', '-l', '/']));
      const cat = lklfs(['cat', '-t', 'ext4', '-i', img, '/file']);
      expectOk(cat);
      expect(cat.stdout.toString()).toBe('content\n');
      // A fifo has no writer in there: an error, not a wait.
      const fifo = lklfs(['cat', '-i', img, '/fifo']);
      expect(fifo.status).toBe(1);
      expect(fifo.stderr).toMatch(/read .*ext4\.img:\/fifo: ESPIPE/);
      expect(sha256(img)).toBe(before);
      expect(statSync(img).mtimeMs).toBe(mtime);
    }));

  test('what is in the way: files replaced, directories merged, a directory and a file never swapped', () =>
    inScratch('cptofs-in-the-way', (dir) => {
      const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
      const a = join(dir, 'a');
      mkdirSync(join(a, 'etc'), { recursive: true });
      writeFileSync(join(a, 'etc/motd'), 'first\n');
      writeFileSync(join(a, 'file'), 'a file\n');
      expectOk(lklfs(['cptofs', '-i', img, `${a}/.`, '/']));
      const b = join(dir, 'b');
      mkdirSync(join(b, 'etc'), { recursive: true });
      writeFileSync(join(b, 'etc/motd'), 'second\n');
      writeFileSync(join(b, 'etc/issue'), 'new\n');
      expectOk(lklfs(['cptofs', '-i', img, `${b}/.`, '/']));
      expect(lklfs(['cat', '-i', img, '/etc/motd', '/etc/issue', '/file']).stdout.toString()).toBe('second\nnew\na file\n');

      const dirOverFile = lklfs(['cptofs', '-i', img, join(a, 'etc'), '/file']);
      expect(dirOverFile.status).toBe(1);
      expect(dirOverFile.stderr).toBe(`lklfs cptofs: cannot overwrite non-directory ${img}:/file with a directory\n`);
      const c = join(dir, 'c');
      mkdirSync(c);
      writeFileSync(join(c, 'etc'), 'a file named etc\n');
      const fileOverDir = lklfs(['cptofs', '-i', img, join(c, 'etc'), '/']);
      expect(fileOverDir.status).toBe(1);
      expect(fileOverDir.stderr).toBe(`lklfs cptofs: cannot overwrite directory ${img}:/etc with a non-directory\n`);
      sh('e2fsck', ['-fn', img]);
    }));

  // The main use: a root-owned image built in CI by a user who is not root.
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const canDropRoot =
    isRoot && haveTool('setpriv') && spawnSync('setpriv', [...nobody, 'test', '-r', join(repoRoot, 'bin/run.js')]).status === 0;
  (canDropRoot ? test : test.skip)(`as a normal user: --owner 0 --group 0 builds a root-owned image${canDropRoot ? '' : ' (skipped: needs root, setpriv and a checkout user nobody can read)'}`, () =>
    inScratch('cptofs-nobody', (dir) => {
      chmodSync(dir, 0o755);
      const src = join(dir, 'src');
      mkdirSync(join(src, 'etc'), { recursive: true });
      writeFileSync(join(src, 'etc/hostname'), 'ci\n');
      chmodSync(join(src, 'etc/hostname'), 0o600);
      const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
      for (const p of [src, join(src, 'etc'), join(src, 'etc/hostname'), img]) lchownSync(p, 65534, 65534);
      const r = spawnSync(
        'setpriv',
        [...nobody, process.execPath, join(repoRoot, 'bin/run.js'), 'cptofs', '-i', img, '--owner', '0', '--group', '0', `${src}/.`, '/'],
        { encoding: 'utf8', env: { ...process.env, HOME: dir } },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      sh('e2fsck', ['-fn', img]);
      const st = sh('debugfs', ['-R', 'stat /etc/hostname', img]).stdout;
      expect(st).toMatch(/User:\s+0\s+Group:\s+0/);
      expect(st).toMatch(/Mode:\s+0600/);
    }));

  test('a filesystem the kernel only mounts read-only is refused before any copying', () =>
    inScratch('cptofs-squashfs', (dir) => {
      const img = join(dir, 'fs.squashfs');
      sh('mksquashfs', [join(repoRoot, 'fixtures/example-rootfs'), img, '-quiet', '-noappend']);
      const before = sha256(img);
      const r = lklfs(['cptofs', '-i', img, join(repoRoot, 'README.md'), '/']);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`lklfs cptofs: cannot write to ${img}: the kernel mounted its squashfs filesystem read-only\n`);
      expect(sha256(img)).toBe(before);
      const cat = lklfs(['cat', '-i', img, '/etc']);
      expect(cat.stderr).toBe(`lklfs cat: read ${img}:/etc: EISDIR: illegal operation on a directory\n`);
    }));

  test('bad usage: clear messages and exit status 2', () =>
    inScratch('cptofs-usage', (dir) => {
      const img = image(dir, 'ext4', 64, ['mkfs.ext4', '-q', '-F']);
      const one = lklfs(['cptofs', '-t', 'ext4', '-i', img, '/']);
      expect(one.status).toBe(2);
      expect(one.stderr).toMatch(/at least one SOURCE and a DEST/);
      const missing = lklfs(['cptofs', '-t', 'ext4', '-i', img, join(dir, 'nope'), '/']);
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/cannot copy .*nope: ENOENT/);
      const notDir = lklfs(['cptofs', '-t', 'ext4', '-i', img, dir, dir, '/no-such-dir']);
      expect(notDir.status).toBe(2);
      expect(notDir.stderr).toMatch(/destination \/no-such-dir does not exist in the image/);
    }));
});
