/**
 * A tar stream unpacked into a directory of a mounted image, as it
 * arrives: no tree on the host, and memory that stays the same whatever
 * the archive's size.
 *
 * The binding does the work (native/src/tar_in.cc): a thread of its own
 * reads, decompresses and parses the archive ahead, and each step is one
 * trip that creates the next few thousand entries with their data and
 * metadata; a directory's metadata is set after its contents. This
 * decides what the binding cannot, where a step stops: a parent directory
 * the archive does not have (found in the image, a symlink there followed
 * inside it, or made, mode 755), an entry already in the image (replaced,
 * directories merged), what the filesystem refuses (left out, one warning
 * per kind), a container layer's whiteout, ACL text (names looked up on
 * the host, as GNU tar does); and what to tell the user.
 *
 * Names are relative to the destination: leading "/" and "./" go, names
 * with ".." are not extracted.
 */
import { readFileSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { errnoError, isSystemError, type BatchOp, type TarResume, type TarStep } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { KIND_NAMES, kindOf, type FileKind } from './modes.js';
import { aclFromText, hostIdLookup } from './posix-acl.js';
import { settleInImage } from './steps.js';
import { resolve } from './walk-image.js';
import { MetadataWarnings } from './warnings.js';

/** The archive: an open descriptor (the caller's), a regular file (read from its start) or not (a pipe), its name in messages. */
export interface TarArchive {
  fd: number;
  file: boolean;
  label: string;
}

export interface TarInOptions {
  /** Owner and group for everything extracted, instead of the archive's. */
  uid?: number;
  gid?: number;
  /** Extended attributes and ACLs (default true). */
  xattrs?: boolean;
  /** Apply container-layer whiteouts (.wh.NAME, .wh..wh..opq) instead of extracting them. */
  whiteouts?: boolean;
  signal?: AbortSignal;
  /** Called after each step with the running totals. */
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

/** Unlinks per batch, removing a whited-out directory. */
const BATCH_ENTRIES = 256;

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';
const slash = Buffer.from('/');

/** A name's bytes for messages: UTF-8 where it is, \xNN escapes elsewhere. */
export function showName(name: Buffer): string {
  const s = name.toString('utf8');
  if (Buffer.from(s).equals(name)) return s;
  return [...name].map((c) => (c < 0x80 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

class TarIn {
  readonly totals: TarInTotals = { entries: 0, files: 0, bytes: 0, hardlinks: 0, whiteouts: 0 };
  readonly warnings = new MetadataWarnings();
  endedWithoutMarker = false;
  /** Entries left out, by reason. */
  private skipped = new Map<string, { count: number; example: string }>();
  private readonly lookupId = hostIdLookup((f) => readFileSync(f, 'utf8'));

  constructor(
    private readonly mount: Mount,
    private readonly dest: Buffer,
    private readonly opts: TarInOptions,
  ) {}

  private get k() {
    return this.mount.kernel.native;
  }

  async run(archive: TarArchive): Promise<void> {
    const job = new this.k.TarCopyIn(archive.fd, archive.file, archive.label, this.dest, {
      uid: this.opts.uid ?? -1,
      gid: this.opts.gid ?? -1,
      xattrs: this.opts.xattrs !== false,
      whiteouts: this.opts.whiteouts === true,
      listCreated: this.opts.created !== undefined,
    });
    try {
      let resume: TarResume | undefined;
      for (;;) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        const step = await job.step(resume);
        this.report(step);
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        // What came before the bad entry is in the image, as tar would have it.
        if (step.archiveError !== undefined) throw new LklfsError(step.archiveError);
        if (step.done) {
          this.endedWithoutMarker = step.endedWithoutMarker;
          return;
        }
        resume = await this.settle(step);
      }
    } finally {
      await job.close();
    }
  }

  summary(): string[] {
    const lines = this.warnings.summary();
    for (const [why, s] of this.skipped) lines.push(`${s.count} ${s.count === 1 ? 'entry' : 'entries'} not extracted (${why}), e.g. ${s.example}`);
    if (this.endedWithoutMarker) lines.push('the archive ends without its end-of-archive blocks: it may have been cut short');
    return lines;
  }

  private report(step: TarStep): void {
    Object.assign(this.totals, step.totals);
    for (const [path, flag] of step.types) this.warnings.add('type', this.show(path), `unknown type flag "${flag}": extracted as a regular file`);
    for (const [what, path, errno] of step.warnings) this.warnings.add(what, this.show(path), getSystemErrorName(errno));
    for (const [why, name] of step.skipped) {
      const s = this.skipped.get(why);
      if (s) s.count++;
      else this.skipped.set(why, { count: 1, example: showName(name) });
    }
    for (const path of step.created) this.opts.created?.(this.mount.imagePath(path));
    this.opts.progress?.(this.totals);
  }

  /** What came of the entry a step stopped at, for the next step. */
  private async settle(step: TarStep): Promise<TarResume | undefined> {
    if (step.parent) return { dir: [step.parent, await this.parent(step.parent.toString('latin1'))] };
    if (step.whiteout) return this.whiteout(step.whiteout);
    if (step.acl) return { acl: this.acls(step.acl) };
    if (step.stop) return { action: await settleInImage(this.mount, step.stop, this.warnings) };
    return undefined;
  }

  /** The ACL text of an entry as the attributes the kernel stores; what is no valid ACL is a warning. */
  private acls(acl: NonNullable<TarStep['acl']>): [Buffer, Buffer][] {
    const out: [Buffer, Buffer][] = [];
    for (const [which, text] of [['access', acl.access], ['default', acl.default]] as const) {
      if (text === undefined) continue;
      try {
        out.push([Buffer.from(`system.posix_acl_${which}`), aclFromText(text, this.lookupId)]);
      } catch (err) {
        this.warnings.add('ACL', this.show(acl.path), (err as Error).message);
      }
    }
    return out;
  }

  /**
   * The kernel path of a directory the archive has not given: resolved in
   * the image (symlinks followed inside it), created when missing.
   */
  private async parent(key: string): Promise<Buffer> {
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
   * archive's own entries are not hidden by its own whiteouts). The
   * binding forgets the directories removed.
   */
  private async whiteout(w: NonNullable<TarStep['whiteout']>): Promise<TarResume> {
    const key = w.key.toString('latin1');
    let dir = w.dir;
    let found: [Buffer, Buffer] | undefined;
    if (!dir) {
      try {
        dir = await this.parentIfThere(key);
      } catch (err) {
        if (isSystemError(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return { action: 'skip' };
        throw this.mount.explain(err);
      }
      found = [w.key, dir];
    }
    const mine = new Set(w.names.map((n) => n.toString('latin1')));
    const name = w.name.toString('latin1');
    const forget: Buffer[] = [];
    try {
      const targets = name === OPAQUE ? (await this.k.readdirStat(dir, false)).map((d) => d.name.toString('latin1')) : [name.slice(WHITEOUT.length)];
      for (const t of targets) {
        if (!t || mine.has(t)) continue;
        await this.remove(join(dir, Buffer.from(t, 'latin1')));
        forget.push(Buffer.from(key ? `${key}/${t}` : t, 'latin1'));
      }
    } catch (err) {
      throw this.mount.explain(err);
    }
    this.totals.whiteouts++;
    return { action: 'skip', forget, dir: found };
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

  private show(kernelPath: Buffer): string {
    return this.mount.imagePath(kernelPath).toString();
  }
}

/** dir/name, for a dir that may be "/" or end in one. */
function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat(dir[dir.length - 1] === 0x2f ? [dir, name] : [dir, slash, name]);
}

/** Unpacks the archive into image directory dest. */
export async function extractTar(
  mount: Mount,
  archive: TarArchive,
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
  const job = new TarIn(mount, mount.path(destImage), opts);
  await job.run(archive);
  return { totals: job.totals, warnings: job.summary() };
}
