#!/usr/bin/env bash
# Prints the path of a pristine, unpacked Linux 6.12.y source tree, fetching
# it first if needed. Needs no root:
#   - LKL_KERNEL_TARBALL=/path/linux-6.12.y.tar.{xz,gz}: a kernel.org tarball;
#   - otherwise Debian's linux-source-6.12 package (apt-get download), reusing
#     a .deb already in the cache so that repeated builds stay on one version.
# Trees live in $LKL_CACHE_DIR (default ~/.cache/lklfs), never in the repo.
set -euo pipefail

cache=${LKL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lklfs}
mkdir -p "$cache/dl" "$cache/src"

die() {
	echo "fetch-source: $*" >&2
	exit 1
}

if [ -n "${LKL_KERNEL_TARBALL:-}" ]; then
	[ -f "$LKL_KERNEL_TARBALL" ] || die "LKL_KERNEL_TARBALL=$LKL_KERNEL_TARBALL does not exist"
	tarball=$(readlink -f "$LKL_KERNEL_TARBALL")
	id=$(sha256sum "$tarball" | cut -c1-16)
else
	deb=$(ls -1 "$cache"/dl/linux-source-6.12_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$deb" ]; then
		echo "fetch-source: downloading linux-source-6.12 from the Debian archive" >&2
		(cd "$cache/dl" && apt-get download linux-source-6.12 >&2) ||
			die "apt-get download linux-source-6.12 failed (run 'apt-get update' first, or set LKL_KERNEL_TARBALL)"
		deb=$(ls -1 "$cache"/dl/linux-source-6.12_*.deb | sort -V | tail -n 1)
	fi
	id=$(basename "$deb" .deb | sed 's/^linux-source-6.12_//; s/_all$//; s/[^A-Za-z0-9.+-]/_/g')
	tarball=""
fi

tree="$cache/src/linux-$id"
if [ ! -f "$tree/.lkl-unpacked" ]; then
	rm -rf "$tree" "$tree.tmp"
	mkdir -p "$tree.tmp"
	if [ -z "$tarball" ]; then
		echo "fetch-source: unpacking $(basename "$deb")" >&2
		dpkg-deb --fsys-tarfile "$deb" |
			tar -x -O --wildcards '*/linux-source-6.12.tar.xz' |
			tar -x -J -C "$tree.tmp" --strip-components=1
	else
		echo "fetch-source: unpacking $tarball" >&2
		tar -x -f "$tarball" -C "$tree.tmp" --strip-components=1
	fi
	version=$(make -s -C "$tree.tmp" kernelversion 2>/dev/null) ||
		version="something that is not a kernel source tree"
	case "$version" in
	6.12.*) ;;
	*) rm -rf "$tree.tmp"; die "expected a Linux 6.12.y tree, found $version" ;;
	esac
	touch "$tree.tmp/.lkl-unpacked"
	mv "$tree.tmp" "$tree"
fi
echo "$tree"
