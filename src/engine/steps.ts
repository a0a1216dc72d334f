/**
 * What a copy does about an entry already where it goes, as cp -a
 * decides (cptofs, cpfromfs and tar2fs alike).
 */
import type { Mount } from '../kernel/kernel.js';
import { LklfsError } from '../errors.js';
import { kindOf, type FileKind } from './modes.js';

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
