import * as Flags from '@oclif/core/flags';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { ImageCommand, imageFlags, memFlag } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { writeOut } from '../cli/output.js';
import { writeTar, type TarOptions, type TarResult, type WriteArchive } from '../engine/tar-out.js';
import { resolve } from '../engine/walk-image.js';
import { kindOf } from '../engine/modes.js';
import { counts } from '../cli/progress.js';
import { LklfsError, UsageError } from '../errors.js';
import { describe, type Mount } from '../kernel/kernel.js';

export default class Fs2tar extends ImageCommand {
  static override summary = "Write a filesystem image's whole tree as a tar archive";
  static override description = `Writes everything in the image to ARCHIVE ("-": standard output) as a
POSIX (pax) tar archive, as GNU tar --format=posix --xattrs --acls
--numeric-owner would of the mounted filesystem; the image is only read.
Names are relative ("etc/passwd"), the root directory is the entry "./"
(so extracting it restores the root's owner, mode and times). Owners are
numeric; modification and access times keep their nanoseconds; extended
attributes keep their exact bytes (SCHILY.xattr.*), ACLs are also
written as GNU tar's SCHILY.acl.* text; hard links become links to the
first name archived; files with holes are stored in GNU tar's sparse
format (1.0), which GNU tar and libarchive extract with the holes.
Sockets cannot be archived: they are left out with a warning. Extract
everything with
  tar --xattrs --xattrs-include='*' --acls --numeric-owner -xpf ARCHIVE`;
  static override examples = [
    'lklfs fs2tar -t ext4 -i rootfs.img rootfs.tar',
    'lklfs fs2tar -t ext4 -i disk.img -P 2 - | zstd > rootfs.tar.zst',
  ];
  static override args = {
    archive: argument({ description: 'the tar file to write; "-" for standard output', required: true }),
  };
  static override flags = {
    ...imageFlags,
    // Measured on a 23,000-entry, 1.6 GiB tree: 1.06 s with 128 MiB, 1.37 s
    // with 64 (the whole tree went through the kernel's page cache, as it
    // still does on filesystems other than ext4 and XFS, whose data is read
    // from the image on the host); without lkl_prefault the bigger kernel costs
    // no memory (only the pages it uses count, and the walk drops its caches).
    mem: memFlag(128),
    root: Flags.string({
      description: 'archive only this directory of the image; its contents become ./',
      default: '/',
    }),
    'selinux-contexts': Flags.string({
      description:
        'also write to this file a "PATH CONTEXT" line for each entry archived with an SELinux label (security.selinux), PATH from the archive\'s root ("/etc/passwd")',
    }),
  };

  async run(): Promise<TarResult> {
    const { args, flags } = await this.parse(Fs2tar);
    const archive = args.archive;
    if (archive === '-' && this.jsonEnabled())
      throw new UsageError('--json writes its result to standard output: give the archive a file name');
    if (archive === '-' && process.stdout.isTTY)
      throw new UsageError('refusing to write an archive to a terminal; give a file or redirect standard output');
    const image = flags['filesystem-image'];
    const contexts = flags['selinux-contexts'];
    if (archive !== '-' && (await sameFile(archive, image))) throw new UsageError(`the archive ${archive} is the image itself`);
    if (contexts !== undefined && (await sameFile(contexts, image)))
      throw new UsageError(`the SELinux contexts file ${contexts} is the image itself`);
    if (contexts !== undefined && archive !== '-' && (contexts === archive || (await sameFile(contexts, archive))))
      throw new UsageError(`the SELinux contexts file ${contexts} is the archive`);
    const result = await this.progress('archiving', (update) =>
      this.withImage(flags, { readOnly: true }, async ({ mount, signal }) => {
        const root = await archiveRoot(mount, flags.root);
        const opts: TarOptions = { root, signal, progress: (entries, bytes) => update(counts(entries, bytes)) };
        if (contexts === undefined) return archiveTo(archive, mount, opts);
        const list = new LineFile(await JobFile.create(contexts));
        return list.file.during(async () => {
          const r = await archiveTo(archive, mount, { ...opts, contexts: (lines) => list.add(lines) });
          await list.flush();
          return r;
        });
      }),
    );
    this.printWarnings(result.warnings);
    this.summary(`archived ${counts(result.entries, result.bytes)}`);
    return result;
  }
}

