/**
 * An archive's bytes as a tar stream, whatever it was compressed with:
 * plain, gzip, xz or zstd, told by the magic number at its start.
 *
 * gzip is Node's own zlib. xz and zstd go through the host's `xz` and
 * `zstd` programs, in a pipe: they are the reference implementations
 * (every format feature, integrity checks), they decompress on a core of
 * their own while this process parses and writes, and they are in every
 * distribution (xz-utils is needed to build the kernel anyway; setup.sh
 * installs zstd). Node 20 has neither; the npm ports are either native
 * addons with a build of their own or JavaScript/WebAssembly that would
 * decompress on the thread that also feeds the kernel.
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { LklfsError } from '../errors.js';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd';

const MAGIC: [Compression | string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  // Known, not read: said so rather than "not a tar archive".
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
  ['lzip', [0x4c, 0x5a, 0x49, 0x50]],
];

/** The host programs, and the Debian packages that have them. */
const TOOLS: Record<'xz' | 'zstd', { args: string[]; pkg: string }> = {
  // -T0: xz 5.4 decompresses multi-block files on every core.
  xz: { args: ['-dc', '-T0'], pkg: 'xz-utils' },
  zstd: { args: ['-dcq'], pkg: 'zstd' },
};

/** Decompressed chunks are asked for in pieces of this size. */
const CHUNK = 1 << 20;

export interface TarStream {
  compression: Compression;
  chunks: AsyncIterator<Buffer>;
  /** Stops what runs on behalf of the stream (a decompressor), for a job that ends early. */
  close(): void;
}

/** The compression an archive's first bytes (6 are enough) show; undefined for none. */
export function compressionOf(start: Buffer): string | undefined {
  return MAGIC.find(([, magic]) => magic.every((b, i) => start[i] === b))?.[0];
}

/** Opens input (label names it in messages) as a tar stream. */
export async function tarStream(input: Readable, label: string): Promise<TarStream> {
  const source = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < 6 && !ended) {
    let r: IteratorResult<Buffer>;
    try {
      r = await source.next();
    } catch (e) {
      throw new LklfsError(`cannot read ${label}: ${(e as Error).message}`, 1, { cause: e });
    }
    if (r.done) ended = true;
    else {
      head.push(r.value);
      length += r.value.length;
    }
  }
  const start = Buffer.concat(head);
  const found = compressionOf(start);
  async function* whole(): AsyncGenerator<Buffer> {
    yield* head;
    if (ended) return;
    for (let r = await source.next(); !r.done; r = await source.next()) yield r.value;
  }
  const close = () => input.destroy();
  if (found === undefined) return { compression: 'none', chunks: whole(), close };
  if (found === 'gzip') return gunzip(whole(), label, close);
  if (found === 'xz' || found === 'zstd') return hostTool(found, whole(), label, close);
  throw new LklfsError(`${label} is compressed with ${found}, which tar2fs does not read: decompress it into a pipe (${found} -dc ${label} | lklfs tar2fs ...)`);
}

function failed(label: string, how: string, why: string): LklfsError {
  return new LklfsError(`cannot decompress ${label} (${how}): ${why}`);
}

function gunzip(compressed: AsyncGenerator<Buffer>, label: string, closeInput: () => void): TarStream {
  const z = createGunzip({ chunkSize: CHUNK });
  const feed = Readable.from(compressed, { objectMode: false });
  feed.on('error', (e) => z.destroy(e));
  feed.pipe(z);
  async function* out(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of z) yield chunk as Buffer;
    } catch (e) {
      if (e instanceof LklfsError) throw e;
      throw failed(label, 'gzip', (e as Error).message);
    }
  }
  return {
    compression: 'gzip',
    chunks: out(),
    close: () => {
      feed.destroy();
      z.destroy();
      closeInput();
    },
  };
}

function hostTool(tool: 'xz' | 'zstd', compressed: AsyncGenerator<Buffer>, label: string, closeInput: () => void): TarStream {
  const child = spawn(tool, TOOLS[tool].args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const feed = Readable.from(compressed, { objectMode: false });
  // A decompressor that stops reading (it failed, or the archive is done)
  // breaks the pipe: its exit status is what tells.
  child.stdin.on('error', () => undefined);
  let inputError: Error | undefined;
  feed.on('error', (e) => {
    inputError = e;
    child.kill();
  });
  feed.pipe(child.stdin);
  async function* out(): AsyncGenerator<Buffer> {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const { code, signal, error } = await exited;
    if (inputError) throw inputError;
    if (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${tool} is not installed (Debian package ${TOOLS[tool].pkg})` : error.message;
      throw failed(label, tool, why);
    }
    if (code !== 0) throw failed(label, tool, stderr.trim().split('\n').pop() || `${tool} exited with ${code ?? signal}`);
  }
  return {
    compression: tool,
    chunks: out(),
    close: () => {
      feed.destroy();
      child.kill();
      closeInput();
    },
  };
}
