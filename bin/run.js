#!/usr/bin/env node
// The lklfs command line (oclif), bundled into dist/cli/ by npm run build.
import { main } from '../dist/cli/main.js';

await main();
