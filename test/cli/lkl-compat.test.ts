/**
 * cptofs, cpfromfs and fs2tar called as LKL's tools of those names are
 * (bin/*.js): LKL's own test script's command lines and the examples of
 * the README run unchanged, the results judged by e2fsck, debugfs, GNU
 * tar and diff; their usage errors; and the shell patterns they match,
 * against glibc's fnmatch.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fnmatcher } from '../../src/engine/fnmatch.js';
import { haveTool, inScratch, repoRoot, sh } from '../kernel/harness.js';
import { diffTrees, expectOk, snapshot, type CliResult } from './cli.js';
import { debugfsStat } from './debugfs.js';
import { isRoot, makeRichTree } from './rich-tree.js';

const need = (...tools: string[]) => (tools.every(haveTool) ? test : test.skip);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Runs an LKL tool: bin/NAME.js, or a link to one (its name decides, as in LKL). */
function lkl(program: string, args: string[], opts: { cwd?: string } = {}): CliResult {
  const path = program.includes('/') ? program : join(repoRoot, 'bin', `${program}.js`);
  const r = spawnSync(process.execPath, [path, ...args], { cwd: opts.cwd, maxBuffer: 1 << 30, timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() };
}

function ext4(dir: string, name = 'img.ext4', mib = 64): string {
  const img = join(dir, name);
  sh('truncate', ['-s', `${mib}M`, img]);
  sh('mkfs.ext4', ['-q', '-F', img]);
  return img;
}

/** The names in an image directory, as debugfs lists them. */
function debugfsLs(img: string, path: string): string[] {
  const out = sh('debugfs', ['-R', `ls -p ${path}`, img]).stdout;
  return out
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n): n is string => n !== undefined && n !== '.' && n !== '..')
    .sort();
}

const fsck = (img: string) => sh('e2fsck', ['-fn', img]);

