/**
 * Helpers for the command-line tests: run bin/run.js (built into dist/ by
 * `npm test`'s pretest step) in a child process, as a user would, and
 * snapshot directory trees with all the metadata the commands keep.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../kernel/harness.js';

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

const bin = join(repoRoot, 'bin/run.js');

/** Runs `lklfs args...`; input goes to its stdin. */
export function lklfs(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    input: opts.input,
    env: { ...process.env, ...opts.env },
    maxBuffer: 1 << 30,
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Like lklfs(), but async, with a hook to act on the running process. */
export function lklfsAsync(
  args: string[],
  during: (child: ReturnType<typeof spawn>) => void,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout: Buffer.concat(out), stderr: err }));
    during(child);
  });
}

/** The command succeeded; otherwise a failure that shows its stderr. */
export function expectOk(r: CliResult): void {
  if (r.status !== 0) throw new Error(`exit ${r.status} (${r.signal})\nstderr:\n${r.stderr}`);
}

export interface Node {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: bigint;
  xattrs: Record<string, string>;
  /** Paths (sorted) of the other names of a file with several links. */
  links?: string;
}

/**
 * user.*, security.* and trusted.* attributes of everything under root, as
 * hex, by path bytes (as latin1 strings): one getfattr for the whole tree,
 * whose output names are bytes as they are, except for its octal escapes
 * (a backslash is \134), so names that are not UTF-8 survive.
 */
function xattrsOfTree(root: string): Map<string, Record<string, string>> {
  const r = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '^(user|security|trusted)\\.', '-e', 'hex', '--absolute-names', root], {
    maxBuffer: 1 << 30,
  });
  const all = new Map<string, Record<string, string>>();
  let current: Record<string, string> = {};
  for (const line of r.stdout.toString('latin1').split('\n')) {
    const file = /^# file: (.*)$/.exec(line);
    if (file?.[1] !== undefined) {
      current = {};
      all.set(file[1].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), current);
      continue;
    }
    const m = /^([^#=][^=]*)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) current[m[1]] = m[2];
  }
  return all;
}

/** A name's bytes as text: UTF-8 when it is, else with \xNN escapes. */
function showName(name: Buffer): string {
  const s = name.toString('utf8');
  if (Buffer.from(s).equals(name)) return s;
  return [...name].map((c) => (c < 0x80 ? String.fromCharCode(c) : `\\x${c.toString(16)}`)).join('');
}

/**
 * Every entry under root (root itself as "."), with its metadata; file
 * contents as hashes, hard links grouped. atime is left out: reading
 * changes it. Names are read as bytes (keys show them with showName).
 */
export function snapshot(root: string, opts: { skip?: (rel: string) => boolean } = {}): Map<string, Node> {
  root = root.replace(/(.)\/+$/, '$1');
  const xattrs = xattrsOfTree(root);
  const nodes = new Map<string, Node>();
  const inodes = new Map<string, string[]>();
  const visit = (rel: string, path: Buffer) => {
    if (opts.skip?.(rel)) return;
    const st = lstatSync(path, { bigint: true });
    const kind = st.isFile()
      ? 'file'
      : st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? 'symlink'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : st.isFIFO()
                ? 'fifo'
                : 'socket';
    const node: Node = {
      kind,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      xattrs: xattrs.get(path.toString('latin1')) ?? {},
    };
    if (kind === 'file') {
      node.size = Number(st.size);
      node.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), rel]);
      }
    }
    if (kind === 'symlink') node.target = readlinkSync(path, { encoding: 'buffer' }).toString('hex');
    if (kind === 'char' || kind === 'block') node.rdev = st.rdev;
    if (kind === 'symlink') node.mode = 0; // symlink modes carry nothing
    nodes.set(rel, node);
    if (kind === 'dir')
      for (const name of readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare))
        visit(rel === '.' ? showName(name) : `${rel}/${showName(name)}`, Buffer.concat([path, Buffer.from('/'), name]));
  };
  visit('.', Buffer.from(root));
  for (const names of inodes.values())
    for (const n of names) (nodes.get(n) as Node).links = names.filter((x) => x !== n).sort().join(',');
  return nodes;
}

/** The differences between two snapshots, readable ("/etc/x: mode 644 != 600"). */
export function diffTrees(want: Map<string, Node>, got: Map<string, Node>): string[] {
  const out: string[] = [];
  for (const [path, w] of want) {
    const g = got.get(path);
    if (!g) {
      out.push(`${path}: missing`);
      continue;
    }
    for (const key of Object.keys(w) as (keyof Node)[]) {
      const a = JSON.stringify(w[key], (_, v) => (typeof v === 'bigint' ? v.toString() : v));
      const b = JSON.stringify(g[key], (_, v) => (typeof v === 'bigint' ? v.toString() : v));
      if (a !== b) out.push(`${path}: ${key} ${a} != ${b}`);
    }
  }
  for (const path of got.keys()) if (!want.has(path)) out.push(`${path}: unexpected`);
  return out;
}

/** POSIX ACLs under root, path -> getfattr's hex (snapshot() leaves system.* out). */
export function acls(root: string): Map<string, string> {
  const r = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '^system\\.posix_acl_', '-e', 'hex', '.'], { cwd: root, encoding: 'latin1' });
  const out = new Map<string, string>();
  for (const block of r.stdout.split('\n\n')) {
    const [head, ...attrs] = block.trim().split('\n');
    if (head?.startsWith('# file: ')) out.set(head.slice(8), attrs.sort().join('\n'));
  }
  return out;
}
