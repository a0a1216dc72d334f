import { basename, dirname, join, resolve } from 'node:path';
import { realpathSync } from 'node:fs';
import { argument, LklfsCommand } from '../cli/lklfs-command.js';
import { LklfsError, UsageError } from '../errors.js';
import { binding, isSystemError } from '../kernel/binding.js';
import { describe } from '../kernel/kernel.js';
import { findMount, FUSE_SUBTYPE, fusermountUnmount } from '../mount/host-mounts.js';

/** How long the daemon may take to write back and let go of the image. */
const WRITER_SECONDS = 120;
/** A read-only mount's image may be shared with other readers: not waited for long. */
const READER_SECONDS = 5;

export default class Umount extends LklfsCommand {
  static override summary = 'Unmount an image mounted with lklfs mount';
  static override description = `Unmounts MOUNTPOINT and returns once its daemon has written everything
back, unmounted the filesystem inside the kernel cleanly and let go of
the image: it is then consistent (fsck-clean) and free for other jobs.
A mount whose daemon was killed is unmounted too.`;
  static override examples = ['lklfs umount /mnt/rootfs'];
  static override args = {
    mountpoint: argument({ description: 'where the image is mounted', required: true }),
  };

  async run(): Promise<{ mountpoint: string; image: string }> {
    const { args } = await this.parse(Umount);
    const mountpoint = realMountpoint(args.mountpoint);
    const mount = findMount(mountpoint);
    if (!mount) throw new UsageError(`${mountpoint} is not a mount point`);
    if (mount.fsType !== `fuse.${FUSE_SUBTYPE}`)
      throw new UsageError(`${mountpoint} is not an lklfs mount (it is ${mount.fsType})`);
    await fusermountUnmount(mountpoint);
    // The daemon sees its mount gone, unmounts inside the kernel, halts
    // and closes the image: its lock goes last. A writer's lock is
    // exclusive (waited for until shared is possible); a reader's is
    // shared with any other reader, so its end is only waited for briefly.
    const seconds = mount.readOnly ? READER_SECONDS : WRITER_SECONDS;
    let free: number;
    try {
      free = await binding().waitImage(mount.source, mount.readOnly, seconds * 1000);
    } catch (e) {
      // The image is gone: nothing to wait for.
      if (isSystemError(e) && e.code === 'ENOENT') return { mountpoint, image: mount.source };
      throw new LklfsError(`cannot wait for ${mount.source}: ${describe(e)}`, 1, { cause: e });
    }
    if (!free && !mount.readOnly)
      throw new LklfsError(`${mountpoint} is unmounted, but its daemon still holds ${mount.source} after ${seconds} s`);
    return { mountpoint, image: mount.source };
  }
}

/**
 * The path the mount table shows: symlinks on the way resolved. The mount
 * point itself is not looked at (a mount whose daemon died answers
 * nothing but ENOTCONN).
 */
function realMountpoint(given: string): string {
  const abs = resolve(given);
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}
