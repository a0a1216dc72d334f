/**
 * A fresh Debian 12 machine has its essential and required packages, Node
 * and npm, nothing more: every other command the build or the scripts run
 * must be installed by scripts/setup.sh, or the first README command stops
 * halfway (as it once did, in the kernel's headers_install, for rsync).
 *
 * The commands come from two places: the scripts themselves
 * (shell-commands.ts reads them) and scripts/build-commands.txt, what a
 * cold setup really executed, recorded with strace (the kernel's Makefiles
 * run more than any script names). Which package a command belongs to is
 * asked of dpkg on this machine.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { haveTool, repoRoot } from '../kernel/harness.js';
import { commandsOf } from './shell-commands.js';

const read = (rel: string) => readFileSync(join(repoRoot, rel), 'utf8');
const setupScript = read('scripts/setup.sh');

/** setup.sh's NAME=( COMMAND PACKAGE ... ) list as a map. */
function toolList(name: string): Map<string, string> {
  const m = new RegExp(`^${name}=\\(\\n([^)]*)\\)`, 'm').exec(setupScript);
  if (!m) throw new Error(`scripts/setup.sh has no ${name}=( ... ) list`);
  const words = (m[1] as string).split(/\s+/).filter(Boolean);
  const tools = new Map<string, string>();
  for (let i = 0; i + 1 < words.length; i += 2) tools.set(words[i] as string, words[i + 1] as string);
  return tools;
}

/** Recorded commands, with the reason an entry may stay out of setup's list. */
function recorded(): { command: string; note?: string }[] {
  return read('scripts/build-commands.txt')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [command, ...note] = l.trim().split(/\s+/);
      return { command: command as string, note: note.length ? note.join(' ') : undefined };
    });
}

/** Debian's default PATH: where a fresh machine finds commands. */
const DEBIAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The package that owns exactly this file (dpkg -S matches substrings, and reports diversions). */
function ownerOf(file: string): string | undefined {
  const r = spawnSync('dpkg', ['-S', file], { encoding: 'utf8' });
  for (const line of r.stdout.split('\n')) {
    // "pkg: /path", "pkg:amd64: /path" (multi-arch), "a, b: /path" (shared).
    const m = /^(.+?): (\/.*)$/.exec(line);
    if (m && !line.startsWith('diversion ') && m[2] === file) return (m[1] as string).split(',')[0]?.trim().replace(/:[a-z0-9]+$/, '');
  }
  return undefined;
}

