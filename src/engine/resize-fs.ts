/**
 * Growing a mounted filesystem to fill its device, inside the kernel: the
 * ioctls that resize2fs, xfs_growfs and `btrfs filesystem resize` issue on
 * a mounted filesystem, which need root on a host and nothing here.
 */
import type { Binding } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError } from '../errors.js';

/**
 * An ioctl request number for a struct the kernel reads (_IOW) or fills
 * (_IOR), as include/uapi/asm-generic/ioctl.h lays it out: number in bits
 * 0-7, type 8-15, argument size 16-29, direction 30-31 (1 write, 2 read).
 */
const ioc = (dir: 1 | 2, type: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;

/** include/uapi/linux/ext4.h: _IOW('f', 16, __u64), the new block count. */
const EXT4_IOC_RESIZE_FS = ioc(1, 0x66, 16, 8);
/** include/uapi/linux/btrfs.h: _IOW(0x94, 3, struct btrfs_ioctl_vol_args). */
const BTRFS_IOC_RESIZE = ioc(1, 0x94, 3, 4096);
/** fs/xfs/libxfs/xfs_fs.h: _IOR('X', 126, struct xfs_fsop_geom), 256 bytes. */
const XFS_IOC_FSGEOMETRY = ioc(2, 0x58, 126, 256);
/** _IOW('X', 110, struct xfs_growfs_data): u64 newblocks, u32 imaxpct, padded to 16. */
const XFS_IOC_FSGROWFSDATA = ioc(1, 0x58, 110, 16);

type Grower = (k: Binding, fd: number, deviceBytes: number, blockSize: number) => Promise<void>;

async function growExt4(k: Binding, fd: number, deviceBytes: number, blockSize: number): Promise<void> {
  const arg = Buffer.alloc(8);
  arg.writeBigUInt64LE(BigInt(Math.floor(deviceBytes / blockSize)));
  await k.ioctl(fd, EXT4_IOC_RESIZE_FS, arg);
}

/** "max": device 1 (the only one of an image) grows to its device's size. */
async function growBtrfs(k: Binding, fd: number): Promise<void> {
  const arg = Buffer.alloc(4096);
  arg.write('max', 8, 'latin1');
  await k.ioctl(fd, BTRFS_IOC_RESIZE, arg);
}

/** The geometry gives the block size and the inode space limit to keep. */
async function growXfs(k: Binding, fd: number, deviceBytes: number): Promise<void> {
  const geom = Buffer.alloc(256);
  await k.ioctl(fd, XFS_IOC_FSGEOMETRY, geom);
  const blockSize = geom.readUInt32LE(0);
  const arg = Buffer.alloc(16);
  arg.writeBigUInt64LE(BigInt(Math.floor(deviceBytes / blockSize)), 0);
  arg.writeUInt32LE(geom.readUInt32LE(28), 8);
  await k.ioctl(fd, XFS_IOC_FSGROWFSDATA, arg);
}

const GROWERS: Record<string, Grower> = {
  ext2: growExt4,
  ext3: growExt4,
  ext4: growExt4,
  btrfs: growBtrfs,
  xfs: growXfs,
};

/** Why a filesystem type cannot be grown here, or undefined when it can. */
export function cannotGrow(fsType: string): string | undefined {
  if (GROWERS[fsType]) return undefined;
  if (fsType === 'f2fs')
    // f2fs_resize_fs() in Linux 6.12 returns EINVAL for a larger size.
    return "f2fs cannot be grown by the kernel: its resize ioctl (F2FS_IOC_RESIZE_FS) only shrinks; grow the unmounted image with resize.f2fs";
  return `${fsType} cannot be grown: only ext2, ext3, ext4, btrfs and xfs grow online in the kernel`;
}

/**
 * The smallest size fsType can be resized to: btrfs_ioctl_resize() refuses
 * anything under 256 MiB (EINVAL, without a word in the kernel's log).
 */
export function smallestResize(fsType: string): number {
  return fsType === 'btrfs' ? 256 * 2 ** 20 : 0;
}

/**
 * ext2 and ext3 are mounted by the ext4 driver, which has the resize
 * ioctl; the type to mount fsType with for growing it.
 */
export function growMountType(fsType: string): string {
  return fsType === 'ext2' || fsType === 'ext3' ? 'ext4' : fsType;
}

/**
 * Grows the filesystem mounted at mount to deviceBytes (its partition's or
 * image's size, which the kernel must already see). Resolves to the
 * filesystem's size as statfs reports it afterwards.
 */
export async function growFilesystem(mount: Mount, fsType: string, deviceBytes: number): Promise<number> {
  const grower = GROWERS[fsType];
  if (!grower) throw new LklfsError(cannotGrow(fsType) as string);
  const k = mount.kernel.native;
  const root = mount.path('/');
  const fd = await k.open(root, k.constants.O_RDONLY | k.constants.O_DIRECTORY, 0);
  try {
    const { blockSize } = await k.statfs(root);
    k.takeLog();
    await grower(k, fd, deviceBytes, blockSize);
  } catch (e) {
    throw mount.kernel.failure(`cannot grow the ${fsType} filesystem of ${mount.image}`, e);
  } finally {
    await k.close(fd);
  }
  const st = await k.statfs(root);
  return st.blocks * st.blockSize;
}
