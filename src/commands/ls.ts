import * as Flags from '@oclif/core/flags';
import { ImageCommand, imageFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { entryJson, type EntryJson } from '../cli/json.js';
import { writeOut } from '../cli/output.js';
import { kindOf, modeString } from '../engine/modes.js';
import { below, children, resolve, statEntry, type ImageEntry } from '../engine/walk-image.js';

export default class Ls extends ImageCommand {
  static override summary = 'List directories in a filesystem image';
  static override description = `Lists each PATH in the image (default: its root); the image is only read.
Names are printed as the bytes they are. With --recursive, every entry
below PATH is printed with its full path, one per line, like find. With
--json, every entry with its full path and metadata (type, mode, owner,
size, links, inode, nanosecond times, link target, device numbers, the
names of its extended attributes); a symlink given as PATH is described,
not followed.`;
  static override examples = ['lklfs ls -t ext4 -i rootfs.img -l /etc', 'lklfs ls -t ext4 -i rootfs.img -R /'];
  static override strict = false;
  static override args = { paths: argument({ description: 'PATH...' }) };
  static override flags = {
    ...imageFlags,
    long: Flags.boolean({ char: 'l', description: 'mode, links, owner, group, size, modification time' }),
    recursive: Flags.boolean({ char: 'R', description: 'everything below PATH, with full paths' }),
    all: Flags.boolean({ char: 'a', description: 'include names starting with "."' }),
  };

  async run(): Promise<{ entries: EntryJson[] } | void> {
    const { argv, flags } = await this.parse(Ls);
    const paths = (argv as string[]).length ? (argv as string[]) : ['/'];
    const json = this.jsonEnabled() ? ([] as EntryJson[]) : undefined;
    // With --json every entry is given in full: its path from the root, its xattrs' names.
    const opts = { xattrs: json !== undefined };
    await this.withImage(flags, { readOnly: true }, async ({ mount, signal }) => {
      const line = async (e: ImageEntry, name: Buffer) => {
        if (json) json.push(entryJson(e));
        else await writeOut(Buffer.concat([flags.long ? longPrefix(e) : Buffer.alloc(0), name, linkSuffix(e, flags.long), Buffer.from('\n')]));
      };
      for (const p of paths) {
        try {
          // A symlink given is listed as itself with -l, else followed (as ls does).
          const top = await statEntry(mount, await resolve(mount, p, !flags.long && !json), opts);
          if (kindOf(top.stat.mode) !== 'dir') {
            await line(top, top.path);
            continue;
          }
          if (paths.length > 1 && !flags.recursive && !json) await writeOut(`${top.path.toString()}:\n`);
          for await (const e of flags.recursive ? below(mount, top, { ...opts, signal }) : await children(mount, top, opts)) {
            const name = flags.recursive ? e.path : e.path.subarray(e.path.lastIndexOf(0x2f) + 1);
            if (!flags.all && hidden(e.path, top.path.length)) continue;
            await line(e, name);
          }
        } catch (e) {
          throw mount.explain(e);
        }
      }
    });
    return json && { entries: json };
  }
}

/** A name under the listed directory that starts with ".". */
function hidden(path: Buffer, from: number): boolean {
  return path.toString('latin1').slice(from).split('/').some((part) => part.startsWith('.'));
}

function longPrefix(e: ImageEntry): Buffer {
  const s = e.stat;
  const kind = kindOf(s.mode);
  const size = kind === 'char' || kind === 'block' ? `${s.rdevMajor}, ${s.rdevMinor}` : String(s.size);
  const mtime = new Date(Number(s.mtimeNs / 1000000n)).toISOString().replace('T', ' ').slice(0, 16);
  return Buffer.from(`${modeString(s.mode)} ${String(s.nlink).padStart(3)} ${String(s.uid).padStart(5)} ${String(s.gid).padStart(5)} ${size.padStart(10)} ${mtime} `);
}

function linkSuffix(e: ImageEntry, long: boolean): Buffer {
  return long && e.target ? Buffer.concat([Buffer.from(' -> '), e.target]) : Buffer.alloc(0);
}
