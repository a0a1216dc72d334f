import * as Flags from '@oclif/core/flags';
import { readdir } from 'node:fs/promises';
import { copyIn } from '../engine/copy-in.js';
import { expandSources } from '../engine/lkl-sources.js';
import { GrowOnFull, planGrowth } from '../engine/grow.js';
import { cannotGrow, growMountType } from '../engine/resize-fs.js';
import { treeBytes } from '../engine/tree-size.js';
import { isSystemError } from '../kernel/binding.js';
import { LklfsError, UsageError } from '../errors.js';
import { copyFlags, detect, ImageCommand, imageFlags, lklPathFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { parseSize } from '../cli/size.js';
import { formatBytes } from '../cli/format.js';
import type { CopyResult } from '../cli/json.js';
import { counts } from '../cli/progress.js';

const newline = Buffer.from('\n');

export default class Cptofs extends ImageCommand {
  static override summary = 'Copy host files into a filesystem image';
  static override description = `Copies each SOURCE into the image directory DEST, as cp -a would:
contents (holes kept), directories, symlinks, hard links, device nodes,
fifos and sockets, with owner, mode, nanosecond timestamps and extended
attributes. "dir/." copies the contents of dir. Entries already in the
image are replaced; directories are merged. The image is checked by
nothing here: run the filesystem's fsck if you want a second opinion.

With --grow (ext2, ext3, ext4, btrfs, xfs), an image too small for the
sources is made bigger instead of failing with ENOSPC, as lklfs grow does
(the image file, or partition -P when it is the last one): before the copy
to about the sources' size, and again whenever it fills up. With
--grow-step SIZE, only when it fills up, by SIZE each time (more when one
file needs more): the image stays as small as steps allow.`;
  static override examples = [
    'lklfs cptofs -t ext4 -i rootfs.img ./rootfs/* /',
    'lklfs cptofs -t ext4 -i rootfs.img --owner 0 --group 0 ./rootfs/. /',
    'lklfs cptofs -i rootfs.img --grow ./rootfs/. /',
  ];
  static override strict = false;
  static override args = {
    paths: argument({ description: 'SOURCE... DEST', required: true }),
  };
  static override flags = {
    ...imageFlags,
    ...copyFlags('the source’s'),
    ...lklPathFlags('cptofs'),
    selinux: Flags.string({
      description: 'SELinux context (security.selinux) for every entry copied, instead of the source’s',
    }),
    verbose: Flags.boolean({ char: 'v', description: 'print the image path of each entry copied' }),
    epoch: Flags.integer({
      description: "the kernel's clock at start, in seconds (default: $SOURCE_DATE_EPOCH, else now)",
      env: 'SOURCE_DATE_EPOCH',
      min: 0,
    }),
    grow: Flags.boolean({ description: 'make the image bigger as needed instead of failing when it is full' }),
    'grow-step': Flags.string({
      description: 'with --grow: grow by SIZE each time the image is full, nothing before (default: to the sources\' size first)',
      dependsOn: ['grow'],
    }),
  };

  async run(): Promise<CopyResult> {
    const { argv, flags } = await this.parse(Cptofs);
    const paths = argv as string[];
    if (paths.length < 2) throw new UsageError('give at least one SOURCE and a DEST');
    if (flags.verbose && this.jsonEnabled()) throw new UsageError('--verbose and --json both want standard output: give one');
    const dest = paths.pop() as string;
    // Host directories: listed before the kernel boots.
    const sources = flags.glob ? await expandSources(paths, listHost) : paths;
    const step = flags['grow-step'] === undefined ? 0 : parseSize(flags['grow-step'], '--grow-step').bytes;
    let fsType = flags['filesystem-type'];
    if (flags.grow) {
      fsType ??= await detect(flags['filesystem-image'], flags.partition);
      const why = cannotGrow(fsType);
      if (why) throw new LklfsError(`--grow: ${flags['filesystem-image']}: ${why}`);
      // A partition that cannot grow (not the last one, ...): said now, not when full.
      await planGrowth(flags['filesystem-image'], flags.partition, { relative: true, bytes: 0 });
      fsType = growMountType(fsType);
    }
    let grower: GrowOnFull | undefined;
    const { totals, warnings } = await this.progress('copying', (update) =>
      this.withImage({ ...flags, 'filesystem-type': fsType }, { readOnly: false, prefault: true, epoch: flags.epoch }, async ({ mount, signal }) => {
        if (flags.grow) {
          grower = new GrowOnFull(mount, step ? { step } : { estimate: await treeBytes(mount.kernel.native, sources) });
          await grower.presize();
        }
        return copyIn(mount, sources, dest, {
          uid: flags.owner,
          gid: flags.group,
          xattrs: flags.xattrs,
          selinux: flags.selinux === undefined ? undefined : Buffer.from(flags.selinux),
          into: flags.into,
          signal,
          created: flags.verbose ? (p) => process.stdout.write(Buffer.concat([p, newline])) : undefined,
          progress: (t) => update(counts(t.entries, t.bytes)),
          full: grower && ((copied, entry, attempt) => (grower as GrowOnFull).full(copied, entry, attempt)),
        });
      }),
    );
    this.printWarnings(warnings);
    this.summary(`copied ${totals.entries} entries (${totals.files} files, ${formatBytes(totals.bytes)})`);
    if (grower?.growths)
      this.summary(`grew the image ${grower.growths} time(s), from ${formatBytes(grower.fromBytes ?? 0)} to ${formatBytes(grower.toBytes ?? 0)}`);
    return { ...totals, warnings };
  }
}

async function listHost(dir: Buffer): Promise<Buffer[]> {
  try {
    return await readdir(dir, { encoding: 'buffer' });
  } catch (e) {
    throw new UsageError(`cannot list ${dir.toString()}: ${isSystemError(e) ? e.code : String(e)}`);
  }
}
