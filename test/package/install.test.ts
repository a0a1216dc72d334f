/**
 * The npm package as a user gets it: `npm pack` (prepack builds dist/, the
 * prebuilt addon and the oclif manifest), then `npm install` of the tarball
 * into an empty directory, and the installed command run on an image.
 * Installs happen outside the checkout (os.tmpdir()), so that nothing the
 * package lacks can be found in the checkout's node_modules instead.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { haveTool, repoRoot, sh } from '../kernel/harness.js';

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const prebuilt = 'native/prebuilds/linux-x64/node.napi.glibc.node';

function check(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${what}: exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/**
 * What npm, its lifecycle scripts and lklfs may see of the environment:
 * with the way to the registry (proxies, and the certificates of one that
 * re-signs TLS, NODE_EXTRA_CA_CERTS: without it npm retried until the
 * test timed out in a fresh chroot behind such a proxy).
 */
function npmEnv(path: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const passed = Object.entries(process.env).filter(([k]) =>
    /^(home|https?_proxy|no_proxy|node_extra_ca_certs|npm_config_(cache|userconfig|registry|proxy|https_proxy|ca|cafile|strict_ssl)|lkl_cache_dir|xdg_cache_home|lkl_kernel_tarball)$/i.test(k),
  );
  return { ...Object.fromEntries(passed), PATH: path, ...extra };
}

const onX64 = process.platform === 'linux' && process.arch === 'x64';
const runnable = onX64 && haveTool('mkfs.ext4') && haveTool('dpkg-query');

