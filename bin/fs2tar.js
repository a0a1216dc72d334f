#!/usr/bin/env node
// LKL's fs2tar command line, done by lklfs fs2tar (see src/lkl-tools/tools.ts).
import { runTool } from '../dist/cli/lkl-tools.js';

await runTool('fs2tar', process.argv.slice(2));
