/**
 * Growing the last partition of an MBR or GPT table, for `lklfs grow -P N`.
 * Reading a table and planning the change never writes: a partition that
 * is not the last one, or a size the table cannot hold, is an error before
 * anything is touched. The plan is a list of sector writes whose order
 * keeps a valid table at every step (see GptTable.grow).
 */
import { crc32 } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import { LklfsError } from '../errors.js';

export const SECTOR = 512;

export interface Partition {
  /** As the kernel numbers them: 1-4 primary (or GPT entry N), 5... logical. */
  number: number;
  /** First and last sector, inclusive. */
  first: number;
  last: number;
}

export interface TableWrite {
  offset: number;
  data: Buffer;
}

export interface TableGrowth {
  /** The image file's size in sectors once grown (never less than now). */
  fileSectors: number;
  /** In this order. */
  writes: TableWrite[];
}

export interface PartitionTable {
  kind: 'MBR' | 'GPT';
  /** The partitions that can be mounted (an MBR's extended container is not one). */
  partitions: Partition[];
  /** Partition n; an error saying why when there is none to mount. */
  partition(n: number): Partition;
  /**
   * Partition n made newSectors long (the image is fileSectors long now):
   * how big the image must become, and what to write.
   */
  grow(n: number, newSectors: number, fileSectors: number): TableGrowth;
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

/** The image's partition table, or undefined when it has none. */
export async function readPartitionTable(fh: FileHandle): Promise<PartitionTable | undefined> {
  const mbr = await readAt(fh, 0, SECTOR);
  if (mbr.length < SECTOR || mbr.readUInt16LE(510) !== 0xaa55) return undefined;
  if (mbrSlot(mbr, 0).type === 0xee) return GptTable.read(fh, mbr);
  return MbrTable.read(fh, mbr);
}

function find(table: PartitionTable, n: number): Partition {
  const p = table.partitions.find((x) => x.number === n);
  if (!p) throw new LklfsError(`the ${table.kind} table has no partition ${n}`);
  return p;
}

/** Partition n, when no other one (nor extra) ends after it. */
function findLast(table: PartitionTable, n: number, extra: Partition[] = []): Partition {
  const p = table.partition(n);
  const after = [...table.partitions, ...extra].find((x) => x !== p && x.last > p.last);
  if (after)
    throw new LklfsError(
      `partition ${n} is not the last one of the ${table.kind} table (partition ${after.number} ends after it, at sector ${after.last}): only the last partition can be grown`,
    );
  return p;
}

interface MbrSlot {
  type: number;
  start: number;
  sectors: number;
}

const mbrSlot = (b: Buffer, i: number): MbrSlot => ({
  type: b[446 + 16 * i + 4] ?? 0,
  start: b.readUInt32LE(446 + 16 * i + 8),
  sectors: b.readUInt32LE(446 + 16 * i + 12),
});

const EXTENDED = [0x05, 0x0f, 0x85];

/**
 * The cylinder/head/sector address of an LBA as MBR entries carry it, in
 * the geometry partitioning tools give image files (255 heads, 63 sectors
 * a track); past cylinder 1023 the largest address, as they write it.
 */
function chs(lba: number): Buffer {
  const heads = 255;
  const perTrack = 63;
  let cyl = Math.floor(lba / (heads * perTrack));
  let head = Math.floor(lba / perTrack) % heads;
  let sector = (lba % perTrack) + 1;
  if (cyl > 1023) [cyl, head, sector] = [1023, heads - 1, perTrack];
  return Buffer.from([head, sector | ((cyl >> 8) << 6), cyl & 0xff]);
}

class MbrTable implements PartitionTable {
  readonly kind = 'MBR';

  private constructor(
    private readonly sector0: Buffer,
    readonly partitions: Partition[],
    /** The extended container, which other partitions must not end after. */
    private readonly extended: Partition[],
  ) {}

