#!/usr/bin/env bash
# npm pack / npm publish: builds what the package carries besides its
# sources (package.json "files"): the compiled command line (dist/) with its
# oclif manifest, and the addon prebuilt for this machine's platform
# (native/prebuilds/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash lkl-build/build.sh
bash scripts/build-native.sh

# Where node-gyp-build looks (src/kernel/binding.ts, scripts/install.mjs):
# prebuilds/<platform>-<arch>/, named by tags as prebuildify names them -
# any Node with N-API (napi), glibc only (a musl machine builds its own).
# Symbols stripped: the kernel's debug information is most of the file.
target=native/prebuilds/$(node -p 'process.platform + "-" + process.arch')
rm -rf native/prebuilds
mkdir -p "$target"
objcopy --strip-all native/build/Release/lklfs.node "$target/node.napi.glibc.node"

# A clean dist/: files of deleted sources must not be packed.
rm -rf dist
npm run --silent build
