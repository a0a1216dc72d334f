/**
 * Telling an image's filesystem type from its superblock, as blkid does,
 * so that -t can be left out; and finding partition N's start in its MBR
 * (primary and logical) or GPT table (see partition-table.ts). Only reads
 * the image.
 */
import { open } from 'node:fs/promises';
import { readPartitionTable, SECTOR } from './partition-table.js';

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const ascii = (b: Buffer, at: number, s: string) => b.subarray(at, at + s.length).toString('latin1') === s;
const u32 = (b: Buffer, at: number) => (b.length >= at + 4 ? b.readUInt32LE(at) : -1);

/** The filesystem type for mount, or undefined when nothing matches. */
export function fsTypeOf(b: Buffer): string | undefined {
  if (ascii(b, 0, 'XFSB')) return 'xfs';
  if (ascii(b, 0, 'hsqs')) return 'squashfs';
  if (ascii(b, 65536 + 64, '_BHRfS_M')) return 'btrfs';
  if (u32(b, 1024) === 0xf2f52010) return 'f2fs';
  if (u32(b, 1024) === 0xe0f5e1e2) return 'erofs';
  if (b.length > 1082 && b.readUInt16LE(1024 + 56) === 0xef53) return 'ext4'; // ext2 and ext3 too
  if (ascii(b, 1024, 'H+') || ascii(b, 1024, 'HX')) return 'hfsplus';
  if (ascii(b, 3, 'EXFAT   ')) return 'exfat';
  if (ascii(b, 3, 'NTFS    ')) return 'ntfs3';
  // The volume recognition area: a UDF image may also carry an ISO 9660
  // descriptor ("bridge" discs), so UDF's NSR descriptor decides first.
  for (let at = 32768; at + 6 <= Math.min(b.length, 32768 + 16 * 2048); at += 2048)
    if (ascii(b, at + 1, 'NSR02') || ascii(b, at + 1, 'NSR03')) return 'udf';
  if (ascii(b, 32769, 'CD001')) return 'iso9660';
  if (b.length >= SECTOR && b.readUInt16LE(510) === 0xaa55 && (ascii(b, 54, 'FAT') || ascii(b, 82, 'FAT32'))) return 'vfat';
  return undefined;
}

/** Byte offset of partition n (1-based, as the kernel counts), or undefined. */
export async function partitionOffset(image: string, n: number): Promise<number | undefined> {
  const fh = await open(image, 'r');
  try {
    const p = (await readPartitionTable(fh))?.partitions.find((x) => x.number === n);
    return p && p.first * SECTOR;
  } finally {
    await fh.close();
  }
}

/** The type of the filesystem on image (partition 0: the whole image). */
export async function probeFsType(image: string, partition: number): Promise<string | undefined> {
  const offset = partition ? await partitionOffset(image, partition) : 0;
  if (offset === undefined) return undefined;
  return fsTypeOf(await readAt(image, offset, 96 * 1024));
}
