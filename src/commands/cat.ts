import { ImageCommand, imageFlags } from '../cli/image-command.js';
import { argument } from '../cli/lklfs-command.js';
import { writeOut } from '../cli/output.js';
import { resolve } from '../engine/walk-image.js';
import { isSystemError } from '../kernel/binding.js';

export default class Cat extends ImageCommand {
  static override summary = 'Print files from a filesystem image';
  static override description = `Writes the contents of each FILE in the image to standard output; the image is only read.
With --json, each file's path, size and contents (base64) as one JSON object.`;
  static override examples = ['lklfs cat -t ext4 -i rootfs.img /etc/os-release'];
  static override strict = false;
  static override args = { files: argument({ description: 'FILE...', required: true }) };
  static override flags = { ...imageFlags };

  async run(): Promise<{ files: CatFile[] } | void> {
    const { argv, flags } = await this.parse(Cat);
    const json = this.jsonEnabled() ? ([] as CatFile[]) : undefined;
    await this.withImage(flags, { readOnly: true }, async ({ mount, signal }) => {
      const k = mount.kernel.native;
      const chunk = 1 << 20;
      for (const file of argv as string[]) {
        const path = mount.path(await resolve(mount, file, true));
        const pieces: Buffer[] = [];
        // With --json the contents go into the result, whole.
        const out = json ? async (piece: Buffer) => void pieces.push(piece) : writeOut;
        try {
          // Non-blocking: a fifo in the image would wait for a writer forever.
          const fd = await k.open(path, k.constants.O_RDONLY | k.constants.O_NONBLOCK, 0);
          // The next piece is read while the last is written out; a new
          // buffer each time, as stdout may still hold the last one.
          const readAt = (at: number) => {
            const buf = Buffer.allocUnsafe(chunk);
            return k.read(fd, buf, 0, chunk, at).then((n) => buf.subarray(0, n));
          };
          let next = readAt(0);
          try {
            for (let at = 0; ; ) {
              if (signal.aborted) throw signal.reason;
              const piece = await next;
              if (piece.length === 0) break;
              at += piece.length;
              next = readAt(at);
              await out(piece);
            }
          } finally {
            // A read still in flight must end before its descriptor is closed.
            await next.catch(() => undefined);
            await k.close(fd);
          }
        } catch (e) {
          // read() knows no path: name the file.
          if (isSystemError(e) && !e.path) e.path = path.toString();
          throw mount.explain(e);
        }
        if (json) {
          const data = Buffer.concat(pieces);
          json.push({ path: file, size: data.length, dataBase64: data.toString('base64') });
        }
      }
    });
    return json && { files: json };
  }
}

interface CatFile {
  /** The path as given on the command line. */
  path: string;
  size: number;
  dataBase64: string;
}