/** The image directory to archive, symlinks on the way followed inside the image. */
async function archiveRoot(mount: Mount, path: string): Promise<Buffer> {
  let root: Buffer;
  let kind: string;
  try {
    root = await resolve(mount, path, true);
    kind = kindOf((await mount.kernel.native.lstat(mount.path(root))).mode);
  } catch (e) {
    throw mount.explain(e);
  }
  if (kind !== 'dir') throw new UsageError(`--root ${path}: not a directory in ${mount.image}`);
  return root;
}

/** A failed write of the archive as the user should see it. */
function writeFailed(what: string, e: unknown): LklfsError {
  return e instanceof LklfsError ? e : new LklfsError(`cannot write ${what}: ${describe(e)}`, 1, { cause: e });
}

/** A reader that goes away (EPIPE) ends the job quietly: writeOut's OutputClosed. */
const toStdout: WriteArchive = (chunk) =>
  writeOut(chunk).catch((e: unknown) => {
    throw writeFailed('standard output', e);
  });

async function tarOf(mount: Mount, write: WriteArchive, opts: TarOptions): Promise<TarResult> {
  try {
    return await writeTar(mount, write, opts);
  } catch (e) {
    throw mount.explain(e);
  }
}

/** The archive to standard output ("-") or into a file. */
async function archiveTo(archive: string, mount: Mount, opts: TarOptions): Promise<TarResult> {
  if (archive === '-') return tarOf(mount, toStdout, opts);
  const file = await JobFile.create(archive);
  return file.during(() => tarOf(mount, (chunk) => file.write(chunk), opts));
}

/**
 * A file the job writes, created or truncated once the image is mounted
 * (a mount that fails leaves it alone) and removed again if the job fails.
 */
class JobFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    /** Only a regular file is removed on failure: it may be /dev/null or a fifo. */
    private readonly regular: boolean,
  ) {}

  static async create(path: string): Promise<JobFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'w');
    } catch (e) {
      throw new LklfsError(`cannot create ${path}: ${describe(e)}`, 1, { cause: e });
    }
    return new JobFile(path, fh, (await fh.stat()).isFile());
  }

  /** In writes of at most 1 MiB (see BATCH in engine/tar-out.ts). */
  async write(chunk: Buffer): Promise<void> {
    try {
      for (let at = 0; at < chunk.length; ) at += (await this.fh.write(chunk, at, Math.min(chunk.length - at, 1 << 20))).bytesWritten;
    } catch (e) {
      throw writeFailed(this.path, e);
    }
  }

  /** Runs job, then closes the file; removes it if job fails. */
  async during<T>(job: () => Promise<T>): Promise<T> {
    try {
      const result = await job();
      await this.fh.close();
      return result;
    } catch (e) {
      await this.fh.close().catch(() => undefined);
      if (this.regular) await unlink(this.path).catch(() => undefined);
      throw e;
    }
  }
}

/** Lines for a JobFile, written in pieces of about 64 KiB rather than one by one. */
class LineFile {
  private lines: Buffer[] = [];
  private size = 0;

  constructor(readonly file: JobFile) {}

  async add(lines: Buffer): Promise<void> {
    this.lines.push(lines);
    this.size += lines.length;
    if (this.size >= 64 << 10) await this.flush();
  }

  async flush(): Promise<void> {
    const all = Buffer.concat(this.lines, this.size);
    this.lines = [];
    this.size = 0;
    await this.file.write(all);
  }
}

/** Whether two paths are one file (writing the archive over the image would destroy it). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}
