#!/usr/bin/env node
// LKL's cpfromfs command line, done by lklfs cpfromfs (see src/lkl-tools/tools.ts).
// Run through a link named cptofs or cpfromfs, the link's name decides, as in LKL.
import { copyToolCalled, runTool } from '../dist/cli/lkl-tools.js';

await runTool(copyToolCalled(process.argv[1] ?? '', 'cpfromfs'), process.argv.slice(2));
