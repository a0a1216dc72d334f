// Writes oclif.manifest.json: every command's flags, arguments and help,
// so that a run loads only the command it runs (and `--version`, `--help`
// none at all). It is what `oclif manifest` writes, made with
// @oclif/core's own loader rather than the oclif packaging CLI and its
// dependencies. Run by `npm run build` after tsc, so it never goes stale.
import { Config } from '@oclif/core';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = join(root, 'oclif.manifest.json');
// oclif would read the commands from the manifest there is, not from dist/.
rmSync(file, { force: true });
const config = await Config.load({ root, userPlugins: false });
const plugin = config.getPluginsList().find((p) => p.root === config.root);
if (!plugin || Object.keys(plugin.manifest.commands).length === 0) throw new Error('oclif-manifest: no commands found; run tsc first');
writeFileSync(file, `${JSON.stringify(plugin.manifest, null, 1)}\n`);
