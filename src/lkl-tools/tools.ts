/**
 * cptofs, cpfromfs and fs2tar as LKL's tools/lkl programs of those names
 * are called, so that scripts written for them run unchanged: their
 * options (short and long) and arguments are read here and handed to
 * lklfs's own commands of the same names (src/commands/), which do the
 * work as lklfs does it: full fidelity, clean unmount, lklfs's messages
 * and exit statuses.
 */
import { basename } from 'node:path';
import { main } from '../cli/main.js';
import { UsageError } from '../errors.js';
import { getopt, optionHelp, type CommandLine, type OptionSpec } from './getopt.js';

export type ToolName = 'cptofs' | 'cpfromfs' | 'fs2tar';

const HELP: OptionSpec[] = [
  { short: '?', long: 'help', help: 'this help (-h too)' },
  { short: 'h', long: 'help', help: '', hidden: true },
  { long: 'usage', help: 'this help' },
];

const TYPE: OptionSpec = {
  short: 't',
  long: 'filesystem-type',
  value: 'TYPE',
  help: 'ext4, btrfs, xfs, vfat, ... (default: read from the image)',
};
const PARTITION: OptionSpec = {
  short: 'P',
  long: 'partition',
  value: 'N',
  help: 'MBR or GPT partition N of the image (default 0: the whole image)',
};
const PRINTK: OptionSpec = { short: 'p', long: 'enable-printk', help: "show the kernel's messages on stderr" };

function copyOptions(tool: 'cptofs' | 'cpfromfs'): OptionSpec[] {
  const whose = tool === 'cptofs' ? 'source' : 'image';
  return [
    TYPE,
    { short: 'i', long: 'filesystem-image', value: 'IMAGE', help: 'the filesystem image (a plain file); mandatory' },
    PARTITION,
    { short: 'o', long: 'owner', value: 'UID', help: `owner of every entry copied (default: the ${whose}'s)` },
    { short: 'g', long: 'group', value: 'GID', help: `group of every entry copied (default: the ${whose}'s)` },
    PRINTK,
    tool === 'cptofs'
      ? { short: 's', long: 'selinux', value: 'CONTEXT', help: 'SELinux context (security.selinux) of every entry copied' }
      : { short: 's', long: 'selinux', value: 'CONTEXT', help: "accepted and ignored, as LKL's cpfromfs ignores it" },
    { short: 'm', long: 'mb', value: 'MB', help: "the kernel's memory in MiB (default 64; at least 32)" },
    ...HELP,
  ];
}

const FS2TAR_OPTIONS: OptionSpec[] = [
  PRINTK,
  PARTITION,
  TYPE,
  {
    short: 's',
    long: 'selinux-contexts',
    value: 'FILE',
    help: 'also write a "PATH CONTEXT" line to FILE for each entry with an SELinux label',
  },
  ...HELP,
];

const copyNotes = (tool: string) => `Differences from LKL's ${tool}: the copy is lklfs's, as cp -a makes it:
every kind of entry (devices, fifos, sockets and hard links too), owners
(the source's unless -o/-g; LKL's makes them root's), modes, nanosecond
times and extended attributes (SELinux labels, capabilities, ACLs); -t
may be left out; a SOURCE that matches nothing is an error; errors are
one line and the exit status is 1 (failed) or 2 (bad usage); the
filesystem is always left cleanly unmounted. More: lklfs ${tool} --help.`;

const TEXT: Record<ToolName, { usage: string; about: string; notes: string }> = {
  cptofs: {
    usage: 'cptofs [OPTION...] -i IMAGE SOURCE... DEST',
    about: `Copy host files into a filesystem image. Each SOURCE is copied into the
image directory DEST, which must exist. The last component of a SOURCE
may be a shell pattern, matched in its directory ('etc/*.conf', quoted);
a SOURCE made only of "." and "/", or "dir/.", copies a directory's
contents.`,
    notes: copyNotes('cptofs'),
  },
  cpfromfs: {
    usage: 'cpfromfs [OPTION...] -i IMAGE SOURCE... DEST',
    about: `Copy files from a filesystem image to the host. Each SOURCE, a path in
the image, is copied into the host directory DEST, which must exist. The
last component of a SOURCE may be a shell pattern, matched in its image
directory ('/etc/*.conf', quoted); "/" (or any SOURCE made only of "."
and "/"), or "dir/.", copies a directory's contents. The image is only
read. Owners are kept when run as root (or set with -o/-g); device nodes
need root and are otherwise skipped with a warning.`,
    notes: copyNotes('cpfromfs'),
  },
  fs2tar: {
    usage: 'fs2tar [OPTION...] IMAGE ARCHIVE',
    about: `Write a filesystem image's whole tree to ARCHIVE ("-": standard output)
as a POSIX (pax) tar archive. The image is only read.`,
    notes: `Differences from LKL's fs2tar: the archive is lklfs's (lklfs fs2tar --help):
names relative to "./" ("etc/passwd") where LKL's begin with "/", the
root directory included, hard links, ACLs and files with holes as GNU tar
has them, nanosecond times; -t may be left out; errors are one line and
the exit status is 1 (failed) or 2 (bad usage).`,
  },
};

