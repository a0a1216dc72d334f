/**
 * The package's root directory (where package.json is), found by walking
 * up from the running module: compiled modules sit at different depths
 * (src/kernel/ under ts-jest, dist/src/kernel/ from tsc, dist/cli/ in the
 * command line's bundle).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root === undefined) {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(dir, 'package.json'))) {
      const up = dirname(dir);
      if (up === dir) throw new Error('lklfs: cannot find the package root');
      dir = up;
    }
    root = dir;
  }
  return root;
}
