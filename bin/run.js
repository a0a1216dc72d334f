#!/usr/bin/env node
// The lklfs command line (oclif): commands are built into dist/ by npm run build.
// @oclif/core/execute rather than the package's index, which loads all of
// oclif (its ux and help helpers too) before anything runs.
import { execute } from '@oclif/core/execute';
import { fileURLToPath } from 'node:url';

// No user-installed oclif plugins: lklfs has none, and looking for them
// reads (and warns about) a file under $HOME on every run.
await execute({ loadOptions: { root: fileURLToPath(new URL('..', import.meta.url)), userPlugins: false } });
