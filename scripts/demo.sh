#!/usr/bin/env bash
# The quick start's first command: set everything up, then do the main job
# on the embedded example: copy fixtures/example-rootfs into a fresh ext4
# image with `lklfs cptofs` (no root, no VM), let e2fsck judge the result,
# and look inside with `lklfs ls`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

image=${1:-example.ext4}
rm -f "$image"
truncate -s 64M "$image"
mkfs.ext4 -q -F "$image"
lklfs() { node bin/run.js "$@"; }

set -x
lklfs cptofs -t ext4 -i "$image" --owner 0 --group 0 fixtures/example-rootfs/. /
e2fsck -fn "$image"
lklfs ls -t ext4 -i "$image" -l -R /
{ set +x; } 2>/dev/null
echo
echo "demo: $image holds fixtures/example-rootfs, owned by root."
