/**
 * A stream of bytes read in exact amounts, for parsing an archive as it
 * arrives: what has been read is let go, so memory stays at what one
 * request needs whatever the stream's length, and the position of the
 * next byte is known for messages ("at byte 123456").
 */
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

export class ByteSource {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private head = 0;
  private buffered = 0;
  private ended = false;
  /** The stream offset of the next byte to be taken. */
  position = 0;

  constructor(private readonly input: AsyncIterator<Buffer>) {}

  /** Bytes buffered and not yet taken. */
  get available(): number {
    return this.buffered;
  }

  /** Waits until n bytes are buffered, or the stream ends: whether there are n. */
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

  /** Whether the stream has nothing more (waits for the next chunk to know). */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** n buffered bytes as the pieces of the chunks they are in (no copy). */
  takePieces(n: number): Buffer[] {
    if (n > this.buffered) throw new RangeError(`${n} bytes asked for, ${this.buffered} buffered`);
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

  /** Skips up to n bytes, reading as it goes: how many there were. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n && (await this.fill(1))) {
      const len = Math.min(n - skipped, this.buffered);
      this.takePieces(len);
      skipped += len;
    }
    return skipped;
  }

  /** Reads what is left to the end of the stream, and drops it. */
  async drain(): Promise<void> {
    while (await this.fill(1)) this.takePieces(this.buffered);
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
