import * as Flags from '@oclif/core/flags';
import { detect, ImageCommand, imageFlags } from '../cli/image-command.js';
import { formatBytes } from '../cli/format.js';
import { writeOut } from '../cli/output.js';
import { parseSize } from '../cli/size.js';
import { growMounted, planGrowth } from '../engine/grow.js';
import { cannotGrow, growMountType, smallestResize } from '../engine/resize-fs.js';
import { LklfsError, UsageError } from '../errors.js';

export default class Grow extends ImageCommand {
  static override summary = 'Make an image and its filesystem bigger';
  static override description = `Extends the image file (sparse), or with -P its partition N when that is
the last one of its MBR or GPT table (a GPT's backup table moves to the
image's new end), then grows the filesystem to fill it, online inside the
kernel: ext2, ext3, ext4, btrfs and xfs. No root needed.

SIZE is the new size of the image, or of the partition with -P; "+SIZE"
adds to it. Bytes, or K, M, G, T (powers of 1024). Never shrinks; the
size it has already just grows the filesystem to fill it. With --json,
the sizes before and after, in bytes.`;
  static override examples = [
    'lklfs grow -i rootfs.img --size +1G',
    'lklfs grow -i disk.img -P 2 --size 4G',
  ];
  static override flags = {
    ...imageFlags,
    size: Flags.string({
      char: 's',
      description: 'new size (1G), or how much bigger (+512M)',
      required: true,
    }),
  };

  async run(): Promise<GrowResult | void> {
    const { flags } = await this.parse(Grow);
    const size = parseSize(flags.size, '--size');
    const image = flags['filesystem-image'];
    const fsType = flags['filesystem-type'] ?? (await detect(image, flags.partition));
    const why = cannotGrow(fsType);
    if (why) throw new LklfsError(`${image}: ${why}`);
    // Shrinking, a partition that is not the last: refused before the
    // image is opened for writing (mounting alone would write to it).
    const plan = await planGrowth(image, flags.partition, size);
    const smallest = smallestResize(fsType);
    if (plan.toBytes < smallest)
      throw new UsageError(`${image}: ${fsType} cannot be resized to less than ${formatBytes(smallest)} (the kernel's limit): ask for that much or more`);
    const g = await this.withImage({ ...flags, 'filesystem-type': growMountType(fsType) }, { readOnly: false }, ({ mount }) =>
      growMounted(mount, size),
    );
    const result: GrowResult = {
      type: fsType,
      device: { fromBytes: g.plan.fromBytes, toBytes: g.plan.toBytes },
      imageBytes: g.plan.fileBytes,
      filesystem: { fromBytes: g.fsFromBytes, toBytes: g.fsToBytes },
    };
    if (this.jsonEnabled()) return result;
    const what = flags.partition ? `${image} partition ${flags.partition}` : image;
    await writeOut(
      `${what}: ${formatBytes(g.plan.fromBytes)} -> ${formatBytes(g.plan.toBytes)}; ${fsType} filesystem: ${formatBytes(g.fsFromBytes)} -> ${formatBytes(g.fsToBytes)}\n`,
    );
  }
}

/** What --json prints (schemas/grow.json). */
interface GrowResult {
  type: string;
  /** The partition, or the whole image. */
  device: { fromBytes: number; toBytes: number };
  imageBytes: number;
  /** As statfs tells it. */
  filesystem: { fromBytes: number; toBytes: number };
}
