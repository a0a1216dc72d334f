import { Args } from '@oclif/core';
import { ImageCommand, imageFlags } from '../cli/image-command.js';
import { writeOut } from '../cli/output.js';
import { imagePath } from '../engine/walk-image.js';
import { isSystemError } from '../kernel/binding.js';

export default class Cat extends ImageCommand {
  static override summary = 'Print files from a filesystem image';
  static override description = 'Writes the contents of each FILE in the image to standard output; the image is only read.';
  static override examples = ['lklfs cat -t ext4 -i rootfs.img /etc/os-release'];
  static override strict = false;
  static override args = { files: Args.string({ description: 'FILE...', required: true }) };
  static override flags = { ...imageFlags };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Cat);
    await this.withImage(flags, { readOnly: true }, async ({ mount, signal }) => {
      const k = mount.kernel.native;
      const buf = Buffer.allocUnsafe(1 << 20);
      for (const file of argv as string[]) {
        const path = mount.path(imagePath(file));
        try {
          const fd = await k.open(path, k.constants.O_RDONLY, 0);
          try {
            for (;;) {
              if (signal.aborted) throw signal.reason;
              const n = await k.read(fd, buf, 0, buf.length, -1);
              if (n === 0) break;
              // A copy: the next read reuses buf while stdout may still hold it.
              await writeOut(Buffer.from(buf.subarray(0, n)));
            }
          } finally {
            await k.close(fd);
          }
        } catch (e) {
          // read() knows no path: name the file.
          if (isSystemError(e) && !e.path) e.path = path.toString();
          throw mount.explain(e);
        }
      }
    });
  }
}
