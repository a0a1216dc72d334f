/**
 * A tar stream unpacked into a directory of a mounted image, as it
 * arrives: no tree on the host, and memory that stays the same whatever
 * the archive's size (a batch or two of data, the directories still open).
 *
 * Entries go to the kernel in batches (see steps.ts): the data of files
 * travels in the batch itself (writeFile, writeAt), and the next batch is
 * built while the kernel runs the one before. A directory's metadata is
 * set once the archive has left it (its contents would change its times,
 * and a default ACL set first would be inherited by them), as GNU tar
 * does; like GNU tar's, that relies on an archive keeping a directory's
 * contents together, as tar writes them.
 *
 * Names are relative to the destination: leading "/" and "./" go, names
 * with ".." are not extracted. A parent directory the archive does not
 * have is created (mode 755); one that is a symlink in the image is
 * followed inside the image, as the paths given to every command are.
 */
import { readFileSync } from 'node:fs';
import { errnoError, isSystemError, packXattrs, type BatchOp } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { KIND_NAMES, kindOf, S_IFBLK, S_IFCHR, S_IFIFO, type FileKind } from './modes.js';
import { aclFromText, hostIdLookup } from './posix-acl.js';
import { inTheWay, runSteps, type Step as StepOf, type StepHooks } from './steps.js';
import { showName, type TarEntry, type TarReader } from './tar-parse.js';
import { resolve } from './walk-image.js';
import { MetadataWarnings } from './warnings.js';
import { fileOwn } from './xattrs.js';

export interface TarInOptions {
  /** Owner and group for everything extracted, instead of the archive's. */
  uid?: number;
  gid?: number;
  /** Extended attributes and ACLs (default true). */
  xattrs?: boolean;
  /** Apply container-layer whiteouts (.wh.NAME, .wh..wh..opq) instead of extracting them. */
  whiteouts?: boolean;
  signal?: AbortSignal;
  /** Called after each batch with the running totals. */
  progress?: (totals: TarInTotals) => void;
  /** Called with each entry's image path once it is in the image. */
  created?: (imagePath: Buffer) => void;
}

export interface TarInTotals {
  entries: number;
  files: number;
  /** File data written, in bytes. */
  bytes: number;
  hardlinks: number;
  whiteouts: number;
}

/** Entries per batch, and file data per batch: bound memory and the time an abort waits. */
const BATCH_ENTRIES = 256;
const BATCH_BYTES = 8 << 20;
/** Parent directories resolved in the image, remembered up to this many. */
const PARENT_CACHE = 4096;

const WHITEOUT = Buffer.from('.wh.');
const OPAQUE = Buffer.from('.wh..wh..opq');
const slash = Buffer.from('/');

interface Item {
  entry: TarEntry;
  kernel: Buffer;
  kind: FileKind;
}

type Step = StepOf<Item>;

/** A directory of the archive whose metadata waits until the archive has left it. */
interface OpenDir {
  /** Its path in the archive, components joined by "/" (latin1: names are bytes); "" is the destination. */
  key: string;
  kernel: Buffer;
  item?: Item;
  /** Names this archive put in it (for whiteouts: they apply only to what was there before). */
  names?: Set<string>;
}

/** The batch being built, and the one the kernel runs meanwhile. */
class Batches {
  steps: Step[] = [];
  items: Item[] = [];
  bytes = 0;
  private running: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly run: (steps: Step[], items: Item[]) => Promise<void>,
  ) {}

  get full(): boolean {
    return this.items.length >= BATCH_ENTRIES || this.bytes >= BATCH_BYTES;
  }

  /** A batch that failed meanwhile fails the job here. */
  check(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Hands the batch built to the kernel, once the one before is done. */
  async flush(): Promise<void> {
    await this.running;
    this.check();
    if (!this.steps.length) return;
    const steps = this.steps;
    const items = this.items;
    this.steps = [];
    this.items = [];
    this.bytes = 0;
    // Failures are kept for check(): nothing is left unhandled meanwhile.
    this.running = this.run(steps, items).catch((error: unknown) => {
      this.failure ??= { error };
    });
  }

  /** Everything added is in the image. */
  async settle(): Promise<void> {
    await this.flush();
    await this.running;
    this.check();
  }

  /** For a job that failed: whatever runs ends before the filesystem is unmounted. */
  async quiesce(): Promise<void> {
    await this.running;
  }
}

