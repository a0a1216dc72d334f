#!/usr/bin/env bash
# Prepares a fresh Debian machine for the tests and the demo: host tools
# (installed with apt when missing and we are root), node modules, and the
# kernel library (built, or taken from the cache).
set -euo pipefail
cd "$(dirname "$0")/.."

# Host tools: COMMAND PACKAGE. Build tools are what a cold build really
# runs (scripts/build-commands.txt, recorded from an execve trace, and the
# scripts themselves; test/setup/host-tools.test.ts keeps this list in step
# with both); a fresh Debian 12 has only its essential and required
# packages, Node and npm. The binding's FUSE side (lklfs mount) builds
# against libfuse3's headers. Test tools make and judge images in the tests
# (and time the benchmarks: GNU time, not the shell's keyword; tar2fs reads
# zstd archives through the host's zstd, and its tests read bsdtar's;
# lklfs mount needs fusermount3, its tests git, its benchmark fuse2fs and
# fuse-overlayfs).
build_tools=(
	gcc gcc
	g++ g++
	make make
	flex flex
	bison bison
	bc bc
	python3 python3
	xz xz-utils
	patch patch
	rsync rsync
	ar binutils
	as binutils
	ld binutils
	nm binutils
	objcopy binutils
	pkg-config pkgconf
	/usr/include/fuse3/fuse_lowlevel.h libfuse3-dev
)
test_tools=(
	mkfs.ext4 e2fsprogs
	mkfs.btrfs btrfs-progs
	mkfs.xfs xfsprogs
	mkfs.vfat dosfstools
	mkfs.exfat exfatprogs
	mkfs.f2fs f2fs-tools
	mksquashfs squashfs-tools
	mkfs.erofs erofs-utils
	sfdisk fdisk
	sgdisk gdisk
	setfattr attr
	setfacl acl
	isoinfo genisoimage
	mtype mtools
	strace strace
	mkntfs ntfs-3g
	mkudffs udftools
	/usr/bin/time time
	zstd zstd
	bsdtar libarchive-tools
	fusermount3 fuse3
	git git
	fuse2fs fuse2fs
	fuse-overlayfs fuse-overlayfs
)

# The packages of the tools in "$@" (pairs) whose command (or, given as
# an absolute path, file) is missing.
missing_packages() {
	while (($#)); do
		case $1 in
		/*) [ -e "$1" ] || echo "$2" ;;
		*) command -v "$1" >/dev/null 2>&1 || echo "$2" ;;
		esac
		shift 2
	done | sort -u
}
mapfile -t missing < <(missing_packages "${build_tools[@]}" "${test_tools[@]}")

cache=${LKL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lklfs}
have_source=$(ls "$cache"/dl/linux-source-6.12_*.deb 2>/dev/null | head -n 1 || true)

if [ "$(id -u)" = 0 ]; then
	if ((${#missing[@]})) || { [ -z "$have_source" ] && [ -z "${LKL_KERNEL_TARBALL:-}" ]; }; then
		echo "setup: apt-get update" >&2
		apt-get update -qq
	fi
	if ((${#missing[@]})); then
		echo "setup: installing ${missing[*]}" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
	fi
elif ((${#missing[@]})); then
	echo "setup: not root, so not installing: ${missing[*]} (tests needing them are skipped)" >&2
fi
# Before anything is built: a build tool still missing stops here, named,
# rather than minutes into the kernel build.
mapfile -t unbuildable < <(missing_packages "${build_tools[@]}")
if ((${#unbuildable[@]})); then
	echo "setup: the build needs these packages: apt-get install ${unbuildable[*]}" >&2
	exit 1
fi

# npm records what it installed in node_modules/.package-lock.json: a
# lock file changed since (a pull that added a dependency) installs again.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund
fi

bash lkl-build/build.sh

# The Node binding, rebuilt when liblkl.a or its sources changed.
bash scripts/build-native.sh

# The command line: TypeScript compiled into dist/src/, bundled into dist/cli/.
npm run --silent build
