import * as Flags from '@oclif/core/flags';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { isatty } from 'node:tty';
import { copyFlags, ImageCommand, imageFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { formatBytes } from '../cli/format.js';
import { counts } from '../cli/progress.js';
import { extractTar, type TarArchive, type TarInTotals } from '../engine/tar-in.js';
import { UsageError } from '../errors.js';
import { describe } from '../kernel/kernel.js';

const newline = Buffer.from('\n');

export default class Tar2fs extends ImageCommand {
  static override summary = 'Unpack a tar archive into a filesystem image';
  static override description = `Unpacks ARCHIVE ("-" or none: standard input) into the image directory
DEST (default /), as it streams in: nothing is unpacked on the host, and
memory stays the same whatever the archive's size. Plain, gzip, xz and
zstd archives are told apart by their first bytes. Reads what GNU tar,
bsdtar and docker export write: ustar, pax (nanosecond times, long and
non-UTF-8 names, SCHILY.xattr and LIBARCHIVE.xattr attributes, ACLs),
GNU long names and sparse files (0.x and 1.0), hard links, device nodes
and fifos. Owners are the archive's numeric ids (user and group names are
not looked up), or --owner/--group. Names are taken relative to DEST;
names with ".." are not extracted. Entries already in the image are
replaced, directories merged. A directory's metadata is set once the
archive has left it, as GNU tar does.

With --whiteouts, a container layer's whiteouts are applied rather than
extracted: ".wh.NAME" removes NAME from the image, ".wh..wh..opq" empties
its directory of what was there before the layer.

What the filesystem cannot hold (owners or symlinks on vfat) is left out
with one warning per kind. A bad archive (truncated, corrupt) stops the
job with an error naming the entry and the byte offset; what was unpacked
before stays, and the filesystem is unmounted cleanly.`;
  static override examples = [
    'lklfs tar2fs -i rootfs.img rootfs.tar.zst',
    'docker export CONTAINER | lklfs tar2fs -i rootfs.img -',
    'lklfs tar2fs -i rootfs.img --whiteouts layer.tar.gz /',
  ];
  static override args = {
    archive: argument({ description: 'the archive (tar, .gz, .xz, .zst); "-" or none: standard input', default: '-' }),
    dest: argument({ description: 'the image directory to unpack into', default: '/' }),
  };
  static override flags = {
    ...imageFlags,
    ...copyFlags('the archive’s'),
    whiteouts: Flags.boolean({ description: 'apply container-layer whiteouts (.wh.NAME, .wh..wh..opq) instead of extracting them' }),
    verbose: Flags.boolean({ char: 'v', description: 'print the image path of each entry unpacked' }),
    epoch: Flags.integer({
      description: "the kernel's clock at start, in seconds (default: $SOURCE_DATE_EPOCH, else now)",
      env: 'SOURCE_DATE_EPOCH',
      min: 0,
    }),
  };

  async run(): Promise<TarInTotals & { warnings: string[] }> {
    const { args, flags } = await this.parse(Tar2fs);
    if (flags.verbose && this.jsonEnabled()) throw new UsageError('--verbose and --json both want standard output: give one');
    const archive = await openArchive(args.archive, flags['filesystem-image']);
    try {
      const { totals, warnings } = await this.progress('unpacking', (update) =>
        this.withImage(flags, { readOnly: false, prefault: true, epoch: flags.epoch }, ({ mount, signal }) =>
          extractTar(mount, archive, args.dest, {
            uid: flags.owner,
            gid: flags.group,
            xattrs: flags.xattrs,
            whiteouts: flags.whiteouts,
            signal,
            created: flags.verbose ? (p) => process.stdout.write(Buffer.concat([p, newline])) : undefined,
            progress: (t) => update(counts(t.entries, t.bytes)),
          }),
        ),
      );
      this.printWarnings(warnings);
      const whiteouts = totals.whiteouts ? `, ${totals.whiteouts} whiteouts applied` : '';
      this.summary(`unpacked ${totals.entries} entries (${totals.files} files, ${formatBytes(totals.bytes)})${whiteouts}`);
      return { ...totals, warnings };
    } finally {
      archive.close();
    }
  }
}

interface Archive extends TarArchive {
  /** Lets go of the file (once the job is over: the binding reads it till then). */
  close(): void;
}

/**
 * The archive's descriptor: the binding reads it on a thread of its own,
 * a regular file where it lies, standard input or a pipe as it comes, and
 * tells the compression by the first bytes.
 */
async function openArchive(path: string, image: string): Promise<Archive> {
  if (path === '-') {
    if (isatty(0)) throw new UsageError('refusing to read an archive from a terminal; give a file or a pipe');
    return { fd: 0, file: false, label: 'standard input', close: () => undefined };
  }
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${describe(e)}`);
  }
  const [st, img] = await Promise.all([fh.stat(), stat(image).catch(() => undefined)]);
  if (img && st.dev === img.dev && st.ino === img.ino) {
    await fh.close();
    throw new UsageError(`the archive ${path} is the image itself`);
  }
  if (st.isDirectory()) {
    await fh.close();
    throw new UsageError(`${path} is a directory, not an archive`);
  }
  return { fd: fh.fd, file: st.isFile(), label: path, close: () => void fh.close().catch(() => undefined) };
}