class TarIn {
  readonly totals: TarInTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0, whiteouts: 0 };
  readonly warnings = new MetadataWarnings();
  /** Entries left out, by reason. */
  private skipped = new Map<string, { count: number; example: string }>();
  private readonly batches = new Batches((steps, items) => this.runBatch(steps, items));
  private open: OpenDir[];
  /** Names this archive put in the destination itself. */
  private readonly rootNames: Set<string> | undefined;
  private parents = new Map<string, Buffer>();
  private readonly lookupId = hostIdLookup((f) => readFileSync(f, 'utf8'));

  constructor(
    private readonly mount: Mount,
    private readonly reader: TarReader,
    private readonly dest: Buffer,
    private readonly opts: TarInOptions,
  ) {
    this.rootNames = opts.whiteouts ? new Set() : undefined;
    this.open = [{ key: '', kernel: dest, names: this.rootNames }];
  }

  private get k() {
    return this.mount.kernel.native;
  }

  async run(): Promise<void> {
    try {
      for (;;) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        this.batches.check();
        const e = await this.reader.next();
        if (!e) break;
        await this.add(e);
        if (this.batches.full) await this.batches.flush();
      }
      while (this.open.length) this.close(this.open.pop() as OpenDir);
      await this.batches.settle();
    } finally {
      await this.batches.quiesce();
    }
  }

  summary(): string[] {
    const lines = this.warnings.summary();
    for (const [why, s] of this.skipped) lines.push(`${s.count} ${s.count === 1 ? 'entry' : 'entries'} not extracted (${why}), e.g. ${s.example}`);
    if (this.reader.endedWithoutMarker) lines.push('the archive ends without its end-of-archive blocks: it may have been cut short');
    return lines;
  }

  private skip(why: string, e: TarEntry): void {
    const s = this.skipped.get(why);
    if (s) s.count++;
    else this.skipped.set(why, { count: 1, example: showName(e.name) });
  }

  private async add(e: TarEntry): Promise<void> {
    const parts = components(e.name);
    if (!parts) return this.skip('names with ".."', e);
    const key = joinKey(parts);
    // Directories the archive has left get their metadata now.
    while (this.open.length && !isBelow(key, (this.open.at(-1) as OpenDir).key)) this.close(this.open.pop() as OpenDir);
    if (key === '') {
      if (e.kind !== 'dir') return this.skip('not a directory, yet named as the destination itself', e);
      this.open.push({ key, kernel: this.dest, item: { entry: e, kernel: this.dest, kind: 'dir' }, names: this.rootNames });
      this.totals.entries++;
      return;
    }
    const name = parts.at(-1) as Buffer;
    const parentKey = joinKey(parts.slice(0, -1));
    if (this.opts.whiteouts && name.subarray(0, WHITEOUT.length).equals(WHITEOUT)) return this.whiteout(parentKey, name);
    const top = this.open.at(-1) as OpenDir;
    const parent = top.key === parentKey ? top.kernel : await this.parent(parentKey);
    if (top.key === parentKey) top.names?.add(name.toString('latin1'));
    const kernel = Buffer.concat([parent, slash, name]);
    const kind: FileKind = e.kind === 'link' ? 'file' : e.kind;
    const item: Item = { entry: e, kernel, kind };
    const create = (op: BatchOp): Step => ({ op, what: 'create', source: item, create: true });
    const b = this.batches;
    if (e.unknownType !== undefined) this.warnings.add('type', this.show(item), `unknown type flag "${e.unknownType}": extracted as a regular file`);
    switch (e.kind) {
      case 'dir':
        b.steps.push(create(['mkdir', false, kernel, 0o700]));
        this.open.push({ key, kernel, item, names: this.opts.whiteouts ? new Set() : undefined });
        break;
      case 'file':
        await this.file(item, create);
        break;
      case 'symlink':
        b.steps.push(create(['symlink', false, kernel, e.linkname as Buffer]), ...this.metadata(item));
        break;
      case 'link': {
        const target = components(e.linkname as Buffer);
        if (!target || !target.length) return this.skip('hard links to names with ".."', e);
        const targetKey = joinKey(target);
        if (targetKey === key) return;
        const targetParent = joinKey(target.slice(0, -1));
        const dir = this.open.find((d) => d.key === targetParent)?.kernel ?? (await this.parent(targetParent));
        b.steps.push(create(['link', false, kernel, Buffer.concat([dir, slash, target.at(-1) as Buffer])]));
        this.totals.hardlinks++;
        break;
      }
      default: {
        const type = { char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO }[e.kind];
        b.steps.push(create(['mknod', false, kernel, type | e.mode, e.devMajor, e.devMinor]), ...this.metadata(item));
      }
    }
    b.items.push(item);
    this.totals.entries++;
  }

  /** A regular file: its data in the batch (as many batches as it takes), then its metadata. */
  private async file(item: Item, create: (op: BatchOp) => Step): Promise<void> {
    const b = this.batches;
    const e = item.entry;
    // The runs of data the reader gives are gathered into as few writes
    // as the batches allow: the write being filled, in the batch being built.
    let write: { data: Buffer[]; end: number } | undefined = { data: [], end: 0 };
    b.steps.push(create(['writeFile', false, item.kernel, write.data, 0o600]));
    let end = 0;
    for (;;) {
      if (b.bytes >= BATCH_BYTES) {
        await b.flush();
        write = undefined;
      }
      const run = await this.reader.read(BATCH_BYTES - b.bytes);
      if (!run) break;
      if (this.opts.signal?.aborted) throw this.opts.signal.reason;
      if (write?.end !== run.at) {
        write = { data: [], end: run.at };
        b.steps.push({ op: ['writeAt', false, item.kernel, write.data, run.at], what: 'write', source: item });
      }
      write.data.push(...run.pieces);
      write.end += run.length;
      end = write.end;
      b.bytes += run.length;
    }
    // Holes at the end: the size is set.
    if (end < e.size) b.steps.push({ op: ['truncate', false, item.kernel, e.size], what: 'write', source: item });
    b.steps.push(...this.metadata(item));
    this.totals.files++;
  }

  /**
   * Owner first (it clears set-id bits), then mode, then extended
   * attributes (a chown drops security.capability; an ACL sets the group
   * bits), times last. All tolerant: what the filesystem cannot hold
   * becomes a warning.
   */
  private metadata(item: Item): Step[] {
    const e = item.entry;
    const step = (what: string, op: BatchOp): Step => ({ op, what, source: item });
    const steps = [step('owner', ['lchown', true, item.kernel, this.opts.uid ?? e.uid, this.opts.gid ?? e.gid])];
    if (item.kind !== 'symlink') steps.push(step('mode', ['chmod', true, item.kernel, e.mode]));
    const xattrs = this.opts.xattrs === false ? [] : this.xattrs(item);
    if (xattrs.length) steps.push(step('extended attributes', ['setXattrs', true, item.kernel, packXattrs(xattrs)]));
    steps.push(step('timestamps', ['lutimes', true, item.kernel, e.atimeNs ?? e.mtimeNs, e.mtimeNs]));
    return steps;
  }

  /**
   * The archive's attributes a file can have (see xattrs.ts), and its
   * ACLs: the raw system.posix_acl_* attribute where the archive has it
   * (GNU tar --xattrs, fs2tar), else GNU tar's or libarchive's text.
   */
  private xattrs(item: Item): { name: Buffer; value: Buffer }[] {
    const e = item.entry;
    const out = [...e.xattrs]
      .filter(([name]) => fileOwn(name) && (name !== 'system.posix_acl_default' || item.kind === 'dir'))
      .map(([name, value]) => ({ name: Buffer.from(name, 'latin1'), value }));
    const acls: ['access' | 'default', string | undefined][] = [
      ['access', e.acl.access],
      ['default', item.kind === 'dir' ? e.acl.default : undefined],
    ];
    for (const [which, text] of acls) {
      const name = `system.posix_acl_${which}`;
      if (text === undefined || e.xattrs.has(name)) continue;
      try {
        out.push({ name: Buffer.from(name), value: aclFromText(text, this.lookupId) });
      } catch (err) {
        this.warnings.add('ACL', this.show(item), (err as Error).message);
      }
    }
    return out;
  }

  /** A directory the archive has left: its metadata, now that its contents are in. */
  private close(dir: OpenDir): void {
    if (dir.item) this.batches.steps.push(...this.metadata(dir.item));
  }

  /**
   * The kernel path of a parent directory that is not the one the archive
   * is in: resolved in the image (symlinks followed inside it), created
   * when missing. Waits for the batches, which may be creating it.
   */
  private async parent(key: string): Promise<Buffer> {
    if (key === '') return this.dest;
    const known = this.parents.get(key);
    if (known) return known;
    await this.batches.settle();
    const image = Buffer.concat([this.mount.imagePath(this.dest), slash, Buffer.from(key, 'latin1')]);
    let resolved: Buffer;
    try {
      resolved = await resolve(this.mount, image, true);
      const parts = resolved.toString('latin1').split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) await this.ensureDir(Buffer.from(`/${parts.slice(0, i).join('/')}`, 'latin1'));
    } catch (e) {
      throw this.mount.explain(e);
    }
    const kernel = this.mount.path(resolved);
    if (this.parents.size >= PARENT_CACHE) this.parents.clear();
    this.parents.set(key, kernel);
    return kernel;
  }

  /** A directory at image path p, made (mode 755) if nothing is there. */
  private async ensureDir(p: Buffer): Promise<void> {
    const kernel = this.mount.path(p);
    try {
      const kind = kindOf((await this.k.lstat(kernel)).mode);
      if (kind !== 'dir') throw new LklfsError(`cannot extract into ${this.mount.image}:${p.toString()}: it is a ${KIND_NAMES[kind]}, not a directory`);
      return;
    } catch (e) {
      if (!isSystemError(e) || e.code !== 'ENOENT') throw e;
    }
    await this.k.mkdir(kernel, 0o755);
    await this.k.chmod(kernel, 0o755);
    if (this.opts.uid !== undefined || this.opts.gid !== undefined)
      await this.k.lchown(kernel, this.opts.uid ?? -1, this.opts.gid ?? -1).catch(() => undefined);
  }

  /**
   * A container layer's whiteout: .wh.NAME removes NAME, .wh..wh..opq
   * empties its directory, of what was there before this archive (an
   * archive's own entries are not hidden by its own whiteouts).
   */
  private async whiteout(parentKey: string, name: Buffer): Promise<void> {
    await this.batches.settle();
    const open = this.open.find((d) => d.key === parentKey);
    const mine = open?.names ?? new Set<string>();
    let dir: Buffer;
    try {
      dir = open?.kernel ?? (await this.parentIfThere(parentKey));
    } catch (err) {
      if (isSystemError(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return;
      throw this.mount.explain(err);
    }
    const targets = name.equals(OPAQUE)
      ? (await this.k.readdirStat(dir, false)).map((d) => d.name)
      : [name.subarray(WHITEOUT.length)];
    try {
      for (const t of targets) if (t.length && !mine.has(t.toString('latin1'))) await this.remove(Buffer.concat([dir, slash, t]));
    } catch (err) {
      throw this.mount.explain(err);
    }
    this.parents.clear();
    this.totals.whiteouts++;
  }

  /** A parent directory for a whiteout: resolved, never created. */
  private async parentIfThere(key: string): Promise<Buffer> {
    const image = Buffer.concat([this.mount.imagePath(this.dest), slash, Buffer.from(key, 'latin1')]);
    const kernel = this.mount.path(await resolve(this.mount, image, true));
    if (kindOf((await this.k.lstat(kernel)).mode) !== 'dir') throw errnoError(-20 /* ENOTDIR */, 'lstat', kernel.toString());
    return kernel;
  }

  /** Removes what is at kernel path p, a directory with everything in it. */
  private async remove(p: Buffer): Promise<void> {
    let kind: FileKind;
    try {
      kind = kindOf((await this.k.lstat(p)).mode);
    } catch (e) {
      if (isSystemError(e) && e.code === 'ENOENT') return;
      throw e;
    }
    if (kind !== 'dir') {
      await this.k.unlink(p);
      return;
    }
    const entries = await this.k.readdirStat(p, false);
    const files: BatchOp[] = [];
    for (const d of entries) {
      const child = Buffer.concat([p, slash, d.name]);
      if (kindOf(d.stat.mode) === 'dir') await this.remove(child);
      else files.push(['unlink', false, child]);
    }
    for (let i = 0; i < files.length; i += BATCH_ENTRIES) {
      const r = await this.k.batch(files.slice(i, i + BATCH_ENTRIES));
      const failed = r.results.findIndex((ret) => ret < 0);
      if (failed >= 0) throw errnoError(r.results[failed] as number, 'unlink', ((files[i + failed] as BatchOp)[2] as Buffer).toString());
    }
    await this.k.rmdir(p);
  }

  private async runBatch(steps: Step[], items: Item[]): Promise<void> {
    try {
      await runSteps(this.k, steps, this.hooks, this.warnings, this.opts.signal);
    } catch (e) {
      throw this.mount.explain(e);
    }
    if (this.opts.created) for (const item of items) this.opts.created(this.mount.imagePath(item.kernel));
    this.opts.progress?.(this.totals);
  }

  private readonly hooks: StepHooks<Item> = {
    show: (item) => this.show(item),
    replace: (step) => this.replace(step),
    // What the filesystem cannot hold at all (symlinks, device nodes,
    // fifos or hard links on FAT): left out, one warning per kind.
    refused: (step) => {
      const op = step.op[0];
      if (op === 'mkdir' || op === 'writeFile') return false;
      this.warnings.add(op === 'link' ? 'hard link' : KIND_NAMES[step.source.kind], this.show(step.source), 'EPERM');
      return true;
    },
    done: (step, ret) => {
      if (step.op[0] === 'writeFile' || step.op[0] === 'writeAt') this.totals.bytes += ret;
    },
  };

  /** An entry is in the way: merged into, or removed (see inTheWay). */
  private async replace(step: Step): Promise<'merged' | 'removed'> {
    const there = kindOf((await this.k.lstat(step.source.kernel)).mode);
    const where = `${this.mount.image}:${this.show(step.source)}`;
    if (inTheWay(there, step.source.kind, where) === 'merge') return 'merged';
    await this.k.unlink(step.source.kernel);
    return 'removed';
  }

  private show(item: Item): string {
    return this.mount.imagePath(item.kernel).toString();
  }
}

/** A member name's components, "." and empty ones dropped; null when one is "..". */
function components(name: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== 0x2f) continue;
    const part = name.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) return null;
    out.push(part);
  }
  return out;
}

