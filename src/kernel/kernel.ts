/**
 * The kernel this process runs (there can be only one, and it cannot be
 * restarted): boot, attach images as disks, mount them, halt. Exits of the
 * process in between (an uncaught exception, a signal the command turned
 * into an exit) still unmount every filesystem cleanly.
 */
import { binding, isSystemError, type Binding, type KPath } from './binding.js';
import { LklfsError } from '../errors.js';

/** The kernel's RAM when not given: see the --mem flag (cli/image-command.ts). */
export const DEFAULT_MEM_MIB = 64;

export interface BootOptions {
  /** The kernel's RAM in MiB (default DEFAULT_MEM_MIB). */
  memMiB?: number;
  /** Back the RAM with host memory from the start: faster bulk writes. */
  prefault?: boolean;
  /** Wall clock at boot, in seconds since the epoch (reproducible images). */
  epoch?: number;
  /** The kernel's messages on stderr as it prints them, up to info level. */
  printk?: boolean;
}

export interface MountOptions {
  fsType: string;
  /** 0: the whole image; N: its MBR or GPT partition N. */
  partition?: number;
  readOnly: boolean;
  /** Filesystem options, as for mount -o. */
  options?: string;
}

/** A mounted filesystem: paths inside it are the image's paths. */
export class Mount {
  constructor(
    readonly kernel: Kernel,
    readonly image: string,
    readonly disk: number,
    readonly partition: number,
    readonly root: string,
    readonly readOnly: boolean,
    readonly fsType: string,
    /** The mount options it was mounted with. */
    readonly options: string,
    /** Mounted read-only without replaying a journal that needed it. */
    readonly unreplayed = false,
  ) {}

  /** The kernel's path for a path inside the image ('/' is its root). */
  path(inImage: KPath): Buffer {
    const rel = Buffer.isBuffer(inImage) ? inImage : Buffer.from(inImage);
    const sep = rel[0] === 0x2f ? '' : '/';
    return Buffer.concat([Buffer.from(this.root + sep), rel]);
  }

  /** The image's path for a kernel path under this mount (others pass as they are). */
  imagePath(kernelPath: KPath): Buffer {
    const path = Buffer.from(kernelPath);
    const root = Buffer.from(this.root);
    if (!path.subarray(0, root.length).equals(root)) return path;
    return path.length === root.length ? Buffer.from('/') : path.subarray(root.length);
  }

  async unmount(): Promise<void> {
    await this.kernel.unmount(this);
  }

  /**
   * A kernel or host error as the user should see it: "open
   * rootfs.img:/etc/x: ENOSPC: no space left on device". Others pass.
   */
  explain(e: unknown): Error {
    if (!isSystemError(e)) return e as Error;
    const where = e.path?.startsWith(this.root) ? `${this.image}:${this.imagePath(e.path).toString()}` : e.path;
    return new LklfsError(`${e.syscall}${where ? ` ${where}` : ''}: ${describe(e)}`, 1, { cause: e });
  }
}

/** The option that mounts each journaling filesystem without log replay. */
const NO_REPLAY: Record<string, string> = {
  ext3: 'norecovery',
  ext4: 'norecovery',
  xfs: 'norecovery',
  btrfs: 'rescue=nologreplay',
  f2fs: 'norecovery',
};

let current: Kernel | undefined;

export class Kernel {
  private mounts = new Set<Mount>();
  private halted = false;

  private constructor(readonly native: Binding) {}

  /** Boots the kernel; once per process. */
  static async boot(opts: BootOptions = {}): Promise<Kernel> {
    if (current) throw new LklfsError('the kernel was already started in this process');
    const native = binding();
    // Messages more urgent than info (loglevel=6) reach the log buffer,
    // never the terminal: a failed mount is explained by what the
    // filesystem said. With printk they are also shown as they come, at
    // the kernel's default level, info included ("EXT4-fs (lkl0): mounted
    // filesystem ..."), as LKL's tools show them with -p.
    if (opts.printk) native.echoLog(true);
    const args = [`mem=${opts.memMiB ?? DEFAULT_MEM_MIB}M`, `loglevel=${opts.printk ? 7 : 6}`];
    if (opts.prefault) args.push('lkl_prefault');
    if (opts.epoch !== undefined) args.push(`lkl_epoch=${Math.floor(opts.epoch)}`);
    process.once('exit', () => native.shutdown());
    try {
      await native.boot(args.join(' '));
    } catch (e) {
      throw new LklfsError(`cannot boot the kernel: ${(e as Error).message}${logTail(native)}`, 1, { cause: e });
    }
    current = new Kernel(native);
    return current;
  }

