import * as Flags from '@oclif/core/flags';
import { tmpdir } from 'node:os';
import { ImageCommand } from '../cli/image-command.js';
import { LklfsError, UsageError } from '../errors.js';
import { CASES, mkfsCheck, type CheckResult } from '../engine/mkfs-check.js';

export default class MkfsCheck extends ImageCommand {
  static override summary = 'Check which filesystems work end to end on this machine';
  static override description = `For each filesystem type (or those given with -t): makes an image with
the host's own mkfs tool, writes a small tree into it through the kernel,
runs the host's checker on the result (e2fsck -fn, btrfs check, xfs_repair
-n, fsck.vfat -n, ...) and reads the tree back through the kernel.
Read-only formats (squashfs, erofs, iso9660) are built by their tools and
read back. Types whose tools are missing are skipped, with the package to
install. Exit status 1 if any type failed. With --json, a row per type:
the outcome, each step done, the tools and their package's version.`;
  static override examples = ['lklfs mkfs-check', 'lklfs mkfs-check -t ext4 -t xfs'];
  static override flags = {
    'filesystem-type': Flags.string({
      char: 't',
      description: `a type to check (repeatable): ${CASES.map((c) => c.type).join(', ')}`,
      multiple: true,
    }),
    dir: Flags.string({ description: 'where the scratch images go', default: tmpdir() }),
  };

  async run(): Promise<{ results: CheckResult[] } | void> {
    const { flags } = await this.parse(MkfsCheck);
    const types = flags['filesystem-type'] ?? [];
    const unknown = types.filter((t) => !CASES.some((c) => c.type === t));
    if (unknown.length) throw new UsageError(`unknown filesystem type: ${unknown.join(', ')}`);
    const json = this.jsonEnabled();
    const show = (r: CheckResult) => {
      if (!json) process.stdout.write(`${r.type.padEnd(9)} ${r.outcome.padEnd(8)} ${r.detail} (${r.ms} ms)\n`);
    };
    const results = await this.withKernel({}, (kernel, signal) =>
      mkfsCheck(kernel, types, signal, show, flags.dir),
    );
    const failed = results.filter((r) => r.outcome === 'failed');
    if (json) {
      // The rows are the answer even when some failed; the status still says so.
      if (failed.length) process.exitCode = 1;
      return { results };
    }
    if (failed.length) throw new LklfsError(`${failed.map((r) => r.type).join(', ')} failed`);
  }
}
