/**
 * Making an image bigger: its file (sparse), or its last partition (see
 * partition-table.ts), then the filesystem on it, online in the kernel
 * (see resize-fs.ts). `lklfs grow` does it once; `cptofs --grow` whenever
 * the image fills up.
 *
 * The kernel reads a disk's size and partition table when the disk is
 * attached, so the filesystem is unmounted (cleanly: it is consistent on
 * disk), the image file and table grown on the host, the disk attached
 * again and the filesystem mounted back before the resize (Kernel.remount).
 * A failure on the way leaves a bigger image holding the filesystem as it
 * was, still consistent.
 */
import { open } from 'node:fs/promises';
import type { Mount } from '../kernel/kernel.js';
import { describe } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { readPartitionTable, SECTOR, type TableWrite } from './partition-table.js';
import { growFilesystem } from './resize-fs.js';

/** A new size: "+N" (relative) is that much more than now. */
export interface SizeRequest {
  relative: boolean;
  bytes: number;
}

export interface GrowthPlan {
  image: string;
  /** 0: the whole image. */
  partition: number;
  /** The filesystem's device (the partition or the whole image), before and after. */
  fromBytes: number;
  toBytes: number;
  /** The image file's size after (never less than before). */
  fileBytes: number;
  /** Partition table changes, in this order. */
  writes: TableWrite[];
}

/** What growing to size would do; errors (shrinking, not the last partition) before anything is written. */
export async function planGrowth(image: string, partition: number, size: SizeRequest): Promise<GrowthPlan> {
  const fh = await open(image, 'r').catch((e: unknown) => {
    throw new LklfsError(`cannot open image ${image}: ${describe(e)}`, 1, { cause: e });
  });
  try {
    const fileBytes = (await fh.stat()).size;
    const target = (from: number) => {
      const to = size.relative ? from + size.bytes : size.bytes;
      if (to < from)
        throw new UsageError(
          `${image}: the size asked for (${to} bytes) is smaller than the ${partition ? `partition's` : `image's`} (${from} bytes): lklfs grow does not shrink`,
        );
      return to;
    };
    if (!partition) {
      const to = target(fileBytes);
      return { image, partition, fromBytes: fileBytes, toBytes: to, fileBytes: to, writes: [] };
    }
    const table = await readPartitionTable(fh);
    const p = table?.partitions.find((x) => x.number === partition);
    if (!table || !p)
      throw new LklfsError(`${image} has no partition ${partition}${table ? ` in its ${table.kind} table` : ' (no partition table)'}`);
    const fromBytes = (p.last - p.first + 1) * SECTOR;
    const sectors = Math.ceil(target(fromBytes) / SECTOR);
    let growth;
    try {
      growth = table.grow(partition, sectors, Math.floor(fileBytes / SECTOR));
    } catch (e) {
      throw e instanceof LklfsError ? new LklfsError(`${image}: ${e.message}`) : e;
    }
    return {
      image,
      partition,
      fromBytes,
      toBytes: sectors * SECTOR,
      fileBytes: Math.max(fileBytes, growth.fileSectors * SECTOR),
      writes: growth.writes,
    };
  } finally {
    await fh.close();
  }
}

/** Extends the image file (sparse) and writes the partition table changes. */
export async function applyGrowth(plan: GrowthPlan): Promise<void> {
  try {
    const fh = await open(plan.image, 'r+');
    try {
      if ((await fh.stat()).size < plan.fileBytes) await fh.truncate(plan.fileBytes);
      for (const w of plan.writes) await fh.write(w.data, 0, w.data.length, w.offset);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new LklfsError(`cannot grow image ${plan.image} to ${plan.fileBytes} bytes: ${describe(e)}`, 1, { cause: e });
  }
}

export interface Growth {
  plan: GrowthPlan;
  /** The filesystem's size as statfs reports it, before and after. */
  fsFromBytes: number;
  fsToBytes: number;
}

/**
 * Grows the mounted image (its file or its partition) to size and the
 * filesystem on it to fill it. The mount stays usable: same root, same
 * options.
 */
export async function growMounted(mount: Mount, size: SizeRequest): Promise<Growth> {
  const k = mount.kernel.native;
  const before = await k.statfs(mount.path('/'));
  const plan = await planGrowth(mount.image, mount.partition, size);
  if (plan.toBytes !== plan.fromBytes || plan.writes.length)
    await mount.kernel.remount(mount, () => applyGrowth(plan));
  const fsToBytes = await growFilesystem(mount, mount.fsType, plan.toBytes);
  return { plan, fsFromBytes: before.blocks * before.blockSize, fsToBytes };
}
