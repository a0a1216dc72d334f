#!/usr/bin/env bash
# The quick start's first command: set everything up, then do the main job
# on the embedded example: copy fixtures/example-rootfs into a fresh ext4
# image through the kernel library and let e2fsck judge the result.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=lkl-build/out
gcc -O2 -I"$out/include" lkl-build/examples/cptofs.c "$out/lib/liblkl.a" -lpthread -o "$work/cptofs"

image=${1:-example.ext4}
rm -f "$image"
truncate -s 64M "$image"
mkfs.ext4 -q -F "$image"
"$work/cptofs" "$image" ext4 fixtures/example-rootfs
e2fsck -fn "$image"
echo
echo "demo: $image holds fixtures/example-rootfs; its listing, read by debugfs:"
debugfs -R 'ls -l /bin' "$image" 2>/dev/null
