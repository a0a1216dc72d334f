#!/usr/bin/env node
// The lklfs command line (oclif): commands are built into dist/ by npm run build.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
