/**
 * About how much room host trees will take in an image, for `cptofs
 * --grow` to size the image before copying: the blocks each file has on
 * the host (holes cost nothing, hard links count once), a block per
 * directory, and an inode's worth for every entry. A guess, not a bound:
 * the copy grows the image again if it falls short. What cannot be read
 * is left out here: the copy itself says what is wrong with it.
 */
import { lstat } from 'node:fs/promises';
import type { Binding, KStat } from '../kernel/binding.js';
import { kindOf } from './modes.js';

const BLOCK = 4096;
const PER_ENTRY = 512;

export async function treeBytes(k: Binding, roots: (string | Buffer)[]): Promise<number> {
  const seen = new Set<string>();
  let bytes = 0;
  const add = (st: Pick<KStat, 'mode' | 'nlink' | 'dev' | 'ino' | 'blocks'>) => {
    bytes += PER_ENTRY;
    const kind = kindOf(st.mode);
    if (kind === 'dir') bytes += BLOCK;
    if (kind !== 'file') return;
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    bytes += st.blocks * 512;
  };
  const walk = async (dir: Buffer): Promise<void> => {
    for (const e of await k.hostReaddirStat(dir).catch(() => [])) {
      add(e.stat);
      if (kindOf(e.stat.mode) === 'dir') await walk(Buffer.concat([dir, Buffer.from('/'), e.name]));
    }
  };
  for (const root of roots) {
    const st = await lstat(root, { bigint: true }).catch(() => undefined);
    if (!st) continue;
    add({ mode: Number(st.mode), nlink: Number(st.nlink), dev: Number(st.dev), ino: st.ino, blocks: Number(st.blocks) });
    if (st.isDirectory()) await walk(Buffer.from(root));
  }
  return bytes;
}