/** The package a command on Debian's PATH comes from, through symlinks and alternatives. */
function packageOf(command: string): string | undefined {
  // Given by its path: a library's header, GNU time (not the shell's keyword).
  if (command.startsWith('/')) return ownerOf(command);
  const found = spawnSync('bash', ['-c', 'type -P "$1"', 'bash', command], { encoding: 'utf8', env: { PATH: DEBIAN_PATH } });
  let path = found.stdout.trim();
  for (let hops = 0; path.startsWith('/') && hops < 8; hops++) {
    // usrmerge: dpkg knows /bin/x where PATH finds /usr/bin/x.
    const owner = ownerOf(path) ?? ownerOf(path.replace(/^\/usr\/(s?bin)\//, '/$1/'));
    if (owner) return owner;
    if (!lstatSync(path).isSymbolicLink()) break;
    const next = readlinkSync(path);
    path = isAbsolute(next) ? next : join(dirname(path), next);
  }
  return undefined;
}

/** Packages every Debian system has: essential and required priority. */
function basePackages(): Set<string> {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${Essential}\t${Priority}\n'], { encoding: 'utf8' });
  return new Set(
    r.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([, essential, priority]) => essential === 'yes' || priority === 'required')
      .map(([name]) => name as string),
  );
}

/** Given on the machine besides Debian's base: Node and its npm. */
const NODE = new Set(['node', 'npm', 'npx']);

const onDebian = haveTool('dpkg-query');

describe('host tools: what the build runs, setup installs', () => {
  const buildTools = toolList('build_tools');
  const testTools = toolList('test_tools');
  const setupPackages = new Set([...buildTools.values(), ...testTools.values()]);

  test('the script reader finds commands where a shell runs them, and only there', () => {
    const found = commandsOf(
      [
        'set -eu',
        'list=(',
        '\tnotacommand pkg',
        ')',
        'helper() { # helper ARG',
        '\tgrep -q x "$1" && sed -n p || awk 1 | sort -u',
        '}',
        'x=$(readlink -f "$0") # rsync in a comment',
        'find . -print0 | xargs -0 sha256sum >/dev/null 2>&1',
        'for f in a b; do cut -c1 "$f"; done',
        'case "$v" in',
        '6.*) ;;',
        '*) rm -rf "$t"; exit 1 ;;',
        'esac',
        'command -v mkfs.foo >/dev/null || helper y',
        'cat <<EOF',
        'gcc would be text here',
        'EOF',
        '"$cc" -c x.c',
      ].join('\n'),
    );
    expect([...found].sort()).toEqual(['awk', 'cat', 'cut', 'find', 'grep', 'readlink', 'rm', 'sed', 'sha256sum', 'sort']);
  });

  (onDebian ? test : test.skip)('every command setup checks for comes from the package it names', () => {
    const wrong: string[] = [];
    for (const [command, pkg] of [...buildTools, ...testTools]) {
      const owner = packageOf(command);
      if (!owner && !haveTool(command)) continue; // not installed here: nothing to ask dpkg
      // binutils' programs live in binutils-x86-64-linux-gnu, a dependency.
      if (owner !== pkg && !owner?.startsWith(`${pkg}-`) && !(pkg === 'gcc' && owner === 'gcc-12') && !(pkg === 'g++' && owner === 'g++-12'))
        wrong.push(`${command}: setup says ${pkg}, dpkg says ${owner ?? 'no package'}`);
    }
    expect(wrong).toEqual([]);
  });

  /** Of commands (and where each is used), those neither setup nor Debian's base system provides. */
  const notInstalled = (commands: Map<string, string>): string[] => {
    const base = basePackages();
    return [...commands]
      .filter(([command]) => !NODE.has(command) && !buildTools.has(command) && !testTools.has(command))
      .map(([command, where]) => ({ command, where, pkg: packageOf(command) }))
      .filter(({ pkg }) => !pkg || !(base.has(pkg) || setupPackages.has(pkg)))
      .map(({ command, where, pkg }) => `${command} (used in ${where}; package ${pkg ?? 'unknown here'}) is not installed by scripts/setup.sh`);
  };

  (onDebian ? test : test.skip)('every command the kernel build and our scripts run is installed by setup or part of every Debian', () => {
    const used = new Map<string, string>();
    for (const { command, note } of recorded()) {
      if (note === 'optional') continue;
      const via = /^via (\S+)$/.exec(note ?? '');
      if (via) {
        expect(setupPackages).toContain(via[1]);
        continue;
      }
      used.set(command, 'a cold build (scripts/build-commands.txt)');
    }
    const shellScripts = ['scripts', 'lkl-build'].flatMap((d) => readdirSync(join(repoRoot, d)).filter((f) => f.endsWith('.sh')).map((f) => `${d}/${f}`));
    for (const script of [...shellScripts, '.ci/run'])
      for (const command of commandsOf(read(script))) used.set(command, script);

    expect(notInstalled(used)).toEqual([]);
  });

  (onDebian ? test : test.skip)('every host tool the tests, the engine and the benchmarks call is installed by setup or part of every Debian', () => {
    const called = new Map<string, string>();
    // sh(TOOL, ...), haveTool(TOOL), spawnSync(TOOL, ...), and the
    // engine's table of mkfs tools and checkers: { cmd: TOOL, ... }.
    const call = /\b(?:sh|haveTool|spawnSync|spawn|need)\(\s*'([^'\s]+)'|\bcmd: '([^'\s]+)'/g;
    for (const dir of ['test', 'src', 'bench', 'lkl-build/bench'])
      for (const file of readdirSync(join(repoRoot, dir), { recursive: true, encoding: 'utf8' }))
        if (/\.(ts|mjs|js)$/.test(file))
          for (const m of read(join(dir, file)).matchAll(call)) called.set(basename((m[1] ?? m[2]) as string), join(dir, file));
    expect(notInstalled(called)).toEqual([]);
  });

  // Run as a user who cannot install anything, with a PATH that has every
  // command but flex: setup must stop at once and name the package. The
  // script runs from a copy in a directory of its own, which that user can
  // read wherever the checkout is (under /root, it cannot).
  const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
  test('setup stops before the kernel build when a build tool is missing, naming its package', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lklfs-setup-'));
    try {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      for (const d of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
        let names: string[];
        try {
          names = readdirSync(d);
        } catch {
          continue;
        }
        for (const name of names)
          if (name !== 'flex' && !existsSync(join(bin, name))) symlinkSync(join(d, name), join(bin, name));
      }
      mkdirSync(join(dir, 'scripts'));
      copyFileSync(join(repoRoot, 'scripts/setup.sh'), join(dir, 'scripts/setup.sh'));
      chmodSync(dir, 0o755);
      const argv = [...asNobody, 'bash', join(dir, 'scripts/setup.sh')];
      const r = spawnSync(argv[0] as string, argv.slice(1), {
        encoding: 'utf8',
        env: { PATH: bin, HOME: dir, LKL_CACHE_DIR: join(dir, 'cache') },
      });
      expect(r.stderr).toMatch(/setup: the build needs these packages: apt-get install flex\n/);
      expect(r.status).toBe(1);
      expect(r.stderr).not.toMatch(/lkl-build:|npm/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
