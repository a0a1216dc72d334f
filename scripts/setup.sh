#!/usr/bin/env bash
# Prepares a fresh Debian machine for the tests and the demo: host tools
# (installed with apt when missing and we are root), node modules, and the
# kernel library (built, or taken from the cache).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_file() { # need_file PATH PACKAGE
	[ -e "$1" ] || missing+=("$2")
}
# Kernel build (and the Node binding: g++).
need gcc gcc
need g++ g++
need make make
need flex flex
need bison bison
need bc bc
need python3 python3
need xz xz-utils
need patch patch
need rsync rsync
# lklfs mount: libfuse3's headers to build the binding's FUSE side (the
# library is loaded at mount time), fusermount3 to mount and unmount.
need pkg-config pkg-config
need_file /usr/include/fuse3/fuse_lowlevel.h libfuse3-dev
need fusermount3 fuse3
# Filesystem tools the tests create and check images with.
need mkfs.ext4 e2fsprogs
need mkfs.btrfs btrfs-progs
need mkfs.xfs xfsprogs
need mkfs.vfat dosfstools
need mkfs.exfat exfatprogs
need mkfs.f2fs f2fs-tools
need mksquashfs squashfs-tools
need mkfs.erofs erofs-utils
need sfdisk fdisk
need setfattr attr
need setfacl acl
need isoinfo genisoimage
need mtype mtools
need strace strace
need mkntfs ntfs-3g
need mkudffs udftools
need git git
# The mount benchmark's reference (bench/mount.mjs).
need fuse2fs fuse2fs

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

if [ ! -d node_modules ]; then
	npm ci --no-audit --no-fund
fi

bash lkl-build/build.sh

# The Node binding links liblkl.a: rebuilt when it or its sources changed.
# So is a binding built without FUSE once libfuse3's headers are there.
addon=native/build/Release/lklfs.node
if [ ! -f "$addon" ] || [ -n "$(find lkl-build/out/lib/liblkl.a native/src native/binding.gyp -newer "$addon" -print -quit)" ] ||
	{ pkg-config --exists fuse3 2>/dev/null && ! grep -q fuseMount "$addon"; }; then
	echo "setup: building the Node binding" >&2
	npx node-gyp rebuild --directory native >/dev/null
fi

# The command line: TypeScript compiled into dist/.
npm run --silent build
