/**
 * The native binding (native/, lklfs.node): the Linux kernel running in
 * this process. Every call but the synchronous ones runs on a thread of
 * the binding's own and returns a promise; failures are errors shaped like
 * Node's fs errors (code, errno, syscall, path). Paths are the kernel's
 * (mount points included) as strings or raw bytes.
 */
import { createRequire } from 'node:module';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';

export type KPath = string | Buffer;

export interface KStat {
  dev: number;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdevMajor: number;
  rdevMinor: number;
  size: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface Xattr {
  name: string;
  value: Buffer;
}

export interface DirEntry {
  name: Buffer;
  stat: KStat;
  /** Symlinks: the target's bytes. */
  target?: Buffer;
  /** When asked for. */
  xattrs?: Xattr[];
  /** The contents of a small regular file, when asked for. */
  data?: Buffer;
}

export interface TarBatch {
  /** The archive's next bytes fill the Buffer's first used bytes. */
  used: number;
  /** The archive is complete. */
  done: boolean;
  /** Non-zero: the next entry's headers alone need a Buffer this large. */
  need: number;
  /** Entries archived so far, and their file data in bytes. */
  entries: number;
  bytes: number;
  /** Of those bytes, how many were read from the image on the host (native/src/extent_reader.h). */
  direct: number;
  /** Sockets left out so far (tar cannot hold them), and the first one's name. */
  sockets: number;
  socket?: Buffer;
  /** A file no longer the size it had (and that size): the archive stops there. */
  changed?: Buffer;
  changedSize?: number;
  /** With withContexts: "PATH CONTEXT\n" for each entry in these bytes that has an SELinux label. */
  contexts?: Buffer;
}

export interface StatFs {
  type: number;
  blockSize: number;
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  /** Mounted read-only (ST_RDONLY). */
  readOnly: boolean;
}

/**
 * One call for batch(): [name, tolerant, ...args]. A tolerant op that fails
 * with EPERM or EOPNOTSUPP does not stop the batch.
 */
export type BatchOp =
  | ['mkdir', boolean, KPath, number]
  | ['symlink', boolean, KPath, KPath]
  | ['link', boolean, KPath, KPath]
  | ['mknod', boolean, KPath, number, number, number]
  | ['lchown', boolean, KPath, number, number]
  | ['chmod', boolean, KPath, number]
  | ['lutimes', boolean, KPath, bigint, bigint]
  | ['unlink', boolean, KPath];

export interface BatchResult {
  /** Per op run: its result or a negative errno; a stop ends the list. */
  results: number[];
}

export interface HostEntry {
  name: Buffer;
  stat: KStat;
  /** Symlinks: the target's bytes. */
  target?: Buffer;
}

/** TreeCopyIn's options. */
export interface TreeCopyInOptions {
  /** Owner and group for every entry; -1: the source's. */
  uid: number;
  gid: number;
  xattrs: boolean;
  /** security.selinux for every entry, instead of the source's. */
  selinux?: Buffer;
  /** Return each created entry's kernel path (for -v). */
  listCreated: boolean;
}

/** What to do with the entry a step stopped at. */
export type TreeResume = 'retry' | 'merge' | 'skip';

export interface TreeStep {
  /** Running totals of the whole copy. */
  totals: { entries: number; files: number; bytes: number; hardlinks: number };
  /** Metadata not kept: [what ("owner", "mode", ...), kernel path, negative errno]. */
  warnings: [string, Buffer, number][];
  /** Kernel paths created in this step, when listCreated. */
  created: Buffer[];
  /** Every entry copied. */
  done: boolean;
  /** Entries this step went past (a big file's data pieces count): 0, no progress. */
  taken: number;
  /**
   * Where the step stopped: the call that failed, on which path; host: a
   * failure on the host side (path is a host path); create: the call that
   * makes the entry, whose source has mode; bytes: what the entry being
   * copied takes on the host. Nothing is left open in the kernel: the
   * filesystem may be unmounted (and grown) before the next step.
   */
  stop?: { errno: number; syscall: string; path: Buffer; create: boolean; host: boolean; mode: number; bytes: number };
}

/**
 * Host trees copied into the kernel in steps of a few thousand entries,
 * each one trip (native/src/tree_in.cc); the host side is walked and read
 * ahead on a thread of its own from construction on.
 */
export interface TreeCopyIn {
  step(resume?: TreeResume): Promise<TreeStep>;
  /** Stops the walk and closes what is open; always called, last. */
  close(): Promise<void>;
}

/** TarCopyIn's options. */
export interface TarCopyInOptions {
  /** Owner and group for every entry; -1: the archive's. */
  uid: number;
  gid: number;
  xattrs: boolean;
  /** Stop at container-layer whiteouts (.wh.NAME) rather than extract them. */
  whiteouts: boolean;
  /** Return each created entry's kernel path (for -v). */
  listCreated: boolean;
}

/** What came of the entry a TarCopyIn step stopped at. */
export interface TarResume {
  /** An entry in the way was removed (retry), is a directory (merge), or the entry is left out (skip). */
  action?: 'retry' | 'merge' | 'skip';
  /** The directory found or made for a parent key: [key, kernel path]. */
  dir?: [Buffer, Buffer];
  /** Keys of directories gone from the image (and everything under them). */
  forget?: Buffer[];
  /** The entry's ACLs from their text: [attribute name, value]. */
  acl?: [Buffer, Buffer][];
}

export interface TarStep {
  /** Running totals of the whole job. */
  totals: { entries: number; files: number; bytes: number; hardlinks: number };
  /** Metadata not kept: [what ("owner", "mode", ...), kernel path, negative errno]. */
  warnings: [string, Buffer, number][];
  /** Entries of a type flag the reader does not know, extracted as files: [kernel path, flag]. */
  types: [Buffer, string][];
  /** Entries left out: [why, member name]. */
  skipped: [string, Buffer][];
  /** Kernel paths created in this step, when listCreated. */
  created: Buffer[];
  /** The whole archive is in, directories' metadata included. */
  done: boolean;
  /** It ended without its two zero blocks. */
  endedWithoutMarker: boolean;
  /** A call failed: create, the call that makes the entry, of the kind in mode. */
  stop?: { errno: number; syscall: string; path: Buffer; create: boolean; mode: number };
  /** Stopped at a parent directory the archive has not given: its key (path under the destination). */
  parent?: Buffer;
  /** Stopped at a whiteout: .wh.NAME in the directory at key (dir: its kernel path, names: what the archive put there). */
  whiteout?: { key: Buffer; name: Buffer; dir?: Buffer; names: Buffer[] };
  /** Stopped at ACL text (for the entry at kernel path) to turn into attributes. */
  acl?: { path: Buffer; access?: string; default?: string };
  /** The archive is bad, or could not be read: what and where. Everything before it is in. */
  archiveError?: string;
}

/**
 * A tar archive unpacked into a kernel directory in steps of a few
 * thousand entries, each one trip (native/src/tar_in.cc); the archive is
 * read, decompressed and parsed ahead on a thread of its own from
 * construction on.
 */
export interface TarCopyIn {
  step(resume?: TarResume): Promise<TarStep>;
  /** Stops the reading and closes what is open; always called, last. */
  close(): Promise<void>;
}

/** TreeCopyOut's options. */
export interface TreeCopyOutOptions {
  /** Owner and group for every entry; -1: none given. */
  uid: number;
  gid: number;
  xattrs: boolean;
  /** Running as root: the image's owners, device nodes, privileged attributes. */
  root: boolean;
}

export interface TreeOutStep {
  /** Running totals of the whole copy. */
  totals: { entries: number; files: number; bytes: number; hardlinks: number };
  /** Metadata the host did not take: [what ("owner", "mode", ...), host path, negative errno]. */
  warnings: [string, Buffer, number][];
  /** Entries left out (sockets; device nodes when not root): [mode, kernel path]. */
  skipped: [number, Buffer][];
  /** Every entry copied. */
  done: boolean;
  /**
   * Where the step stopped: the call that failed, on which path (a host
   * path, or a kernel path for a failure reading the image); create: the
   * call that makes the entry on the host, whose source (a kernel path)
   * has mode.
   */
  stop?: { errno: number; syscall: string; path: Buffer; create: boolean; source: Buffer; mode: number };
}

/**
 * Kernel trees copied to the host in steps of a few thousand entries,
 * each one trip (native/src/tree_out.cc).
 */
export interface TreeCopyOut {
  step(resume?: TreeResume): Promise<TreeOutStep>;
  /** Closes what is open; always called, last. */
  close(): Promise<void>;
}

export interface Binding {
  boot(cmdline: string): Promise<number>;
  isRunning(): boolean;
  /** The kernel's log since the last call. */
  takeLog(): string;
  /** Also write each kernel message to stderr as it is printed. */
  echoLog(on: boolean): void;
  addDisk(image: KPath, readOnly: boolean): Promise<number>;
  /**
   * 1 once the image could be locked as addDisk locks it (exclusive: by
   * nobody else; shared: by no writer), 0 if timeoutMs passed first. Works
   * without booting: it waits for another process to let go of the image.
   */
  waitImage(image: KPath, exclusive: boolean, timeoutMs: number): Promise<number>;
  mount(disk: number, partition: number, fsType: string, readOnly: boolean, options: string): Promise<string>;
  umount(disk: number, partition: number): Promise<number>;
  /** Detaches an unmounted disk and closes its image (and its lock). */
  removeDisk(disk: number): Promise<number>;
  /**
   * Detaches an unmounted disk and attaches its image again, keeping the
   * open file and its lock: the kernel reads the image's size and
   * partition table anew. Resolves to the disk's id.
   */
  reattachDisk(disk: number): Promise<number>;
  halt(): Promise<number>;
  /** Unmounts everything and halts, synchronously: for process exit. */
  shutdown(): void;