  static async read(fh: FileHandle, sector0: Buffer): Promise<MbrTable> {
    const primary: Partition[] = [];
    const extended: Partition[] = [];
    for (let i = 0; i < 4; i++) {
      const s = mbrSlot(sector0, i);
      if (!s.type || !s.sectors) continue;
      const p = { number: i + 1, first: s.start, last: s.start + s.sectors - 1 };
      (EXTENDED.includes(s.type) ? extended : primary).push(p);
    }
    // Logical partitions lie inside the extended container: they are not
    // growable here, and only its extent matters to which one is last.
    const logical = extended.length ? await logicalPartitions(fh, extended[0] as Partition) : [];
    return new MbrTable(sector0, [...primary, ...logical], extended);
  }

  partition(n: number): Partition {
    if (this.extended.some((x) => x.number === n))
      throw new LklfsError(`partition ${n} is the MBR table's extended partition: it holds logical partitions, not a filesystem`);
    return find(this, n);
  }

  grow(n: number, newSectors: number, fileSectors: number): TableGrowth {
    if (n > 4 && this.partitions.some((p) => p.number === n))
      throw new LklfsError(`partition ${n} is a logical partition: only a primary partition of an MBR table can be grown`);
    const p = findLast(this, n, this.extended);
    const end = p.first + newSectors; // one past the last sector
    if (end > 0xffffffff)
      throw new LklfsError(`an MBR table cannot hold a partition ending past 2 TiB (sector ${end - 1}): use GPT`);
    const sector0 = Buffer.from(this.sector0);
    const at = 446 + 16 * (n - 1);
    chs(end - 1).copy(sector0, at + 5);
    sector0.writeUInt32LE(newSectors, at + 12);
    return { fileSectors: Math.max(fileSectors, end), writes: [{ offset: 0, data: sector0 }] };
  }
}

/** The chain of extended boot records: partitions 5, 6, ... */
async function logicalPartitions(fh: FileHandle, ext: Partition): Promise<Partition[]> {
  const found: Partition[] = [];
  let ebr = ext.first;
  for (let n = 5; ebr && n < 5 + 256; n++) {
    const b = await readAt(fh, ebr * SECTOR, SECTOR);
    if (b.length < SECTOR || b.readUInt16LE(510) !== 0xaa55) break;
    const s = mbrSlot(b, 0);
    if (s.type && s.sectors) found.push({ number: n, first: ebr + s.start, last: ebr + s.start + s.sectors - 1 });
    const next = mbrSlot(b, 1);
    ebr = next.type ? ext.first + next.start : 0;
  }
  return found;
}

/** Header fields (UEFI spec, "GPT Header"), by byte offset. */
const H = {
  crc: 16,
  myLba: 24,
  alternateLba: 32,
  lastUsable: 48,
  entriesLba: 72,
  entryCount: 80,
  entrySize: 84,
  entriesCrc: 88,
} as const;

class GptTable implements PartitionTable {
  readonly kind = 'GPT';

  private constructor(
    private readonly pmbr: Buffer,
    private readonly header: Buffer,
    private readonly entries: Buffer,
    readonly partitions: Partition[],
    /** What failed its checksum in the primary table, if anything. */
    private readonly damage?: string,
  ) {}

