#!/usr/bin/env bash
# The Node binding (native/build/Release/lklfs.node) links liblkl.a: rebuilt
# when it or the binding's sources changed, when lkl-build/out points at
# another cached kernel (a merge that changed lkl-build/: that library can
# be older than the binding, so its time alone does not tell), and when a
# binding built without FUSE (libfuse3's headers were missing) could now
# have it. Needs lkl-build/out (build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

addon=native/build/Release/lklfs.node
lib=$(readlink -f lkl-build/out/lib/liblkl.a)
linked=native/build/liblkl.path
if [ ! -f "$addon" ] || [ "$(cat "$linked" 2>/dev/null)" != "$lib" ] ||
	[ -n "$(find "$lib" native/src native/binding.gyp -newer "$addon" -print -quit)" ] ||
	{ pkg-config --exists fuse3 2>/dev/null && ! grep -q fuseMount "$addon"; }; then
	echo "build-native: building the Node binding" >&2
	npx node-gyp rebuild --directory native >/dev/null
	echo "$lib" >"$linked"
fi
