// SPDX-License-Identifier: GPL-2.0
// A generated tree shaped like a distribution's root filesystem, for the
// benchmarks: many small files (documentation, manual pages, package
// lists, headers), executables and libraries of every size up to a few
// MiB, library symlinks, a few hard links, deep directories. Deterministic:
// the same tree every run. makeRootfsTree(dir, scale) returns its entries
// and bytes; scale 1 is 12,866 entries and 359 MiB.
import fs from 'node:fs';
import path from 'node:path';

export function makeRootfsTree(root, scale = 1) {
	let seed = 7;
	const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
	// Sizes spread evenly on a log scale between lo and hi.
	const size = (lo, hi) => Math.round(lo * (hi / lo) ** rand());
	const block = Buffer.alloc(8 << 20);
	for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 9) * 7) & 0xff;
	let entries = 0;
	let bytes = 0;
	const dir = (p) => {
		fs.mkdirSync(path.join(root, p), { recursive: true });
		entries++;
	};
	const file = (p, n) => {
		const at = Math.floor(rand() * (block.length - n));
		fs.writeFileSync(path.join(root, p), block.subarray(at, at + n));
		entries++;
		bytes += n;
	};
	const n = (count) => Math.max(1, Math.round(count * scale));

	for (const d of ['usr/bin', 'usr/sbin', 'usr/lib/x86_64-linux-gnu', 'usr/include/linux', 'etc/default', 'var/lib/dpkg/info', 'var/log'])
		dir(d);
	for (let i = 0; i < n(900); i++) file(`usr/bin/tool${i}`, size(8 << 10, 512 << 10));
	for (let i = 0; i < n(150); i++) file(`usr/sbin/daemon${i}`, size(16 << 10, 512 << 10));
	for (let i = 0; i < n(700); i++) {
		const lib = `usr/lib/x86_64-linux-gnu/libthing${i}.so`;
		file(`${lib}.${i % 7}.${i % 3}.0`, size(8 << 10, 1 << 20));
		fs.symlinkSync(path.basename(`${lib}.${i % 7}.${i % 3}.0`), path.join(root, `${lib}.${i % 7}`));
		entries++;
	}
	for (let i = 0; i < n(5); i++) {
		fs.linkSync(path.join(root, `usr/bin/tool${i}`), path.join(root, `usr/bin/tool${i}-alias`));
		entries++;
	}
	for (let p = 0; p < n(900); p++) {
		dir(`usr/share/doc/package${p}`);
		file(`usr/share/doc/package${p}/copyright`, size(600, 20 << 10));
		file(`usr/share/doc/package${p}/changelog.Debian.gz`, size(400, 40 << 10));
		file(`var/lib/dpkg/info/package${p}.list`, size(100, 8 << 10));
		file(`var/lib/dpkg/info/package${p}.md5sums`, size(100, 8 << 10));
	}
	for (const section of ['man1', 'man3', 'man5', 'man8']) {
		dir(`usr/share/man/${section}`);
		for (let i = 0; i < n(700); i++) file(`usr/share/man/${section}/page${i}.${section.slice(3)}.gz`, size(500, 12 << 10));
	}
	for (let l = 0; l < n(60); l++) {
		dir(`usr/share/locale/lang${l}/LC_MESSAGES`);
		for (let i = 0; i < 25; i++) file(`usr/share/locale/lang${l}/LC_MESSAGES/domain${i}.mo`, size(1 << 10, 200 << 10));
	}
	for (let d = 0; d < n(40); d++) {
		dir(`usr/include/sub${d}/deeper/still`);
		for (let i = 0; i < 30; i++) file(`usr/include/sub${d}/${i % 2 ? 'deeper/' : ''}header${i}.h`, size(300, 30 << 10));
	}
	for (let i = 0; i < n(300); i++) file(`etc/${i % 5 ? '' : 'default/'}conf${i}`, size(60, 6 << 10));
	return { entries, bytes };
}