  lstat(path: KPath): Promise<KStat>;
  readlink(path: KPath): Promise<Buffer>;
  getXattrs(path: KPath): Promise<Xattr[]>;
  /**
   * A directory's entries sorted by name bytes, each with its lstat; with
   * dataLimit, also the contents of regular files up to that size (as many
   * as fit in 8 MiB).
   */
  readdirStat(path: KPath, withXattrs: boolean, dataLimit?: number): Promise<DirEntry[]>;
  mkdir(path: KPath, mode: number): Promise<number>;
  symlink(target: KPath, path: KPath): Promise<number>;
  link(existing: KPath, path: KPath): Promise<number>;
  mknod(path: KPath, mode: number, major: number, minor: number): Promise<number>;
  lchown(path: KPath, uid: number, gid: number): Promise<number>;
  chmod(path: KPath, mode: number): Promise<number>;
  lutimes(path: KPath, atimeNs: bigint, mtimeNs: bigint): Promise<number>;
  lsetxattr(path: KPath, name: string, value: Buffer): Promise<number>;
  unlink(path: KPath): Promise<number>;
  rmdir(path: KPath): Promise<number>;
  rename(from: KPath, to: KPath): Promise<number>;
  statfs(path: KPath): Promise<StatFs>;
  sync(): Promise<number>;
  /**
   * Small files read whole, in one trip: null for one that is no longer
   * the size given (the caller reads it the usual way and sees why).
   */
  readFiles(paths: Buffer[], sizes: number[]): Promise<(Buffer | null)[]>;
  /**
   * The tree at path as a POSIX tar archive, made by the binding
   * (native/src/tar_out.cc): openTar starts it (files up to smallFile
   * bytes are read whole; withContexts: SELinux labels listed too; files
   * are read from the image on the host where the filesystem allows it:
   * disk is the mount's disk, -1 for none, and start where its filesystem
   * begins in the image, in bytes), each readTar fills the Buffer with its
   * next bytes, closeTar ends it (always: it closes what the walk holds
   * open). One readTar at a time.
   */
  openTar(path: KPath, smallFile: number, withContexts: boolean, disk: number, start: number): number;
  readTar(tar: number, into: Buffer): Promise<TarBatch>;
  closeTar(tar: number): Promise<number>;

