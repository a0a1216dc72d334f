/** Whether this machine can run lklfs mount, for the tests that need it. */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { haveTool, repoRoot } from '../kernel/harness.js';

/** Why FUSE mounts cannot be tested here; undefined when they can. */
export function fuseUnavailable(): string | undefined {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'no usable /dev/fuse';
  }
  if (!haveTool('fusermount3')) return 'no fusermount3 (Debian: fuse3)';
  const addon = join(repoRoot, 'native/build/Release/lklfs.node');
  const probe = spawnSync(process.execPath, ['-e', `process.exit(typeof require(${JSON.stringify(addon)}).fuseMount === 'function' ? 0 : 1)`]);
  if (probe.status !== 0) return 'the binding was built without FUSE (libfuse3-dev)';
  return undefined;
}
