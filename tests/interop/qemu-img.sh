#!/bin/bash
# qemu-img convert a 64 MiB raw image (random extents with zero holes between them) into a
# memory export over nbd+unix://, then `qemu-img compare` must call them identical; after
# qemu-io changes one sector on the export, compare must report a difference (exit 1).
. "$(dirname "$0")/../lib/common.sh"
require_cmd qemu-img qemu-io

make_scratch
img="$SCRATCH/src.raw"
truncate -s 64M "$img"
for mib in 0 3 9 17 31 40 63; do
  t 30 dd if=/dev/urandom of="$img" bs=1M count=1 seek="$mib" conv=notrunc status=none
done
# A partial-sector extent, so the copy is not all whole megabytes.
printf 'rbd-nbdd' | t 10 dd of="$img" bs=1 seek=$((20 * 1048576 + 777)) conv=notrunc status=none

start_server --export name=disk,backend=memory,size=64M
target=$(uri disk)

t 120 qemu-img convert -n -f raw -O raw "$img" "$target" || fail "qemu-img convert failed"
t 120 qemu-img compare -f raw -F raw "$img" "$target" || fail "qemu-img compare: images differ (rc=$?)"

t 60 qemu-io -f raw -c 'write -P 0x5a 10M 512' "$target" >/dev/null || fail "qemu-io write failed"
rc=0; t 120 qemu-img compare -q -f raw -F raw "$img" "$target" || rc=$?
[ "$rc" = 1 ] || fail "qemu-img compare after a one-sector change: rc=$rc, expected 1 (different)"

stop_server
pass
