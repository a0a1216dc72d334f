/**
 * Runs the lklfs command line: bin/run.js with the process's arguments,
 * LKL's tool names (src/lkl-tools/) with arguments they translated.
 */
// oclif by subpath: the package's index loads all of oclif (ux, help) first.
import { execute } from '@oclif/core/execute';
import { packageRoot } from '../package-root.js';

export async function main(args: string[] = process.argv.slice(2)): Promise<void> {
  // No user-installed oclif plugins: lklfs has none, and looking for them
  // reads (and warns about) a file under $HOME on every run.
  await execute({ args, loadOptions: { root: packageRoot(), userPlugins: false } });
}
