#!/usr/bin/env bash
# Builds the kernel library: Linux 6.12 with ARCH=lkl (arch/lkl here) and the
# host library, into lkl-build/out/ (a link into the cache):
#   lib/liblkl.a          kernel + host library, only lkl_* symbols global
#   include/lkl.h, include/lkl_host.h, include/lkl/...  (prefixed uapi)
# The output is cached under $LKL_CACHE_DIR keyed by the kernel source and a
# hash of everything in lkl-build/ that goes into it, so a hit takes seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${LKL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lklfs}
jobs=${LKL_BUILD_JOBS:-$(nproc)}

log() {
	echo "lkl-build: $*" >&2
}

pristine=$("$here/fetch-source.sh")
kid=$(basename "$pristine")

inputs_hash() {
	(cd "$here" && find arch patches host include scripts build.sh fetch-source.sh \
		-type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
		sha256sum | cut -c1-16
}
key="$kid-$(inputs_hash)"
out="$cache/out/$key"

if [ -f "$out/.complete" ]; then
	ln -sfn "$out" "$here/out"
	log "cached build $key"
	exit 0
fi

# The tree we build in: the pristine source plus our patch series (a copy,
# made once per series) with arch/lkl overlaid. Copies keep modification
# times, so an unchanged file never triggers a rebuild.
patches=("$here"/patches/*.patch)
if [ -e "${patches[0]}" ]; then
	phash=$(cat "${patches[@]}" | sha256sum | cut -c1-12)
	tree="$cache/src/$kid-p$phash"
	if [ ! -f "$tree/.lkl-patched" ]; then
		rm -rf "$tree" "$tree.tmp"
		cp -a "$pristine" "$tree.tmp"
		for p in "${patches[@]}"; do
			log "applying $(basename "$p")"
			patch -s -p1 -d "$tree.tmp" <"$p"
		done
		touch "$tree.tmp/.lkl-patched"
		mv "$tree.tmp" "$tree"
	fi
else
	tree="$pristine"
fi
rm -rf "$tree/arch/lkl"
cp -a "$here/arch/lkl" "$tree/arch/lkl"

obj="$cache/obj/$kid"
mkdir -p "$obj"
kmake() {
	make -s -C "$tree" O="$obj" ARCH=lkl "$@"
}

log "configuring"
kmake KCONFIG_ALLCONFIG=arch/lkl/configs/lklfs.config allnoconfig
# Every option we ask for must survive Kconfig's dependency resolution.
grep -E '^CONFIG_[A-Z0-9_]+=' "$here/arch/lkl/configs/lklfs.config" | while read -r opt; do
	grep -qxF "$opt" "$obj/.config" || { log "config option $opt was not applied"; exit 1; }
done

log "building the kernel with $jobs jobs"
kmake -j"$jobs" vmlinux

stage="$out.tmp"
rm -rf "$stage"
mkdir -p "$stage/lib" "$stage/include" "$stage/obj"

# The public entry points are exactly the functions declared in library.h;
# objcopy makes every other kernel symbol local.
exports=$(sed -n 's/^[a-z][a-z ]*[ *]\(lkl_[a-z_0-9]*\)(.*/\1/p' \
	"$here/arch/lkl/include/uapi/asm/library.h")
# The linker script discards .note.GNU-stack; without it the host linker
# would assume the kernel object needs an executable stack.
objcopy -R .eh_frame -R .eh_frame_hdr $(printf -- '-G %s ' $exports) \
	--add-section .note.GNU-stack=/dev/null --set-section-flags .note.GNU-stack=readonly \
	"$obj/vmlinux" "$stage/obj/lkl.o"

log "installing headers"
python3 "$here/scripts/install_headers.py" --src "$tree" --obj "$cache/hdr/$kid" \
	--vmlinux "$obj/vmlinux" --out "$stage/include"
cp "$here"/include/*.h "$stage/include/"

log "building the host library"
for c in "$here"/host/*.c; do
	gcc -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
		-I"$stage/include" -c "$c" -o "$stage/obj/$(basename "$c" .c).o"
done
ar rcs "$stage/lib/liblkl.a" "$stage"/obj/*.o

leaked=$(nm -g --defined-only "$stage/lib/liblkl.a" | awk 'NF == 3 { print $3 }' |
	grep -v -E '^(lkl_|LKL_)' || true)
if [ -n "$leaked" ]; then
	log "liblkl.a exports symbols outside lkl_*:"
	echo "$leaked" | head -20 >&2
	exit 1
fi

rm -rf "$stage/obj"
touch "$stage/.complete"
rm -rf "$out"
mv "$stage" "$out"
ln -sfn "$out" "$here/out"
log "built $key"