describe('LKL command lines: usage', () => {
  const copyOptions = [
    '-p, --enable-printk',
    '-P, --partition',
    '-t, --filesystem-type',
    '-i, --filesystem-image',
    '-o, --owner',
    '-g, --group',
    '-s, --selinux',
    '-m, --mb',
  ];
  const lklOptions = {
    cptofs: copyOptions,
    cpfromfs: copyOptions,
    fs2tar: ['-p, --enable-printk', '-P, --partition', '-t, --filesystem-type', '-s, --selinux-contexts'],
  };

  test.each(Object.entries(lklOptions))('%s: --help, -?, -h and --usage print the usage with every LKL option', (tool, options) => {
    for (const ask of ['--help', '-?', '-h', '--usage']) {
      const r = lkl(tool, [ask]);
      expectOk(r);
      const text = r.stdout.toString();
      expect(text).toMatch(new RegExp(`^Usage: ${tool} \\[OPTION\\.\\.\\.\\]`));
      for (const o of options) expect(text).toContain(o);
    }
  });

  test.each([
    ['cptofs', ['-x', 'a', '/'], /invalid option -- 'x'/],
    ['cptofs', ['-t', 'ext4', 'a', '/'], /give the image with -i IMAGE/],
    ['cptofs', ['-i', 'img', 'a'], /give at least one SOURCE and a DEST/],
    ['cptofs', ['a', '/', '-i'], /option requires an argument -- 'i'/],
    ['cptofs', ['--filesystem', 'x', 'a', '/'], /option '--filesystem' is ambiguous/],
    ['cptofs', ['--enable-printk=yes', '-i', 'img', 'a', '/'], /option '--enable-printk' doesn't allow an argument/],
    ['cptofs', ['-i', 'img', '-P', 'two', 'a', '/'], /-P takes a whole number, not "two"/],
    ['cptofs', ['-i', 'img', '-o', '-1', 'a', '/'], /-o takes a whole number, not "-1"/],
    ['cpfromfs', ['-i', 'img', '-m', '16', '/', 'out'], /-m takes a whole number of at least 32, not "16"/],
    ['cpfromfs', ['--bogus', '-i', 'img', '/', 'out'], /unrecognized option '--bogus'/],
    ['fs2tar', ['img'], /give the IMAGE and the ARCHIVE/],
    ['fs2tar', ['img', 'a.tar', 'b.tar'], /one IMAGE and one ARCHIVE, not 3 arguments/],
    ['fs2tar', ['-i', 'img', 'a.tar'], /invalid option -- 'i'/],
  ])('%s %j: exit 2 and a pointer to --help', (tool, args, why) => {
    const r = lkl(tool, args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^${tool}: ${why.source}`));
    expect(r.stderr).toContain(`Try '${tool} --help' for more information.`);
  });
});

describe('LKL command lines: ext4 images', () => {
  need('mkfs.ext4', 'e2fsck', 'debugfs', 'diff')(
    "LKL's own test (tools/lkl/tests/cptofs.sh): a file and a tree there and back, cpfromfs a link to cptofs, -p showing the kernel",
    () =>
      inScratch('lkl-cptofs-sh', (dir) => {
        const file = ext4(dir);
        const cpfromfs = join(dir, 'cpfromfs');
        symlinkSync(join(repoRoot, 'bin/cptofs.js'), cpfromfs);
        const cptofsArgs = ['-p', '-t', 'ext4', '-i', file];
        mkdirSync(join(dir, 'round-trip'));
        writeFileSync(join(dir, 'data'), 'data\n');
        const put = lkl('cptofs', [...cptofsArgs, join(dir, 'data'), '/']);
        expectOk(put);
        expect(put.stderr).toMatch(/EXT4-fs \(lkl0\): mounted filesystem .* r\/w/);
        expect(put.stderr).toMatch(/EXT4-fs \(lkl0\): unmounting filesystem/);
        const get = lkl(cpfromfs, [...cptofsArgs, '/data', `${join(dir, 'round-trip')}/`]);
        expectOk(get);
        expect(get.stderr).toMatch(/EXT4-fs \(lkl0\): mounted filesystem .* ro/);
        sh('diff', [join(dir, 'data'), join(dir, 'round-trip/data')]);

        mkdirSync(join(dir, 'tree/full/of/stuff'), { recursive: true });
        writeFileSync(join(dir, 'tree/data'), 'data\n');
        writeFileSync(join(dir, 'tree/full/more'), 'more\n');
        writeFileSync(join(dir, 'tree/full/of/here'), 'here\n');
        expectOk(lkl('cptofs', [...cptofsArgs, join(dir, 'tree'), '/']));
        expectOk(lkl(cpfromfs, [...cptofsArgs, '/tree', join(dir, 'round-trip')]));
        sh('diff', ['-r', join(dir, 'tree'), join(dir, 'round-trip/tree')]);
        fsck(file);
        expect(debugfsLs(file, '/')).toEqual(['data', 'lost+found', 'tree']);
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'tar', 'getfattr', 'setfattr', 'setfacl')(
    'cptofs -t ext4 -i img.ext4 dir /, cpfromfs -t ext4 -i img.ext4 / out, fs2tar -t ext4 img.ext4 out.tar: everything kept',
    () =>
      inScratch('lkl-examples', (dir) => {
        const src = join(dir, 'rootfs');
        makeRichTree(src);
        const img = ext4(dir, 'img.ext4', 256);
        expectOk(lkl('cptofs', ['-t', 'ext4', '-i', 'img.ext4', 'rootfs', '/'], { cwd: dir }));
        fsck(img);
        const want = snapshot(src);

        // DEST is a directory the sources go into: it must exist, as in LKL.
        mkdirSync(join(dir, 'out'));
        const get = lkl('cpfromfs', ['-t', 'ext4', '-i', 'img.ext4', '/', 'out'], { cwd: dir });
        expectOk(get);
        // "/" is the image root's contents: rootfs and lost+found, not a directory "out/out".
        expect(readdirSync(join(dir, 'out')).sort()).toEqual(['lost+found', 'rootfs']);
        // Sockets are the one thing neither a host copy nor a tar archive holds.
        expect(diffTrees(want, snapshot(join(dir, 'out/rootfs')))).toEqual(['tmp/socket: missing']);

        expectOk(lkl('fs2tar', ['-t', 'ext4', 'img.ext4', 'out.tar'], { cwd: dir }));
        const names = sh('tar', ['-tf', join(dir, 'out.tar')]).stdout.split('\n');
        expect(names).toEqual(expect.arrayContaining(['./', 'lost+found/', 'rootfs/', 'rootfs/etc/hostname']));
        mkdirSync(join(dir, 'x'));
        sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '-xpf', join(dir, 'out.tar'), '-C', join(dir, 'x')]);
        expect(diffTrees(want, snapshot(join(dir, 'x/rootfs')))).toEqual(['tmp/socket: missing']);
        fsck(img);
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'debugfs')(
    "sources: a pattern as the last component ('dir/*.conf'), '.' and '/' for a directory's contents, DEST an existing directory",
    () =>
      inScratch('lkl-patterns', (dir) => {
        const img = ext4(dir);
        const conf = join(dir, 'dir');
        mkdirSync(join(conf, 'sub'), { recursive: true });
        for (const f of ['a.conf', 'b.conf', '.hidden.conf', 'c.txt', 'sub/d.conf']) writeFileSync(join(conf, f), f);
        mkdirSync(join(dir, 'skel/etc'), { recursive: true });
        mkdirSync(join(dir, 'skel/data'));
        expectOk(lkl('cptofs', ['-t', 'ext4', '-i', img, `${join(dir, 'skel')}/.`, '/']));

        // fnmatch without FNM_PERIOD, as LKL calls it: "*" matches a leading dot too.
        expectOk(lkl('cptofs', ['-i', img, '-t', 'ext4', 'dir/*.conf', '/etc'], { cwd: dir }));
        expect(debugfsLs(img, '/etc')).toEqual(['.hidden.conf', 'a.conf', 'b.conf']);
        // "." is the contents of the current directory.
        expectOk(lkl('cptofs', ['-i', img, '-t', 'ext4', '.', '/data'], { cwd: conf }));
        expect(debugfsLs(img, '/data')).toEqual(['.hidden.conf', 'a.conf', 'b.conf', 'c.txt', 'sub']);
        fsck(img);

        const out = join(dir, 'out');
        mkdirSync(out);
        expectOk(lkl('cpfromfs', ['-t', 'ext4', '-i', img, '/etc/[ab].conf', '/data/sub', out]));
        expect(readdirSync(out).sort()).toEqual(['a.conf', 'b.conf', 'sub']);
        expect(readFileSync(join(out, 'sub/d.conf'), 'utf8')).toBe('sub/d.conf');
        mkdirSync(join(dir, 'all'));
        expectOk(lkl('cpfromfs', ['-t', 'ext4', '-i', img, '/', join(dir, 'all')]));
        expect(readdirSync(join(dir, 'all')).sort()).toEqual(['data', 'etc', 'lost+found']);

        // What matches nothing, or a DEST that is no directory: usage errors; the image untouched.
        const before = sha256(readFileSync(img));
        const none = lkl('cptofs', ['-t', 'ext4', '-i', img, 'dir/*.nothing', '/etc'], { cwd: dir });
        expect(none.status).toBe(2);
        expect(none.stderr).toMatch(/no match for dir\/\*\.nothing/);
        const noneOut = lkl('cpfromfs', ['-t', 'ext4', '-i', img, '/etc/*.nothing', out]);
        expect(noneOut.status).toBe(2);
        expect(noneOut.stderr).toMatch(/no match for \/etc\/\*\.nothing/);
        expect(sha256(readFileSync(img))).toBe(before);
        const noDir = lkl('cptofs', ['-t', 'ext4', '-i', img, 'dir/a.conf', '/missing'], { cwd: dir });
        expect(noDir.status).toBe(2);
        expect(noDir.stderr).toMatch(/destination \/missing does not exist in the image/);
        const noHostDir = lkl('cpfromfs', ['-t', 'ext4', '-i', img, '/etc/a.conf', join(dir, 'missing')]);
        expect(noHostDir.status).toBe(2);
        expect(noHostDir.stderr).toMatch(/destination .*missing does not exist/);
        fsck(img);
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'debugfs', 'tar')(
    '-o, -g, -s and -m, short and long: owner, group and SELinux context on everything copied; fs2tar -s lists the contexts',
    () =>
      inScratch('lkl-owners', (dir) => {
        const img = ext4(dir);
        const tree = join(dir, 'tree');
        mkdirSync(join(tree, 'etc'), { recursive: true });
        writeFileSync(join(tree, 'etc/hostname'), 'box\n');
        symlinkSync('hostname', join(tree, 'etc/name'));
        const context = 'system_u:object_r:etc_t:s0';
        expectOk(lkl('cptofs', ['-t', 'ext4', '-i', img, '-o', '1234', '-g', '5678', '-s', context, tree, '/']));
        // Long forms, after the arguments: argp takes options anywhere, as getopt does.
        writeFileSync(join(dir, 'long'), 'long\n');
        const longForms = ['--filesystem-type', 'ext4', '--owner=42', '--group', '43', `--selinux=${context}`, '--mb=64'];
        expectOk(lkl('cptofs', ['long', '/tree', ...longForms, '--enable-printk', '--filesystem-image', img], { cwd: dir }));
        // "--" ends the options: a source may begin with "-", and nothing after it is an option.
        writeFileSync(join(dir, '-dash'), 'dash\n');
        expectOk(lkl('cptofs', ['-t', 'ext4', '-i', img, '-o', '42', '-g', '43', '-s', context, '--', '-dash', '/tree'], { cwd: dir }));
        const late = lkl('cptofs', ['-t', 'ext4', '--', '-dash', '/tree', `--filesystem-image=${img}`], { cwd: dir });
        expect(late.status).toBe(2);
        expect(late.stderr).toMatch(/^cptofs: give the image with -i IMAGE/);
        fsck(img);

        const paths = ['/tree', '/tree/etc', '/tree/etc/hostname', '/tree/etc/name', '/tree/long', '/tree/-dash'];
        const got = debugfsStat(img, paths, dir);
        for (const p of paths) {
          const owner = p === '/tree/long' || p === '/tree/-dash' ? [42, 43] : [1234, 5678];
          expect([p, got.get(p)?.uid, got.get(p)?.gid]).toEqual([p, ...owner]);
          expect([p, got.get(p)?.xattrs.get('security.selinux')]).toEqual([p, `"${context}"`]);
        }

        // -m reached the kernel: its memory, as it reports it with -p.
        const out = join(dir, 'out');
        mkdirSync(out);
        const owner = (path: string) => [lstatSync(path).uid, lstatSync(path).gid];
        const mem = lkl('cpfromfs', ['-p', '-m', '64', '-t', 'ext4', '-i', img, '/tree/etc', out]);
        expectOk(mem);
        expect(mem.stderr).toMatch(/Memory: \d+K\/65536K available/);
        // Owners are the image's as root (cp -a's rule), or -o/-g's; -s is ignored, as in LKL.
        if (isRoot) expect(owner(join(out, 'etc/hostname'))).toEqual([1234, 5678]);
        expectOk(lkl('cpfromfs', ['-o', '7', '-g', '8', '-s', 'ignored', '-t', 'ext4', '-i', img, '/tree/long', out]));
        expect(owner(join(out, 'long'))).toEqual(isRoot ? [7, 8] : [process.getuid?.(), process.getgid?.()]);

        // fs2tar -s: one line per labelled entry (the root and lost+found, made by mkfs, have none).
        expectOk(lkl('fs2tar', ['-s', join(dir, 'contexts'), '-t', 'ext4', img, join(dir, 'out.tar')]));
        const lines = readFileSync(join(dir, 'contexts'), 'utf8').split('\n').filter(Boolean).sort();
        expect(lines).toEqual(paths.map((p) => `${p} ${context}`).sort());
        expect(sh('tar', ['-tf', join(dir, 'out.tar')]).stdout).toContain('tree/etc/hostname');
      }),
  );

  need('mkfs.ext4', 'e2fsck', 'debugfs', 'sfdisk', 'tar')(
    '-P 2: partition 2 of a GPT image written, read and archived; partition 1 untouched',
    () =>
      inScratch('lkl-partition', (dir) => {
        const img = join(dir, 'disk.img');
        sh('truncate', ['-s', '64M', img]);
        sh('sfdisk', ['-q', img], { input: 'label: gpt\nsize=16M\nsize=40M\n' });
        const parts = (JSON.parse(sh('sfdisk', ['-J', img]).stdout) as { partitiontable: { partitions: { start: number; size: number }[] } })
          .partitiontable.partitions;
        const [p1, p2] = parts as [{ start: number; size: number }, { start: number; size: number }];
        writeFileSync(join(dir, 'p1'), Buffer.alloc(p1.size * 512, 0x5a));
        sh('dd', [`if=${join(dir, 'p1')}`, `of=${img}`, 'bs=512', `seek=${p1.start}`, 'conv=notrunc', 'status=none']);
        sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${p2.start * 512}`, img, `${(p2.size * 512) / 1024}k`]);
        const partition1 = () => sha256(readFileSync(img).subarray(p1.start * 512, (p1.start + p1.size) * 512));
        const before = partition1();

        mkdirSync(join(dir, 'tree/sub'), { recursive: true });
        writeFileSync(join(dir, 'tree/sub/file'), 'in partition 2\n');
        expectOk(lkl('cptofs', ['-t', 'ext4', '-i', img, '-P', '2', join(dir, 'tree'), '/']));
        // No -t: the type is read from partition 2.
        mkdirSync(join(dir, 'out'));
        expectOk(lkl('cpfromfs', ['-P', '2', '-i', img, '/tree', join(dir, 'out')]));
        expect(readFileSync(join(dir, 'out/tree/sub/file'), 'utf8')).toBe('in partition 2\n');
        expectOk(lkl('fs2tar', ['-P', '2', img, join(dir, 'p2.tar')]));
        expect(sh('tar', ['-tf', join(dir, 'p2.tar')]).stdout.split('\n')).toEqual(
          expect.arrayContaining(['tree/', 'tree/sub/', 'tree/sub/file']),
        );

        expect(partition1()).toBe(before);
        const p2img = join(dir, 'p2.img');
        sh('dd', [`if=${img}`, `of=${p2img}`, 'bs=512', `skip=${p2.start}`, `count=${p2.size}`, 'status=none']);
        fsck(p2img);
        expect(debugfsLs(p2img, '/tree/sub')).toEqual(['file']);
      }),
  );
});

