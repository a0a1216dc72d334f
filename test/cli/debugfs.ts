/**
 * Reading an ext2/3/4 image with debugfs (e2fsprogs), which shares no code
 * with our kernel: the metadata of many paths in one run.
 */
import { writeFileSync } from 'node:fs';
import { sh } from '../kernel/harness.js';

export interface ExtInode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  mtimeNs: bigint;
  /** Name -> value as debugfs prints it. */
  xattrs: Map<string, string>;
  fastLink?: string;
  device?: string;
}

/** stat of each path (UTF-8 names only: debugfs takes them on its command line). */
export function debugfsStat(image: string, paths: string[], scratch: string): Map<string, ExtInode> {
  const cmds = `${scratch}/debugfs.cmds`;
  writeFileSync(cmds, paths.map((p) => `stat "${p}"\n`).join(''));
  const out = sh('debugfs', ['-f', cmds, image]).stdout;
  const blocks = out.split(/^debugfs: stat /m).slice(1);
  const result = new Map<string, ExtInode>();
  blocks.forEach((block, i) => {
    const path = paths[i] as string;
    const num = (re: RegExp) => Number(re.exec(block)?.[1] ?? NaN);
    const mtime = /^ mtime: 0x([0-9a-f]+):([0-9a-f]+)/m.exec(block);
    // The extra field holds nanoseconds << 2 and two more epoch bits.
    const extra = mtime ? BigInt(`0x${mtime[2]}`) : 0n;
    const seconds = (mtime ? BigInt(`0x${mtime[1]}`) : 0n) + ((extra & 3n) << 32n);
    const xattrs = new Map<string, string>();
    const xa = /^Extended attributes:\n((?: {2}.*\n)*)/m.exec(block);
    for (const line of xa?.[1]?.split('\n') ?? []) {
      const m = /^ {2}(\S+) \(\d+\)(?: = (.*))?$/.exec(line);
      if (m?.[1]) xattrs.set(m[1], m[2] ?? '');
    }
    result.set(path, {
      type: /Type: (\w+(?: special)?)/.exec(block)?.[1] ?? '?',
      mode: parseInt(/Mode:\s+(\d+)/.exec(block)?.[1] ?? 'NaN', 8),
      uid: num(/User:\s+(\d+)/),
      gid: num(/Group:\s+(\d+)/),
      size: num(/Size: (\d+)/),
      links: num(/Links: (\d+)/),
      mtimeNs: seconds * 1_000_000_000n + (extra >> 2n),
      xattrs,
      fastLink: /Fast link dest: "(.*)"/.exec(block)?.[1],
      device: /Device major\/minor number: (\S+)/.exec(block)?.[1],
    });
  });
  return result;
}
