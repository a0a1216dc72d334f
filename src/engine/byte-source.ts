/**
 * A stream of bytes read in exact amounts, for parsing an archive as it
 * arrives: what has been read is let go, so memory stays at what one
 * request needs whatever the stream's length, and the position of the
 * next byte is known for messages ("at byte 123456").
 *
 * From a pipe, everything passes through here (StreamSource). From a
 * regular file (FileSource), only headers are read here: file data is
 * handed on as a range of the file (HostRange), which the binding copies
 * into the image without it ever reaching JS.
 */
import { readSync } from 'node:fs';
import type { HostRange } from '../kernel/binding.js';

/** The stream failed (a read error, a decompressor that gave up) at byte position. */
export class SourceError extends Error {
  constructor(
    readonly position: number,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'SourceError';
  }
}

export interface ByteSource {
  /** The stream offset of the next byte to be taken. */
  readonly position: number;
  /** Bytes read ahead and not yet taken (after a fill that came up short: all there is). */
  readonly available: number;
  /** Waits until n bytes can be taken, or the stream ends: whether there are n. */
  fill(n: number): Promise<boolean>;
  /** n bytes, after fill(n), as a Buffer the caller may keep. */
  take(n: number): Buffer;
  /**
   * Up to max bytes of data, at least one unless the stream has ended
   * (then none): Buffers, or ranges of the file that holds them, unread.
   */
  takeData(max: number): Promise<(Buffer | HostRange)[]>;
  /** Skips up to n bytes: how many there were. */
  skip(n: number): Promise<number>;
  /** Goes to the end of the stream (reading a pipe to its end). */
  drain(): Promise<void>;
}

export class StreamSource implements ByteSource {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private head = 0;
  private buffered = 0;
  private ended = false;
  position = 0;

  constructor(private readonly input: AsyncIterator<Buffer>) {}

  get available(): number {
    return this.buffered;
  }

  async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.input.next();
      } catch (e) {
        throw new SourceError(this.position + this.buffered, e);
      }
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
    return this.buffered >= n;
  }

  /** n buffered bytes as one Buffer (copied only when they span chunks). */
  take(n: number): Buffer {
    const chunk = this.chunks[0];
    if (chunk && chunk.length - this.head >= n) {
      const out = chunk.subarray(this.head, this.head + n);
      this.consume(n);
      return out;
    }
    return Buffer.concat(this.takePieces(n), n);
  }

  async takeData(max: number): Promise<Buffer[]> {
    if (!(await this.fill(1))) return [];
    return this.takePieces(Math.min(max, this.buffered));
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n && (await this.fill(1))) {
      const len = Math.min(n - skipped, this.buffered);
      this.takePieces(len);
      skipped += len;
    }
    return skipped;
  }

  async drain(): Promise<void> {
    while (await this.fill(1)) this.takePieces(this.buffered);
  }

  /** n buffered bytes as the pieces of the chunks they are in (no copy). */
  private takePieces(n: number): Buffer[] {
    const out: Buffer[] = [];
    while (n > 0) {
      const chunk = this.chunks[0] as Buffer;
      const len = Math.min(n, chunk.length - this.head);
      out.push(chunk.subarray(this.head, this.head + len));
      this.consume(len);
      n -= len;
    }
    return out;
  }

  private consume(n: number): void {
    this.head += n;
    this.buffered -= n;
    this.position += n;
    if (this.head === (this.chunks[0] as Buffer).length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

/**
 * Headers are read a window at a time, with plain synchronous reads: the
 * file is mostly in the page cache, and the kernel works on its own
 * threads meanwhile. 16 KiB holds an entry's headers and often the next
 * few entries' too.
 */
const WINDOW = 16 << 10;

export class FileSource implements ByteSource {
  position = 0;
  /** Bytes [start, start + length) of the file, read last. */
  private window = Buffer.allocUnsafe(WINDOW);
  private start = 0;
  private length = 0;

  /** An open regular file from its start; size (now) is where it ends. */
  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  get available(): number {
    return Math.max(0, this.start + this.length - this.position);
  }

  async fill(n: number): Promise<boolean> {
    if (this.position >= this.start && this.position + n <= this.start + this.length) return true;
    const want = Math.min(Math.max(n, WINDOW), this.size - this.position);
    if (want > this.window.length) this.window = Buffer.allocUnsafe(want);
    let got = 0;
    try {
      for (let r = -1; got < want && r !== 0; got += r) r = readSync(this.fd, this.window, got, want - got, this.position + got);
    } catch (e) {
      throw new SourceError(this.position + got, e);
    }
    this.start = this.position;
    this.length = got;
    return got >= n;
  }

  /** A copy: the window is read into again. */
  take(n: number): Buffer {
    const at = this.position - this.start;
    this.position += n;
    return Buffer.from(this.window.subarray(at, at + n));
  }

  async takeData(max: number): Promise<HostRange[]> {
    const length = Math.min(max, this.size - this.position);
    if (length <= 0) return [];
    const range = { fd: this.fd, offset: this.position, length };
    this.position += length;
    return [range];
  }

  async skip(n: number): Promise<number> {
    const skipped = Math.max(0, Math.min(n, this.size - this.position));
    this.position += skipped;
    return skipped;
  }

  async drain(): Promise<void> {
    this.position = Math.max(this.position, this.size);
  }
}
