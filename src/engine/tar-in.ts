/**
 * A tar stream unpacked into a directory of a mounted image, as it
 * arrives: no tree on the host, and memory that stays the same whatever
 * the archive's size (a batch or two of data, and the metadata of the
 * directories still waiting for it, up to OPEN_DIRS).
 *
 * Entries go to the kernel in batches (see steps.ts): the data of files
 * travels in the batch itself (writeFile, writeAt), and the next batch is
 * built while the kernel runs the one before. A directory's metadata is
 * set after its contents (they would change its times, and a default ACL
 * set first would be inherited by them): at the end, or once OPEN_DIRS
 * directories have been used since it last was. GNU tar sets it as soon
 * as the archive moves out of the directory, which suits its own
 * depth-first archives but not bsdtar's, which lists a directory's
 * subdirectories before going into each.
 *
 * Names are relative to the destination: leading "/" and "./" go, names
 * with ".." are not extracted. A parent directory the archive does not
 * have is created (mode 755); one that is a symlink in the image is
 * followed inside the image, as the paths given to every command are.
 */
import { readFileSync } from 'node:fs';
import { errnoError, isSystemError, packXattrs, type BatchOp, type HostRange } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { KIND_NAMES, kindOf, S_IFBLK, S_IFCHR, S_IFIFO, type FileKind } from './modes.js';
import { aclFromText, hostIdLookup } from './posix-acl.js';
import { clearTheWay, runSteps, type Step as StepOf, type StepHooks } from './steps.js';
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
/** Directories remembered (their metadata waiting, their names), at the most; the least recently used go first. */
const OPEN_DIRS = 65536;

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const slash = Buffer.from('/');

interface Item {
  entry: TarEntry;
  kernel: Buffer;
  kind: FileKind;
}

type Step = StepOf<Item>;

/**
 * A directory entries go into, by its path in the archive (components
 * joined by "/", latin1: names are bytes; "" is the destination).
 */
interface OpenDir {
  kernel: Buffer;
  /** The archive's metadata for it, waiting until its contents are in. */
  metadata?: Step[];
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
    // Directories' metadata comes without entries of its own: counted by its ops.
    return this.items.length >= BATCH_ENTRIES || this.steps.length >= 8 * BATCH_ENTRIES || this.bytes >= BATCH_BYTES;
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
  /** Where the current entry's steps start in the batch being built. */
  private entryStart = 0;
  private badArchive: unknown;
  /** The directory the last entry went into (the most recently used). */
  private lastDir: string | undefined;
  /** Directories entries went into, least recently used first. */
  private dirs = new Map<string, OpenDir>();
  private readonly lookupId = hostIdLookup((f) => readFileSync(f, 'utf8'));

  constructor(
    private readonly mount: Mount,
    private readonly reader: TarReader,
    private readonly dest: Buffer,
    private readonly opts: TarInOptions,
  ) {
    this.dirs.set('', { kernel: dest, names: opts.whiteouts ? new Set() : undefined });
  }

  private get k() {
    return this.mount.kernel.native;
  }

  async run(): Promise<void> {
    try {
      await this.entries();
      await this.finish();
    } catch (e) {
      // A bad archive: what came before the entry it broke off in goes
      // into the image all the same, as tar would have it.
      if (e === this.badArchive) {
        this.batches.steps.length = this.entryStart;
        await this.finish().catch(() => undefined);
      }
      throw e;
    } finally {
      await this.batches.quiesce();
    }
  }

  private async entries(): Promise<void> {
    for (;;) {
      if (this.opts.signal?.aborted) throw this.opts.signal.reason;
      this.batches.check();
      this.entryStart = this.batches.steps.length;
      const e = await this.archive(this.reader.next());
      if (!e) return;
      await this.add(e);
      if (this.batches.full) await this.batches.flush();
    }
  }

  /** The directories' metadata, and everything in the image. */
  private async finish(): Promise<void> {
    for (const dir of this.dirs.values()) {
      this.close(dir);
      if (this.batches.full) await this.batches.flush();
    }
    this.dirs.clear();
    await this.batches.settle();
  }

