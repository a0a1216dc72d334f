/**
 * Telling an image's filesystem type from its superblock, as blkid does,
 * so that -t can be left out; and finding partition N's start in an MBR
 * (primary and logical) or GPT table, numbered as the kernel numbers
 * them. Only reads the image.
 */
import { open } from 'node:fs/promises';

const SECTOR = 512;

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
  const mbr = await readAt(image, 0, SECTOR);
  if (mbr.length < SECTOR || mbr.readUInt16LE(510) !== 0xaa55) return undefined;
  const entry = (b: Buffer, i: number) => ({ type: b[446 + 16 * i + 4] ?? 0, start: b.readUInt32LE(446 + 16 * i + 8) });
  if (entry(mbr, 0).type === 0xee) return gptOffset(image, n);
  if (n <= 4) {
    const e = entry(mbr, n - 1);
    return e.type ? e.start * SECTOR : undefined;
  }
  // Logical partitions (5, 6, ...): a chain of boot records inside the
  // extended partition, each with its partition and the link to the next.
  const ext = [0, 1, 2, 3].map((i) => entry(mbr, i)).find((e) => [0x05, 0x0f, 0x85].includes(e.type));
  if (!ext) return undefined;
  let ebr = ext.start;
  for (let i = 5; ebr; i++) {
    const b = await readAt(image, ebr * SECTOR, SECTOR);
    if (b.length < SECTOR || b.readUInt16LE(510) !== 0xaa55) return undefined;
    if (i === n) return (ebr + entry(b, 0).start) * SECTOR;
    const next = entry(b, 1);
    ebr = next.type ? ext.start + next.start : 0;
  }
  return undefined;
}

async function gptOffset(image: string, n: number): Promise<number | undefined> {
  const hdr = await readAt(image, SECTOR, 92);
  if (!ascii(hdr, 0, 'EFI PART')) return undefined;
  const entries = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const size = hdr.readUInt32LE(84);
  if (n > count) return undefined;
  const e = await readAt(image, entries * SECTOR + (n - 1) * size, size);
  if (e.length < 48 || e.subarray(0, 16).every((x) => x === 0)) return undefined; // unused entry
  return Number(e.readBigUInt64LE(32)) * SECTOR;
}

/** The type of the filesystem on image (partition 0: the whole image). */
export async function probeFsType(image: string, partition: number): Promise<string | undefined> {
  const offset = partition ? await partitionOffset(image, partition) : 0;
  if (offset === undefined) return undefined;
  return fsTypeOf(await readAt(image, offset, 96 * 1024));
}
