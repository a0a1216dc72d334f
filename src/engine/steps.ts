/**
 * What a copy does about an entry already where it goes, as cp -a
 * decides (cptofs, cpfromfs and tar2fs alike).
 */
import { errnoError } from '../kernel/binding.js';
import type { Mount } from '../kernel/kernel.js';
import { LklfsError } from '../errors.js';
import { KIND_NAMES, kindOf, type FileKind } from './modes.js';
import type { MetadataWarnings } from './warnings.js';

const EPERM = -1;
const EEXIST = -17;

/**
 * A directory onto a directory merges, any other non-directory is
 * replaced; a directory and a non-directory never replace each other.
 */
export function inTheWay(there: FileKind, coming: FileKind, where: string): 'merge' | 'remove' {
  if (there === 'dir' && coming === 'dir') return 'merge';
  if (there === 'dir') throw new LklfsError(`cannot overwrite directory ${where} with a non-directory`);
  if (coming === 'dir') throw new LklfsError(`cannot overwrite non-directory ${where} with a directory`);
  return 'remove';
}

/**
 * Clears the way for a kind of entry coming to kernel path at: merged
 * into when both are directories, else the entry there is removed (see
 * inTheWay).
 */
export async function clearTheWay(mount: Mount, at: Buffer, coming: FileKind): Promise<'merged' | 'removed'> {
  const native = mount.kernel.native;
  const there = kindOf((await native.lstat(at)).mode);
  if (inTheWay(there, coming, `${mount.image}:${mount.imagePath(at).toString()}`) === 'merge') return 'merged';
  await native.unlink(at);
  return 'removed';
}

/** Where a step into the image stopped, as TreeCopyIn and TarCopyIn report it. */
export interface ImageStop {
  errno: number;
  syscall: string;
  path: Buffer;
  create: boolean;
  mode: number;
}

/**
 * What to do about a call into the image that failed (cptofs, tar2fs):
 * an entry in the way is replaced, or merged into when both are
 * directories (see clearTheWay); what the filesystem cannot hold at all
 * (symlinks, device nodes, fifos or hard links on FAT) is left out, one
 * warning per kind; anything else fails the job.
 */
export async function settleInImage(mount: Mount, stop: ImageStop, warnings: MetadataWarnings): Promise<'merge' | 'retry' | 'skip'> {
  const coming = kindOf(stop.mode);
  if (stop.create && stop.errno === EEXIST) {
    const cleared = await clearTheWay(mount, stop.path, coming).catch((e: unknown) => Promise.reject(mount.explain(e)));
    return cleared === 'merged' ? 'merge' : 'retry';
  }
  if (stop.create && stop.errno === EPERM && coming !== 'dir' && (coming !== 'file' || stop.syscall === 'link')) {
    warnings.add(stop.syscall === 'link' ? 'hard link' : KIND_NAMES[coming], mount.imagePath(stop.path).toString(), 'EPERM');
    return 'skip';
  }
  throw mount.explain(errnoError(stop.errno, stop.syscall, stop.path.toString()));
}
