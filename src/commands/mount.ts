import * as Flags from '@oclif/core/flags';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { NOTIFY_FD, notifyReady, startDaemon } from '../cli/daemon.js';
import { ImageCommand, imageFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { LklfsError, UsageError } from '../errors.js';
import { binding, fuseBinding, type FuseBinding } from '../kernel/binding.js';
import { describe } from '../kernel/kernel.js';
import { fuseArgs } from '../mount/fuse-options.js';
import { fuseMissing, fusermountUnmount } from '../mount/host-mounts.js';

export default class Mount extends ImageCommand {
  static override summary = 'Mount a filesystem image on a directory (FUSE), without root';
  static override description = `Mounts IMAGE on MOUNTPOINT through the kernel library, so that ordinary
tools (cp, rsync, git, an editor) work on the image. Returns once the
mount is ready and serves it in the background (-f: in the foreground).
'lklfs umount MOUNTPOINT' (or fusermount3 -u) writes everything back,
unmounts the filesystem cleanly and lets go of the image; so do SIGTERM
to the daemon and ^C with -f. Owners and permissions are the image's,
enforced by the host; -o allow_other lets other users in (a normal user
needs user_allow_other in /etc/fuse.conf for it).`;
  static override examples = [
    'lklfs mount rootfs.img /mnt/rootfs',
    'lklfs mount --ro -P 2 disk.img /mnt/disk',
    'lklfs umount /mnt/rootfs',
  ];
  static override args = {
    image: argument({ description: 'the filesystem image (a plain file)', required: true }),
    mountpoint: argument({ description: 'the directory to mount it on', required: true }),
  };
  static override flags = {
    'filesystem-type': imageFlags['filesystem-type'],
    partition: imageFlags.partition,
    mem: imageFlags.mem,
    options: imageFlags.options,
    printk: imageFlags.printk,
    ro: Flags.boolean({ description: 'read-only: the image is opened read-only and never written', default: false }),
    'fuse-options': Flags.string({
      char: 'o',
      multiple: true,
      // -o a -o b, each one value: the arguments after it stay arguments.
      multipleNonGreedy: true,
      description: 'FUSE mount options, comma-separated (allow_other, allow_root, ...; ro is --ro)',
    }),
    foreground: Flags.boolean({ char: 'f', description: 'stay in the foreground until unmounted' }),
    // The daemon's own: the pipe it says "ready" on (cli/daemon.ts).
    'notify-fd': Flags.integer({ hidden: true }),
  };

  async run(): Promise<MountResult> {
    const { args, flags } = await this.parse(Mount);
    // The daemon leaves the current directory: paths are made absolute first.
    const image = resolve(args.image);
    const mountpoint = resolve(args.mountpoint);
    checkMountpoint(mountpoint);
    const fuse = fuseArgs(image, flags.ro, flags['fuse-options'] ?? []);
    const missing = fuseMissing();
    if (missing) throw new LklfsError(`cannot mount on ${mountpoint}: ${missing}`);
    if (!fuseBinding(binding()))
      throw new LklfsError(
        "this lklfs was built without FUSE: libfuse3's headers were missing (Debian: apt-get install libfuse3-dev, then npm run build:native)",
      );
    if (!flags.foreground) {
      const status = await startDaemon(['--foreground', `--notify-fd=${NOTIFY_FD}`]);
      if (status !== 0) this.exit(status);
      return { image, mountpoint, readOnly: fuse.readOnly, served: 'daemon' };
    }
    await this.withImage({ ...flags, 'filesystem-image': image }, { readOnly: fuse.readOnly }, async ({ mount, signal }) => {
      const served = fuseBinding(mount.kernel.native) as FuseBinding;
      try {
        await served.fuseMount(mount.root, mountpoint, fuse.args);
      } catch (e) {
        const why = served.fuseLog().trim().replace(/^fuse: /gm, '');
        throw new LklfsError(`cannot mount ${image} on ${mountpoint}: ${why || describe(e)}`, 1, { cause: e });
      }
      // A signal may have come while mounting: then it ends the mount now.
      if (signal.aborted) void stop(served, mountpoint);
      else signal.addEventListener('abort', () => void stop(served, mountpoint), { once: true });
      if (flags['notify-fd'] !== undefined) notifyReady(flags['notify-fd']);
      // A daemon holds no directory busy.
      process.chdir('/');
      await served.fuseWait();
    });
    return { image, mountpoint, readOnly: fuse.readOnly, served: 'foreground' };
  }
}

/** --json: what was mounted where; a daemon's answer comes once the mount is ready, -f's once it is over. */
interface MountResult {
  image: string;
  mountpoint: string;
  readOnly: boolean;
  served: 'daemon' | 'foreground';
}

function checkMountpoint(mountpoint: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(mountpoint).isDirectory();
  } catch (e) {
    throw new UsageError(`mount point ${mountpoint}: ${describe(e)}`);
  }
  if (!isDir) throw new UsageError(`mount point ${mountpoint} is not a directory`);
}

/**
 * Ends the mount on a signal as lklfs umount does; if something holds it
 * busy, what the host cached is written back and the mount detached (its
 * users then get errors).
 */
async function stop(served: FuseBinding, mountpoint: string): Promise<void> {
  try {
    await fusermountUnmount(mountpoint);
  } catch {
    await served.fuseStop().catch(() => undefined);
  }
}
