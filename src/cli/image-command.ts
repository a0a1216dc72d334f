/**
 * What every command working on an image shares: the image flags, booting
 * the kernel, mounting, and the way out. Whatever happens in the job (an error, ^C,
 * SIGTERM, SIGHUP), the filesystem is unmounted and the kernel halted
 * before the process exits, so a write job that fails still leaves a
 * consistent filesystem behind, and errors come out as one clear line and
 * an exit status (1: the job failed, 2: bad usage, 128 + the signal's
 * number: interrupted).
 */
import * as Flags from '@oclif/core/flags';
import { constants } from 'node:os';
import { DEFAULT_MEM_MIB, describe, Kernel, type BootOptions, type Mount } from '../kernel/kernel.js';
import { LklfsError, UsageError } from '../errors.js';
import { LklfsCommand } from './lklfs-command.js';
import { probeFsType } from '../engine/probe.js';

/** --mem, the kernel's memory, with a command's own default. */
export function memFlag(defaultMiB: number) {
  return Flags.integer({ description: "the kernel's memory in MiB", default: defaultMiB, min: 32 });
}

export const imageFlags = {
  'filesystem-image': Flags.string({
    char: 'i',
    description: 'the filesystem image (a plain file)',
    required: true,
  }),
  'filesystem-type': Flags.string({
    char: 't',
    description:
      'filesystem type: ext2, ext3, ext4, btrfs, xfs, vfat, msdos, exfat, ntfs3, f2fs, iso9660, udf, squashfs, erofs, hfsplus (default: read from the image)',
  }),
  partition: Flags.integer({
    char: 'P',
    description: 'MBR or GPT partition number (0: the whole image)',
    default: 0,
    min: 0,
  }),
  // Measured (npm run bench: cptofs_mem128): 64 and 128 MiB copy a
  // rootfs-like tree equally fast, and a 1M-entry tree goes through 64;
  // cptofs backs all of it with host memory (lkl_prefault), so the
  // smaller kernel keeps the whole job under 150 MB.
  mem: memFlag(DEFAULT_MEM_MIB),
  options: Flags.string({
    description: 'filesystem mount options, as for mount -o',
  }),
  printk: Flags.boolean({
    description: "show the kernel's messages on stderr as it prints them (up to info level)",
  }),
};

/** The copy commands' own flags; whose owners they replace is "what". */
export function copyFlags(what: string) {
  return {
    owner: Flags.integer({ char: 'o', description: `owner (uid) for every copied entry, instead of ${what}`, min: 0 }),
    group: Flags.integer({ char: 'g', description: `group (gid) for every copied entry, instead of ${what}`, min: 0 }),
    xattrs: Flags.boolean({ description: 'copy extended attributes', default: true, allowNo: true }),
  };
}

/** Sources and destination as LKL's cptofs and cpfromfs take them (see engine/lkl-sources.ts). */
export function lklPathFlags(tool: string) {
  return {
    glob: Flags.boolean({
      description: `the last component of each SOURCE is a shell pattern (quote it), matched against the names in its directory; a SOURCE made only of "." and "/" is the contents of that directory (as in LKL's ${tool})`,
    }),
    into: Flags.boolean({
      description: `DEST must be an existing directory, even for one SOURCE (as in LKL's ${tool})`,
    }),
  };
}

export interface JobContext {
  mount: Mount;
  /** Aborted on SIGINT, SIGTERM or SIGHUP: the job stops at its next step. */
  signal: AbortSignal;
}

export abstract class ImageCommand extends LklfsCommand {
  /**
   * Boots the kernel, runs job, then unmounts everything and halts, always;
   * SIGINT, SIGTERM and SIGHUP (a closed terminal) abort the job's signal.
   */
  protected async withKernel<T>(
    boot: BootOptions,
    job: (kernel: Kernel, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const abort = new AbortController();
    let kernel: Kernel | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      abort.abort(new Interrupted(sig));
      // A big file in the middle of its copy stops too, not only the walk.
      kernel?.native.cancel();
    };
    for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
    try {
      kernel = await Kernel.boot(boot);
      const result = await job(kernel, abort.signal);
      await kernel.halt();
      return result;
    } catch (e) {
      // Unmounting on the way out is what keeps the image consistent.
      await kernel?.halt().catch(() => undefined);
      // Interrupted, what failed is the interruption (ECANCELED and all).
      throw abort.signal.aborted ? abort.signal.reason : e;
    } finally {
      for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    }
  }

  /** Runs job on the mounted image, then unmounts and halts, always. */
  protected async withImage<T>(
    flags: {
      'filesystem-image': string;
      'filesystem-type'?: string;
      partition: number;
      mem: number;
      options?: string;
      printk: boolean;
    },
    how: { readOnly: boolean; prefault?: boolean; epoch?: number },
    job: (ctx: JobContext) => Promise<T>,
  ): Promise<T> {
    const fsType = flags['filesystem-type'] ?? (await detect(flags['filesystem-image'], flags.partition));
    const boot = { memMiB: flags.mem, prefault: how.prefault, epoch: how.epoch, printk: flags.printk };
    return this.withKernel(boot, async (kernel, signal) => {
      const mount = await kernel.mount(flags['filesystem-image'], {
        fsType,
        partition: flags.partition,
        readOnly: how.readOnly,
        options: flags.options,
      });
      if (mount.unreplayed)
        process.stderr.write(
          `lklfs ${this.id}: warning: ${mount.image} was not unmounted cleanly and its journal cannot be replayed read-only; reading it as of its last checkpoint (the latest changes may be missing)\n`,
        );
      return job({ mount, signal });
    });
  }
}

/** The filesystem type read from the image, for a command given no -t. */
export async function detect(image: string, partition: number): Promise<string> {
  let type: string | undefined;
  try {
    type = await probeFsType(image, partition);
  } catch (e) {
    throw new LklfsError(`cannot open image ${image}: ${describe(e)}`, 1, { cause: e });
  }
  if (!type) {
    const what = partition ? `partition ${partition} of ${image}` : image;
    throw new UsageError(`cannot tell the filesystem type of ${what}: give it with -t`);
  }
  return type;
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class Interrupted extends LklfsError {
  constructor(sig: NodeJS.Signals) {
    // The shell's convention: 128 + the signal's number (130, 143, 129).
    super(`interrupted by ${sig}; the image was unmounted cleanly`, 128 + constants.signals[sig]);
  }
}