  open(path: KPath, flags: number, mode: number): Promise<number>;
  close(fd: number): Promise<number>;
  /** Reads until length bytes or end of file; position -1: the file offset. */
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  write(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  fsync(fd: number): Promise<number>;
  /**
   * ioctl(fd, request, arg): arg is the request's struct, which the kernel
   * reads and/or fills as the request number says (see engine/ioctl.ts).
   */
  ioctl(fd: number, request: number, arg: Buffer): Promise<number>;
  constants: Record<
    | 'O_RDONLY'
    | 'O_WRONLY'
    | 'O_RDWR'
    | 'O_CREAT'
    | 'O_EXCL'
    | 'O_TRUNC'
    | 'O_APPEND'
    | 'O_DIRECTORY'
    | 'O_NOFOLLOW'
    | 'O_NONBLOCK'
    | 'S_IFMT'
    | 'S_IFREG'
    | 'S_IFDIR'
    | 'S_IFLNK'
    | 'S_IFCHR'
    | 'S_IFBLK'
    | 'S_IFIFO'
    | 'S_IFSOCK',
    number
  >;

  /**
   * Makes what is in flight stop soon: copies at their next 1 MiB piece,
   * batches at their next op, with ECANCELED. For an interrupted job.
   */
  cancel(): void;
  /** A host file's whole content into a new kernel file; holes kept. */
  copyIn(hostPath: KPath, path: KPath, mode: number): Promise<number>;
  /** A kernel file's whole content into a new host file; holes kept. */
  copyOut(path: KPath, hostPath: KPath, mode: number): Promise<number>;

  /**
   * Runs ops in order on one kernel thread. The first path is the one acted
   * on; the second a symlink's target, a link's existing name.
   */
  batch(ops: BatchOp[]): Promise<BatchResult>;
  /** [host path, kernel path] pairs: each host tree copied as that kernel path. */
  TreeCopyIn: new (roots: [KPath, KPath][], options: TreeCopyInOptions) => TreeCopyIn;
  /** [kernel path, host path] pairs: each kernel tree copied as that host path. */
  TreeCopyOut: new (roots: [KPath, KPath][], options: TreeCopyOutOptions) => TreeCopyOut;
  /** The archive open at fd (isFile: a regular file, read from its start; else a pipe), label its name in messages, into kernel directory dest. */
  TarCopyIn: new (fd: number, isFile: boolean, label: string, dest: KPath, options: TarCopyInOptions) => TarCopyIn;
  /** A host directory's entries sorted by name bytes, each with its lstat. */
  hostReaddirStat(path: KPath): Promise<HostEntry[]>;
  hostGetXattrs(path: KPath): Promise<Xattr[]>;
  hostSetXattr(path: KPath, name: string, value: Buffer): Promise<number>;
  hostLutimes(path: KPath, atimeNs: bigint, mtimeNs: bigint): Promise<number>;
}

/**
 * FUSE mounts (native/src/fuse_serve.cc), in builds made where libfuse3's
 * headers were; libfuse3 itself is loaded by the first fuseMount().
 */
export interface FuseBinding {
  /**
   * Mounts the kernel's directory root on the host's mountpoint and serves
   * it on threads of the binding's own; args are libfuse's (-o ...). A
   * failure is explained by fuseLog().
   */
  fuseMount(root: string, mountpoint: string, args: string[]): Promise<number>;
  /** Settles once the mount is over (unmounted or stopped) and its files in the kernel are closed. */
  fuseWait(): Promise<number>;
  /** The host's cached writes flushed to the mount, then serving stopped (the host mount is detached). */
  fuseStop(): Promise<number>;
  /** libfuse's messages since the last call. */
  fuseLog(): string;
}

/** The binding's FUSE side, or undefined if it was built without. */
export function fuseBinding(native: Binding): FuseBinding | undefined {
  const b = native as Binding & Partial<FuseBinding>;
  return typeof b.fuseMount === 'function' ? (b as Binding & FuseBinding) : undefined;
}

/** An error from the kernel or the host, as the binding reports them. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export function isSystemError(e: unknown): e is SystemError {
  return e instanceof Error && typeof (e as Partial<SystemError>).errno === 'number';
}

let loaded: Binding | undefined;

/**
 * Loads lklfs.node once; it holds the one kernel this process may run.
 * node-gyp-build picks a local build (native/build/Release: a checkout, or
 * an install that built from source) before the prebuilt addon the package
 * carries (native/prebuilds/<platform>-<arch>/).
 */
export function binding(): Binding {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    let file: string;
    try {
      file = nodeGypBuild.path(join(packageRoot(), 'native'));
    } catch (e) {
      throw new Error(
        `lklfs: the native binding is not built for this machine (in a checkout: npm run setup)\n${(e as Error).message.trim()}`,
      );
    }
    loaded = require(file) as Binding;
  }
  return loaded;
}

/** An error shaped like the binding's own, for a negative errno in hand. */
export function errnoError(errno: number, syscall: string, path?: string): SystemError {
  const code = getSystemErrorName(errno);
  const text = getSystemErrorMap().get(errno)?.[1] ?? 'unknown error';
  const e = new Error(`${code}: ${text}, ${syscall}${path ? ` '${path}'` : ''}`) as SystemError;
  Object.assign(e, { code, errno, syscall, ...(path ? { path } : {}) });
  return e;
}