  /** What the reader gives; its failure marked as the archive's. */
  private async archive<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      this.badArchive = e;
      throw e;
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
    const at = place(e.name);
    if (!at) return this.skip('names with ".."', e);
    const { key, parent: parentKey, base } = at;
    if (key === '') {
      if (e.kind !== 'dir') return this.skip('not a directory, yet named as the destination itself', e);
      this.openDir(key, { entry: e, kernel: this.dest, kind: 'dir' });
      this.totals.entries++;
      return;
    }
    if (this.opts.whiteouts && base.startsWith(WHITEOUT)) return this.whiteout(parentKey, base);
    const dir = await this.dirFor(parentKey);
    dir.names?.add(base);
    const kernel = join(dir.kernel, Buffer.from(base, 'latin1'));
    const kind: FileKind = e.kind === 'link' ? 'file' : e.kind;
    const item: Item = { entry: e, kernel, kind };
    const create = (op: BatchOp): Step => ({ op, what: 'create', source: item, create: true });
    const b = this.batches;
    if (e.unknownType !== undefined) this.warnings.add('type', this.show(item), `unknown type flag "${e.unknownType}": extracted as a regular file`);
    switch (e.kind) {
      case 'dir':
        b.steps.push(create(['mkdir', false, kernel, 0o700]));
        this.openDir(key, item);
        break;
      case 'file':
        await this.file(item, create);
        break;
      case 'symlink':
        b.steps.push(create(['symlink', false, kernel, e.linkname as Buffer]), ...this.metadata(item));
        break;
      case 'link': {
        const target = place(e.linkname as Buffer);
        if (!target || !target.key) return this.skip('hard links to names with ".."', e);
        if (target.key === key) return;
        const targetDir = this.dirs.get(target.parent) ?? (await this.dirFor(target.parent));
        b.steps.push(create(['link', false, kernel, join(targetDir.kernel, Buffer.from(target.base, 'latin1'))]));
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
    let write: { data: (Buffer | HostRange)[]; end: number } | undefined = { data: [], end: 0 };
    b.steps.push(create(['writeFile', false, item.kernel, write.data, 0o600]));
    let end = 0;
    for (;;) {
      if (b.bytes >= BATCH_BYTES) {
        await b.flush();
        this.entryStart = 0;
        write = undefined;
      }
      const run = await this.archive(this.reader.read(BATCH_BYTES - b.bytes));
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

  /**
   * A directory entry: its metadata waits. One that comes again (a
   * second entry for it) gets the later metadata; the directory used
   * longest ago has its metadata set, to keep their number bounded.
   */
  private openDir(key: string, item: Item): void {
    this.track(key, item.kernel, this.metadata(item));
  }

  /** Remembers a directory (most recently used); the one used longest ago goes, its metadata set. */
  private track(key: string, kernel: Buffer, metadata?: Step[]): void {
    const names = this.dirs.get(key)?.names ?? (this.opts.whiteouts ? new Set<string>() : undefined);
    this.dirs.delete(key);
    this.dirs.set(key, { kernel, metadata, names });
    // Now the most recent: the last directory used is to be moved up again.
    this.lastDir = undefined;
    if (this.dirs.size <= OPEN_DIRS) return;
    const [oldest, dir] = this.dirs.entries().next().value as [string, OpenDir];
    this.dirs.delete(oldest);
    this.close(dir);
  }

  /** A directory whose contents are in (as far as we know): its metadata. */
  private close(dir: OpenDir): void {
    if (dir.metadata) this.batches.steps.push(...dir.metadata);
  }

  /** The directory at key, to put an entry in: the most recently used from now. */
  private async dirFor(key: string): Promise<OpenDir> {
    const known = this.dirs.get(key);
    if (known && key === this.lastDir) return known;
    this.lastDir = key;
    if (known) {
      this.dirs.delete(key);
      this.dirs.set(key, known);
      return known;
    }
    this.track(key, await this.parent(key));
    return this.dirs.get(key) as OpenDir;
  }

  /**
   * The kernel path of a directory the archive has not (or no longer)
   * given: resolved in the image (symlinks followed inside it), created
   * when missing. Waits for the batches, which may be creating it.
   */
  private async parent(key: string): Promise<Buffer> {
    if (key === '') return this.dest;
    await this.batches.settle();
    const image = join(this.mount.imagePath(this.dest), Buffer.from(key, 'latin1'));
    let resolved: Buffer;
    try {
      resolved = await resolve(this.mount, image, true);
      const parts = resolved.toString('latin1').split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) await this.ensureDir(Buffer.from(`/${parts.slice(0, i).join('/')}`, 'latin1'));
    } catch (e) {
      throw this.mount.explain(e);
    }
    return this.mount.path(resolved);
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
  private async whiteout(parentKey: string, name: string): Promise<void> {
    await this.batches.settle();
    let open = this.dirs.get(parentKey);
    if (!open) {
      try {
        this.track(parentKey, await this.parentIfThere(parentKey));
      } catch (err) {
        if (isSystemError(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return;
        throw this.mount.explain(err);
      }
      open = this.dirs.get(parentKey) as OpenDir;
    }
    const mine = open.names ?? new Set<string>();
    try {
      const targets =
        name === OPAQUE ? (await this.k.readdirStat(open.kernel, false)).map((d) => d.name.toString('latin1')) : [name.slice(WHITEOUT.length)];
      for (const t of targets) {
        if (!t || mine.has(t)) continue;
        await this.remove(join(open.kernel, Buffer.from(t, 'latin1')));
        this.forget(parentKey ? `${parentKey}/${t}` : t);
      }
    } catch (err) {
      throw this.mount.explain(err);
    }
    this.totals.whiteouts++;
  }

  /** Directories at key and under it are gone from the image. */
  private forget(key: string): void {
    for (const k of [...this.dirs.keys()]) if (k === key || k.startsWith(`${key}/`)) this.dirs.delete(k);
  }

  /** A parent directory for a whiteout: resolved, never created. */
  private async parentIfThere(key: string): Promise<Buffer> {
    const image = join(this.mount.imagePath(this.dest), Buffer.from(key, 'latin1'));
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
      const child = join(p, d.name);
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
    replace: (step) => clearTheWay(this.mount, step.source.kernel, step.source.kind),
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

  private show(item: Item): string {
    return this.mount.imagePath(item.kernel).toString();
  }
}

/**
 * Where a member name puts its entry: its path relative to the
 * destination ("." and empty components dropped, "" for the destination
 * itself), its parent's and its last component, as latin1 strings (names
 * are bytes); null when a component is "..".
 */
function place(name: Buffer): { key: string; parent: string; base: string } | null {
  const kept: string[] = [];
  for (const part of name.toString('latin1').split('/')) {
    if (part === '..') return null;
    if (part !== '' && part !== '.') kept.push(part);
  }
  const base = kept.pop() ?? '';
  const parent = kept.join('/');
  return { key: parent ? `${parent}/${base}` : base, parent, base };
}

/** dir/name, for a dir that may be "/" or end in one. */
function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat(dir[dir.length - 1] === 0x2f ? [dir, name] : [dir, slash, name]);
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