  /**
   * A header or entries that fail their checksum are still read (the
   * kernel would fall back to the backup table): only growing refuses them.
   */
  static async read(fh: FileHandle, pmbr: Buffer): Promise<GptTable | undefined> {
    const header = await readAt(fh, SECTOR, SECTOR);
    const size = header.length >= 16 ? header.readUInt32LE(12) : 0;
    if (header.subarray(0, 8).toString('latin1') !== 'EFI PART' || size < 92 || size > SECTOR) return undefined;
    const count = header.readUInt32LE(H.entryCount);
    const entrySize = header.readUInt32LE(H.entrySize);
    const entries = await readAt(fh, lba(header, H.entriesLba) * SECTOR, count * entrySize);
    let damage: string | undefined;
    if (headerCrc(header) !== header.readUInt32LE(H.crc)) damage = 'header';
    else if (entries.length !== count * entrySize || crc32(entries) !== header.readUInt32LE(H.entriesCrc))
      damage = 'partition entries';
    const partitions: Partition[] = [];
    for (let i = 0; i < Math.floor(entries.length / entrySize); i++) {
      const e = entries.subarray(i * entrySize, (i + 1) * entrySize);
      if (e.subarray(0, 16).some((x) => x !== 0))
        partitions.push({ number: i + 1, first: Number(e.readBigUInt64LE(32)), last: Number(e.readBigUInt64LE(40)) });
    }
    return new GptTable(pmbr, header, entries, partitions, damage);
  }

  partition(n: number): Partition {
    return find(this, n);
  }

  /**
   * The backup header and entries move to the image's new end. Written
   * first: until the primary header points at them, it still points at the
   * old backup, which is left alone until the very last write.
   */
  grow(n: number, newSectors: number, fileSectors: number): TableGrowth {
    if (this.damage)
      throw new LklfsError(`the checksum of the primary GPT ${this.damage} does not match: repair the table first (sgdisk -v)`);
    const p = findLast(this, n);
    const entriesSectors = Math.ceil(this.entries.length / SECTOR);
    const end = p.first + newSectors; // one past the partition's last sector
    const total = Math.max(fileSectors, end + entriesSectors + 1);
    const lastLba = total - 1;
    const oldBackup = lba(this.header, H.alternateLba);

    const entries = Buffer.from(this.entries);
    const entrySize = this.header.readUInt32LE(H.entrySize);
    entries.writeBigUInt64LE(BigInt(end - 1), (n - 1) * entrySize + 40);

    const primary = Buffer.from(this.header);
    primary.writeBigUInt64LE(BigInt(lastLba), H.alternateLba);
    primary.writeBigUInt64LE(BigInt(lastLba - entriesSectors - 1), H.lastUsable);
    primary.writeUInt32LE(crc32(entries), H.entriesCrc);
    const backup = Buffer.from(primary);
    backup.writeBigUInt64LE(BigInt(lastLba), H.myLba);
    backup.writeBigUInt64LE(1n, H.alternateLba);
    backup.writeBigUInt64LE(BigInt(lastLba - entriesSectors), H.entriesLba);
    sealHeader(primary);
    sealHeader(backup);

    // The protective entry covers the disk, or as much of it as 32 bits can.
    const pmbr = Buffer.from(this.pmbr);
    pmbr.writeUInt32LE(Math.min(lastLba, 0xffffffff), 446 + 12);

    const writes: TableWrite[] = [
      { offset: (lastLba - entriesSectors) * SECTOR, data: entries },
      { offset: lastLba * SECTOR, data: backup },
      { offset: lba(this.header, H.entriesLba) * SECTOR, data: entries },
      { offset: SECTOR, data: primary },
      { offset: 0, data: pmbr },
    ];
    // The old backup header, now inside the grown partition, is wiped so
    // that nothing mistakes it for a table; only where no partition was.
    if (oldBackup !== lastLba && this.partitions.every((x) => x.last < oldBackup))
      writes.push({ offset: oldBackup * SECTOR, data: Buffer.alloc(SECTOR) });
    return { fileSectors: total, writes };
  }
}

const lba = (header: Buffer, at: number) => Number(header.readBigUInt64LE(at));

/** The header's CRC32: over its own size, with the CRC field zero. */
function headerCrc(header: Buffer): number {
  const h = Buffer.from(header.subarray(0, header.readUInt32LE(12)));
  h.writeUInt32LE(0, H.crc);
  return crc32(h);
}

function sealHeader(header: Buffer): void {
  header.writeUInt32LE(headerCrc(header), H.crc);
}
