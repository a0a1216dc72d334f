// Bundles the command line into dist/cli/ (npm run build, after tsc): one
// module per command, bin/run.js's main and LKL's tool names, sharing
// chunks of common code, oclif and its dependencies included. Node then
// reads a handful of files at start-up instead of ~170 (oclif's modules
// alone took 40 ms of a 120 ms `lklfs --version`). dist/src/ (tsc) stays
// the modules the tests and other programs import.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'cli');
const entryPoints = { main: 'src/cli/main.ts', 'lkl-tools': 'src/lkl-tools/tools.ts' };
for (const file of readdirSync(join(root, 'src', 'commands'))) {
  if (file.endsWith('.ts')) entryPoints[`commands/${file.slice(0, -3)}`] = `src/commands/${file}`;
}

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Chunks beside the entries, not under commands/ where oclif looks for commands.
  chunkNames: 'chunks/[name]-[hash]',
  // oclif's CommonJS modules call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as lklfsCreateRequire } from 'node:module'; const require = lklfsCreateRequire(import.meta.url);" },
  // Loaded at run time from node_modules: node-gyp-build finds the addon on
  // disk; typescript only by oclif's loader of .ts commands in development.
  external: ['node-gyp-build', 'typescript'],
  logLevel: 'warning',
});