  /**
   * Attaches an image file and mounts it. A read-only mount opens the image
   * read-only: nothing in this process can write to it.
   */
  async mount(image: string, opts: MountOptions): Promise<Mount> {
    const partition = opts.partition ?? 0;
    let disk: number;
    try {
      disk = await this.native.addDisk(image, opts.readOnly);
    } catch (e) {
      if (isSystemError(e) && e.code === 'EAGAIN')
        throw new LklfsError(`image ${image} is in use: another process has it open ${opts.readOnly ? 'for writing' : ''}`.trim(), 1, {
          cause: e,
        });
      throw new LklfsError(`cannot open image ${image}: ${describe(e)}`, 1, { cause: e });
    }
    this.native.takeLog();
    let root: string;
    let options = opts.options ?? '';
    let unreplayed = false;
    try {
      try {
        root = await this.native.mount(disk, partition, opts.fsType, opts.readOnly, options);
      } catch (e) {
        // A journal that needs replaying cannot be replayed on a read-only
        // image: read the filesystem as of its last checkpoint instead.
        const noReplay = NO_REPLAY[opts.fsType];
        if (!opts.readOnly || !noReplay || !isSystemError(e) || e.code !== 'EROFS') throw e;
        options = [opts.options, noReplay].filter(Boolean).join(',');
        root = await this.native.mount(disk, partition, opts.fsType, true, options);
        unreplayed = true;
      }
    } catch (e) {
      const what = partition ? `partition ${partition} of ${image}` : image;
      const why = logTail(this.native);
      // Detached again: the image is closed, its lock let go.
      await this.native.removeDisk(disk).catch(() => undefined);
      throw new LklfsError(`cannot mount ${what} as ${opts.fsType}: ${describe(e)}${why}`, 1, { cause: e });
    }
    const m = new Mount(this, image, disk, partition, root, opts.readOnly, opts.fsType, options, unreplayed);
    this.mounts.add(m);
    // Some filesystems take a read-write mount and quietly make it read-only
    // (squashfs, iso9660, an ext4 with features this kernel cannot write):
    // better said now than at the first write.
    if (!opts.readOnly && (await this.native.statfs(root)).readOnly) {
      const why = logTail(this.native);
      await this.unmount(m);
      throw new LklfsError(`cannot write to ${image}: the kernel mounted its ${opts.fsType} filesystem read-only${why}`);
    }
    return m;
  }

  /**
   * Unmounts m, runs change (which may grow the image file and its
   * partition table: the kernel has let go of the filesystem, and it is
   * clean on disk), then attaches the image again, so that the kernel sees
   * its new size and table, and mounts it back at the same place with the
   * same options. The image stays open and locked throughout. When change
   * or the mount fails, m is left unmounted and detached.
   */
  async remount(m: Mount, change: () => Promise<void>): Promise<void> {
    const n = this.native;
    n.takeLog();
    try {
      await n.umount(m.disk, m.partition);
    } catch (e) {
      throw this.failure(`cannot unmount ${m.image}`, e);
    }
    this.mounts.delete(m);
    let attached = true;
    let changed = false;
    try {
      await change();
      changed = true;
      attached = false;
      const disk = await n.reattachDisk(m.disk);
      attached = true;
      // The lowest free slot: ours, unless a lower one was let go.
      if (disk !== m.disk) throw new LklfsError(`${m.image} came back as disk ${disk}, not ${m.disk}`);
      n.takeLog();
      const root = await n.mount(m.disk, m.partition, m.fsType, m.readOnly, m.options);
      this.mounts.add(m);
      if (root !== m.root) throw new LklfsError(`${m.image} was mounted back at ${root}, not ${m.root}`);
    } catch (e) {
      if (this.mounts.has(m)) await this.unmount(m).catch(() => undefined);
      else if (attached) await n.removeDisk(m.disk).catch(() => undefined);
      throw !changed || e instanceof LklfsError ? e : this.failure(`cannot mount ${m.image} again`, e);
    }
  }

  /**
   * An error from the kernel as a one-line failure of what ("cannot grow
   * ..."), with the kernel's own last messages; call takeLog() before the
   * call that failed so that only its messages are quoted.
   */
  failure(what: string, e: unknown): LklfsError {
    return new LklfsError(`${what}: ${describe(e)}${logTail(this.native)}`, 1, { cause: e });
  }

  async unmount(m: Mount): Promise<void> {
    if (!this.mounts.delete(m)) return;
    try {
      await this.native.umount(m.disk, m.partition);
      await this.native.removeDisk(m.disk);
    } catch (e) {
      throw new LklfsError(`cannot unmount ${m.image}: ${describe(e)}${logTail(this.native)}`, 1, { cause: e });
    }
  }

  /** Unmounts what is still mounted, syncs and stops the kernel. */
  async halt(): Promise<void> {
    if (this.halted) return;
    let failure: unknown;
    for (const m of [...this.mounts]) {
      try {
        await this.unmount(m);
      } catch (e) {
        failure ??= e;
      }
    }
    this.halted = true;
    await this.native.halt();
    if (failure) throw failure;
  }
}

/** "ENOENT: no such file or directory" without the syscall and path. */
export function describe(e: unknown): string {
  if (isSystemError(e)) return e.message.replace(/, [A-Za-z_0-9]+( '.*')?$/s, '');
  return e instanceof Error ? e.message : String(e);
}

/** The kernel's last messages, indented, for an error that it explains. */
function logTail(native: Binding): string {
  const lines = native
    .takeLog()
    .split('\n')
    .map((l) => l.replace(/^\[\s*[\d.]+\]\s*/, '').trim())
    .filter((l) => l && !/^reboot:/.test(l));
  return lines.length ? `\n  kernel: ${lines.slice(-3).join('\n  kernel: ')}` : '';
}
