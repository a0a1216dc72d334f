// SPDX-License-Identifier: GPL-2.0
// Start-up: what a user waits for before any work is done. `lklfs
// --version` (the CLI alone), `lklfs ls` of a fresh, empty 64 MiB ext4
// image (type probe, boot, mount, list, unmount, halt) and `node -e 0`
// (Node alone) for reference; medians and bests of several runs.
import path from 'node:path';
import { lklfs, median, round, sh } from './measure.mjs';
import { freshImage, MKFS } from './jobs.mjs';

function seconds(argv) {
	const start = process.hrtime.bigint();
	sh(argv);
	return Number(process.hrtime.bigint() - start) / 1e9;
}

export function startup(work, runs) {
	const img = path.join(work, 'startup.img');
	freshImage(img, 64);
	sh([...MKFS, img]);
	const commands = {
		lklfs_version: lklfs('--version'),
		lklfs_ls_64mib_ext4: lklfs('ls', '-i', img, '/'),
		node_e_0: [process.execPath, '-e', '0'],
	};
	const result = { runs };
	for (const [name, argv] of Object.entries(commands)) {
		seconds(argv); // the first run fills the host's caches
		const t = Array.from({ length: runs }, () => seconds(argv));
		result[name] = { median_s: round(median(t)), best_s: round(Math.min(...t)) };
	}
	return result;
}
