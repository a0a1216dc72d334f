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
import { growFilesystem, smallestResize } from './resize-fs.js';

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
    if (!table) throw new LklfsError(`${image} has no partition ${partition}: it has no partition table`);
    let growth;
    let fromBytes;
    let sectors;
    try {
      const p = table.partition(partition);
      fromBytes = (p.last - p.first + 1) * SECTOR;
      sectors = Math.ceil(target(fromBytes) / SECTOR);
      growth = table.grow(partition, sectors, Math.floor(fileBytes / SECTOR));
    } catch (e) {
      throw e instanceof LklfsError && !(e instanceof UsageError) ? new LklfsError(`${image}: ${e.message}`) : e;
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

/** Room left over each time: metadata the estimate misses, the next few files. */
const MARGIN = 16 * 2 ** 20;
const MiB = 2 ** 20;

/**
 * Growing the image as a copy fills it (cptofs --grow). Given an estimate
 * of what the sources take: once before the copy, to room for it; then,
 * should the filesystem still fill up (ENOSPC), by what is left to copy
 * plus a margin. Given a step instead: only when it fills up, by step (or
 * what the entry being copied needs, when more). Either way the step that
 * failed is then tried again.
 */
export class GrowOnFull {
  /** Growths done, and the image's (or partition's) size before the first and after the last. */
  growths = 0;
  fromBytes?: number;
  toBytes?: number;

  constructor(
    private readonly mount: Mount,
    private readonly how: { estimate: number } | { step: number },
  ) {}

  /** Before the copy: grown when the estimate does not fit in the free space. */
  async presize(): Promise<void> {
    if (!('estimate' in this.how)) return;
    const st = await this.mount.kernel.native.statfs(this.mount.path('/'));
    const free = st.blocksAvailable * st.blockSize;
    if (free < this.how.estimate) await this.grow(this.how.estimate - free);
  }

  /**
   * ENOSPC with copied bytes of file data done, at an entry of entryBytes,
   * attempt times in a row: true once grown. A second growth for the same
   * entry is twice as big; a third is not tried (what fails then is not
   * for want of room, as an extended attribute too big for its filesystem).
   */
  async full(copied: number, entryBytes: number, attempt: number): Promise<boolean> {
    if (attempt > 2) return false;
    if ('step' in this.how) await this.growBy(Math.max(this.how.step, roundUp(entryBytes * attempt * 1.1)));
    else await this.grow(Math.max(this.how.estimate - copied, entryBytes) * attempt);
    return true;
  }

  /** By need, plus the margin. */
  private grow(need: number): Promise<void> {
    return this.growBy(roundUp(need * 1.1 + MARGIN));
  }

  private async growBy(bytes: number): Promise<void> {
    const now = (await planGrowth(this.mount.image, this.mount.partition, { relative: true, bytes: 0 })).fromBytes;
    bytes = Math.max(bytes, smallestResize(this.mount.fsType) - now);
    const g = await growMounted(this.mount, { relative: true, bytes });
    this.fromBytes ??= g.plan.fromBytes;
    this.toBytes = g.plan.toBytes;
    this.growths++;
  }
}

/** Whole MiB: partitions stay aligned. */
const roundUp = (bytes: number) => Math.ceil(bytes / MiB) * MiB;