describe('shell patterns', () => {
  need('python3')("match as glibc's fnmatch(3) with no flags matches in the C locale", () => {
    const patterns = ['*', '*.conf', '.*', '?', 'a?c', '[abc]*', '[!a]*', '[^a]*', '[]]', '[]a]*', '[!]]*', '[a-c]x', '[a-]', '[[:digit:]]*',
      '[[:alpha:][:digit:]]', '[[:bogus:]]', '[', 'a[', '\\*', 'a\\', '\\a', '*a*b*', '[\\]]', '[z-a]', 'x*y', '[[:upper:]]?', '*.[ch]',
      '[.]*', '[a-c-e]', '[[:punct:]]', '*\xe9', '?\xe9', '[\xe0-\xff]*'];
    const names = ['', 'a', 'abc', 'a.conf', '.x.conf', '.', 'b', ']', 'ax', 'cx', '-', '5x', 'Q', '[', 'a[', '*', 'a\\', 'aXbYb', 'xay',
      'x\\y', 'Zz', 'f.c', 'f.h', '.hidden', 'd', 'e', '!', 'caf\xe9', '\xe9', '\xff\xfe'];
    // Bytes both ways (latin1 keeps \xe9 a single byte that is not UTF-8).
    const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');
    const py = [
      'import ctypes, json, sys',
      'f = ctypes.CDLL(None).fnmatch',
      'd = json.load(sys.stdin)',
      "print(json.dumps([[f(bytes.fromhex(p), bytes.fromhex(n), 0) == 0 for n in d['n']] for p in d['p']]))",
    ].join('\n');
    const r = sh('python3', ['-c', py], { input: JSON.stringify({ p: patterns.map(hex), n: names.map(hex) }) });
    const glibc = JSON.parse(r.stdout) as boolean[][];
    const differ: string[] = [];
    patterns.forEach((p, i) => {
      const match = fnmatcher(Buffer.from(p, 'latin1'));
      names.forEach((n, j) => {
        if (match(Buffer.from(n, 'latin1')) !== glibc[i]?.[j]) differ.push(`${JSON.stringify(p)} ${JSON.stringify(n)}: glibc ${glibc[i]?.[j]}`);
      });
    });
    expect(differ).toEqual([]);
    // The table is not trivial: both outcomes occur.
    expect(glibc.flat().filter(Boolean).length).toBeGreaterThan(50);
    expect(glibc.flat().filter((m) => !m).length).toBeGreaterThan(50);
  });
});
