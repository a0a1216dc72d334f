import { copyOut } from '../engine/copy-out.js';
import { expandSources } from '../engine/lkl-sources.js';
import { resolve } from '../engine/walk-image.js';
import { isSystemError } from '../kernel/binding.js';
import { describe, type Mount } from '../kernel/kernel.js';
import { UsageError } from '../errors.js';
import { copyFlags, ImageCommand, imageFlags, lklPathFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { formatBytes } from '../cli/format.js';
import type { CopyResult } from '../cli/json.js';
import { counts } from '../cli/progress.js';

export default class Cpfromfs extends ImageCommand {
  static override summary = 'Copy files from a filesystem image to the host';
  static override description = `Copies each SOURCE in the image to the host path DEST, as cp -a would:
into DEST when it is a directory, as DEST when there is one SOURCE and
DEST does not exist; "dir/." copies the contents of dir. Contents (holes
kept), directories, symlinks, hard links, fifos and device nodes, with
mode, nanosecond timestamps and extended attributes; owners, device nodes
and security.*/trusted.* attributes only when run as root (device nodes
are otherwise skipped with a warning). Sockets are skipped with a
warning: a copy would have nobody listening on it. Entries already on
the host are replaced; directories are merged. The image is opened
read-only and is never written.`;
  static override examples = [
    'lklfs cpfromfs -t ext4 -i rootfs.img /etc ./backup',
    'lklfs cpfromfs -t ext4 -i rootfs.img /. ./rootfs',
  ];
  static override strict = false;
  static override args = {
    paths: argument({ description: 'SOURCE... DEST', required: true }),
  };
  static override flags = {
    ...imageFlags,
    ...copyFlags('the image’s'),
    ...lklPathFlags('cpfromfs'),
  };

  async run(): Promise<CopyResult> {
    const { argv, flags } = await this.parse(Cpfromfs);
    const paths = argv as string[];
    if (paths.length < 2) throw new UsageError('give at least one SOURCE and a DEST');
    const dest = paths.pop() as string;
    const { totals, warnings } = await this.progress('copying', (update) =>
      this.withImage(flags, { readOnly: true }, async ({ mount, signal }) =>
        copyOut(mount, flags.glob ? await expandSources(paths, (dir) => listImage(mount, dir)) : paths, dest, {
          uid: flags.owner,
          gid: flags.group,
          xattrs: flags.xattrs,
          into: flags.into,
          signal,
          progress: (t) => update(counts(t.entries, t.bytes)),
        }),
      ),
    );
    this.printWarnings(warnings);
    this.summary(`copied ${totals.entries} entries (${totals.files} files, ${formatBytes(totals.bytes)})`);
    return { ...totals, warnings };
  }
}

/** The names in an image directory, symlinks on the way followed inside the image. */
async function listImage(mount: Mount, dir: Buffer): Promise<Buffer[]> {
  const k = mount.kernel.native;
  let path: Buffer | undefined;
  try {
    path = await resolve(mount, dir, true);
    return (await k.readdirStat(mount.path(path), false)).map((e) => e.name);
  } catch (e) {
    if (isSystemError(e) && ['ENOENT', 'ENOTDIR'].includes(e.code))
      throw new UsageError(`cannot list ${mount.image}:${(path ?? dir).toString()}: ${describe(e)}`);
    throw mount.explain(e);
  }
}