function joinKey(parts: Buffer[]): string {
  return parts.map((p) => p.toString('latin1')).join('/');
}

/** Whether the entry at key is inside the directory at dir ("" holds everything but itself). */
function isBelow(key: string, dir: string): boolean {
  if (dir === '') return key !== '';
  return key.length > dir.length && key.startsWith(dir) && key.charCodeAt(dir.length) === 0x2f;
}

/** Unpacks the archive reader reads into image directory dest. */
export async function extractTar(
  mount: Mount,
  reader: TarReader,
  dest: string,
  opts: TarInOptions = {},
): Promise<{ totals: TarInTotals; warnings: string[] }> {
  const destImage = await resolve(mount, dest, true).catch((e: unknown) => Promise.reject(mount.explain(e)));
  let kind: FileKind | undefined;
  try {
    kind = kindOf((await mount.kernel.native.lstat(mount.path(destImage))).mode);
  } catch (e) {
    if (!isSystemError(e) || (e.code !== 'ENOENT' && e.code !== 'ENOTDIR')) throw mount.explain(e);
  }
  if (kind !== 'dir') throw new UsageError(`${mount.image}: destination ${dest} is not a directory in the image`);
  const job = new TarIn(mount, reader, mount.path(destImage), opts);
  await job.run();
  return { totals: job.totals, warnings: job.summary() };
}