function help(tool: ToolName): string {
  const { usage, about, notes } = TEXT[tool];
  const options = optionHelp(tool === 'fs2tar' ? FS2TAR_OPTIONS : copyOptions(tool));
  return `Usage: ${usage}\n${about}\n\n${options}\n\n${notes}\n`;
}

/** A count or id given to an option: a decimal number, at least min. */
function number(cl: CommandLine, long: string, letter: string, min = 0): string | undefined {
  const v = cl.options.get(long);
  if (v === undefined || v === true) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`-${letter} takes a whole number${min ? ` of at least ${min}` : ''}, not "${v}"`);
  return String(Number(v));
}

function value(cl: CommandLine, long: string): string | undefined {
  const v = cl.options.get(long);
  return typeof v === 'string' ? v : undefined;
}

/** lklfs's flags for the options every tool has. */
function common(cl: CommandLine): string[] {
  const out: string[] = [];
  const type = value(cl, 'filesystem-type');
  if (type !== undefined) out.push(`--filesystem-type=${type}`);
  const part = number(cl, 'partition', 'P');
  if (part !== undefined) out.push(`--partition=${part}`);
  if (cl.options.has('enable-printk')) out.push('--printk');
  return out;
}

/** The lklfs command line that does what the tool's command line asks. */
function translate(tool: ToolName, cl: CommandLine): string[] {
  if (tool === 'fs2tar') {
    if (cl.args.length !== 2)
      throw new UsageError(cl.args.length < 2 ? 'give the IMAGE and the ARCHIVE' : `one IMAGE and one ARCHIVE, not ${cl.args.length} arguments`);
    const [image, archive] = cl.args as [string, string];
    const out = ['fs2tar', `--filesystem-image=${image}`, ...common(cl)];
    const contexts = value(cl, 'selinux-contexts');
    if (contexts !== undefined) out.push(`--selinux-contexts=${contexts}`);
    return [...out, '--', archive];
  }
  const image = value(cl, 'filesystem-image');
  if (image === undefined) throw new UsageError('give the image with -i IMAGE');
  if (cl.args.length < 2) throw new UsageError('give at least one SOURCE and a DEST');
  const out = [tool, `--filesystem-image=${image}`, ...common(cl), '--glob', '--into'];
  const owner = number(cl, 'owner', 'o');
  if (owner !== undefined) out.push(`--owner=${owner}`);
  const group = number(cl, 'group', 'g');
  if (group !== undefined) out.push(`--group=${group}`);
  const mem = number(cl, 'mb', 'm', 32);
  if (mem !== undefined) out.push(`--mem=${mem}`);
  const selinux = value(cl, 'selinux');
  if (tool === 'cptofs' && selinux !== undefined) out.push(`--selinux=${selinux}`);
  return [...out, '--', ...cl.args];
}

/**
 * cptofs or cpfromfs, by the name the program was run as: LKL builds one
 * program and makes cpfromfs a link to it (its tests make such links
 * too), so either of ours answers to both names. Any other name: fallback.
 */
export function copyToolCalled(program: string, fallback: 'cptofs' | 'cpfromfs'): 'cptofs' | 'cpfromfs' {
  const name = basename(program);
  if (name.includes('cptofs')) return 'cptofs';
  if (name.includes('cpfromfs')) return 'cpfromfs';
  return fallback;
}

/** Runs tool with its command line: help, a usage error (exit 2), or the lklfs command. */
export async function runTool(tool: ToolName, argv: string[]): Promise<void> {
  let args: string[];
  try {
    const cl = getopt(argv, tool === 'fs2tar' ? FS2TAR_OPTIONS : copyOptions(tool));
    if (cl.options.has('help') || cl.options.has('usage')) {
      process.stdout.write(help(tool));
      return;
    }
    args = translate(tool, cl);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${tool}: ${e.message}\nTry '${tool} --help' for more information.\n`);
    process.exitCode = 2;
    return;
  }
  await main(args);
}