(runnable ? describe : describe.skip)(
  `npm package (${runnable ? 'linux-x64' : 'skipped: needs linux-x64, mkfs.ext4 and dpkg-query'})`,
  () => {
    let dir: string;
    let tarball: string;
    let image: string;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'lklfs-package-'));
      check(
        spawnSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' }),
        'npm pack',
      );
      tarball = join(dir, `lklfs-${version}.tgz`);
      // A fresh ext4 image with a little in it, made before PATH is narrowed.
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'etc'), { recursive: true });
      writeFileSync(join(tree, 'etc/hostname'), 'packaged\n');
      symlinkSync('etc/hostname', join(tree, 'name'));
      image = join(dir, 'fs.img');
      sh('mkfs.ext4', ['-q', '-F', '-d', tree, image, '8M']);
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** node, npm, npx, a shell and coreutils: a PATH with no compiler, make or python. */
    function bareBin(): string {
      const bin = join(dir, 'bare-bin');
      if (existsSync(bin)) return bin;
      mkdirSync(bin);
      const coreutils = sh('dpkg-query', ['-L', 'coreutils'])
        .stdout.split('\n')
        .filter((f) => /^\/(usr\/)?s?bin\/[^/]+$/.test(f));
      const which = (cmd: string) => sh('sh', ['-c', `command -v ${cmd}`]).stdout.trim();
      for (const file of [...coreutils, which('node'), which('npm'), which('npx'), '/bin/sh'])
        symlinkSync(file, join(bin, basename(file)));
      for (const tool of ['gcc', 'cc', 'g++', 'make', 'python3', 'bash', 'node-gyp'])
        expect(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env: { PATH: bin } }).status).not.toBe(0);
      return bin;
    }

    /** npm install of the tarball into a new, otherwise empty directory. */
    function install(name: string, path: string, extra: NodeJS.ProcessEnv = {}, timeout = 120_000) {
      const app = join(dir, name);
      mkdirSync(app);
      const r = spawnSync(
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball],
        { cwd: app, env: npmEnv(path, extra), encoding: 'utf8', timeout },
      );
      return { app, pkg: join(app, 'node_modules/lklfs'), output: check(r, 'npm install') + r.stderr };
    }

    test('the tarball carries dist/, the prebuilt addon, the manifest and the sources to build from; no tests or caches', () => {
      const files = sh('tar', ['-tzf', tarball])
        .stdout.split('\n')
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, ''));
      for (const f of [
        'package.json',
        'LICENSE',
        'README.md',
        'bin/run.js',
        'dist/cli/main.js',
        'dist/cli/commands/ls.js',
        'dist/src/commands/ls.js',
        'dist/src/kernel/binding.js',
        'oclif.manifest.json',
        prebuilt,
        'native/binding.gyp',
        'native/src/addon.cc',
        'lkl-build/build.sh',
        'lkl-build/fetch-source.sh',
        'lkl-build/arch/lkl/Kconfig',
        'lkl-build/host/posix-host.c',
        'scripts/install.mjs',
      ])
        expect(files).toContain(f);
      const unwanted = files.filter((f) =>
        /^(src|test|fixtures|bench|node_modules|dist\/test|native\/build|lkl-build\/(out|tests|bench|examples))\/|\.ts$/.test(f),
      );
      expect(unwanted).toEqual([]);
    });

    test('the prebuilt addon needs nothing but the C and C++ runtimes (ldd)', () => {
      const out = join(dir, 'unpacked');
      mkdirSync(out);
      sh('tar', ['-xzf', tarball, '-C', out]);
      const ldd = sh('ldd', [join(out, 'package', prebuilt)]).stdout;
      expect(ldd).not.toMatch(/not found/);
      const libs = ldd
        .split('\n')
        .map((l) => l.trim().split(/\s/)[0])
        .filter((l): l is string => Boolean(l))
        .map((l) => basename(l));
      const runtimes = ['linux-vdso.so.1', 'libc.so.6', 'libm.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2'];
      expect(libs.filter((l) => !runtimes.includes(l))).toEqual([]);
      expect(libs).toContain('libc.so.6');
    });

    test('installed with no compiler on PATH, the prebuilt addon lists an image; nothing is built', () => {
      const bin = bareBin();
      // npm runs node-gyp through $npm_config_node_gyp: this one leaves a mark.
      const mark = join(dir, 'node-gyp-ran');
      const fakeGyp = join(dir, 'fake-node-gyp.js');
      writeFileSync(fakeGyp, `require('fs').writeFileSync(${JSON.stringify(mark)}, 'ran'); process.exit(1);\n`);
      const { app, pkg } = install('bare', bin, { npm_config_node_gyp: fakeGyp });

      expect(existsSync(mark)).toBe(false);
      expect(existsSync(join(pkg, 'native/build'))).toBe(false);
      expect(existsSync(join(pkg, 'lkl-build/out'))).toBe(false);
      const loads = spawnSync(
        'node',
        ['-p', `require('node-gyp-build').path(${JSON.stringify(join(pkg, 'native'))})`],
        { cwd: pkg, env: npmEnv(bin), encoding: 'utf8' },
      );
      expect(check(loads, 'node-gyp-build').trim()).toBe(join(pkg, prebuilt));

      const run = (args: string[]) =>
        check(spawnSync('npx', ['lklfs', ...args], { cwd: app, env: npmEnv(bin), encoding: 'utf8' }), `lklfs ${args.join(' ')}`);
      expect(run(['ls', '-i', image, '/'])).toBe('etc\nlost+found\nname\n');
      expect(run(['cat', '-i', image, '/name'])).toBe('packaged\n');
      expect(run(['--version'])).toMatch(new RegExp(`^lklfs/${version.replace(/\./g, '\\.')} linux-x64 node-v`));

      // LKL's commands come with it (package.json's bin).
      const lkl = (tool: string, args: string[]) =>
        check(spawnSync('npx', [tool, ...args], { cwd: app, env: npmEnv(bin), encoding: 'utf8' }), `${tool} ${args.join(' ')}`);
      mkdirSync(join(app, 'out'));
      lkl('cpfromfs', ['-t', 'ext4', '-i', image, '/etc', join(app, 'out')]);
      expect(readFileSync(join(app, 'out/etc/hostname'), 'utf8')).toBe('packaged\n');
      lkl('fs2tar', [image, join(app, 'fs.tar')]);
      expect(sh('tar', ['-tf', join(app, 'fs.tar')]).stdout.split('\n')).toEqual(expect.arrayContaining(['etc/hostname', 'name']));
    });

    test('with no prebuilt addon for the machine (a musl C library), the install builds one from source', () => {
      // node-gyp-build takes the C library from $LIBC: the glibc prebuild no
      // longer matches. The kernel library comes from the cache npm test's
      // setup filled: the tarball carries exactly its inputs, so the key is
      // the checkout's (a timeout here rather than a cold kernel build).
      const key = basename(readlinkSync(join(repoRoot, 'lkl-build/out')));
      const { app, pkg, output } = install('from-source', process.env.PATH ?? '', { LIBC: 'musl' }, 180_000);
      expect(output).toMatch(/lklfs: no usable prebuilt addon \(No native build was found for .*libc=musl/);
      expect(output).toContain(`lkl-build: cached build ${key}`);
      expect(existsSync(join(pkg, 'native/build/Release/lklfs.node'))).toBe(true);
      const r = spawnSync('npx', ['lklfs', 'ls', '-i', image, '/etc'], { cwd: app, env: npmEnv(process.env.PATH ?? ''), encoding: 'utf8' });
      expect(check(r, 'lklfs ls')).toBe('hostname\n');
    });
  },
);

describe('npm install in the checkout', () => {
  test('builds nothing (scripts/setup.sh does): the install script needs no tool but node', () => {
    const bin = mkdtempSync(join(tmpdir(), 'lklfs-node-only-'));
    try {
      symlinkSync(process.execPath, join(bin, 'node'));
      const r = spawnSync('node', ['scripts/install.mjs'], { cwd: repoRoot, env: { PATH: bin }, encoding: 'utf8' });
      expect(check(r, 'scripts/install.mjs')).toBe('');
      expect(r.stderr).toBe('');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
