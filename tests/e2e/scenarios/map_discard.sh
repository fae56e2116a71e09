#!/bin/bash
# Discard: blkdiscard of whole RBD objects on a mapped image; the range then reads back as
# zeroes, the data around it is intact, and `rbd du` shows the space given back.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd blkdiscard

IMG=rbd/trimmed
SIZE=$((64 << 20))
MiB=$((1 << 20))

# used_mib : what `rbd du` says the image uses, in MiB.
used_mib() { rbd_ du --format json "$IMG" | jq -r '.images[0].used_size / 1048576 | floor'; }

cluster_up
start_daemon
rbd_ create --size 64M "$IMG" || fail "rbd create $IMG failed"   # 4 MiB objects, fast-diff
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
q=/sys/block/$(basename "$DEV")/queue
log "discard_max_bytes $(cat "$q/discard_max_bytes"), granularity $(cat "$q/discard_granularity")"
[ "$(cat "$q/discard_max_bytes")" != 0 ] || fail "$DEV does not advertise discard"

step "write 32 MiB of random data"
t 60 dd if=/dev/urandom of="$E2E_WORK/data" bs=1M count=32 status=none
t 120 dd if="$E2E_WORK/data" of="$DEV" bs=1M oflag=direct conv=notrunc status=none || fail "write failed"
used0=$(used_mib)
log "rbd du: $used0 MiB used"
[ "$used0" -ge 32 ] || fail "rbd du shows $used0 MiB used after writing 32 MiB"

step "blkdiscard 8 MiB .. 24 MiB (four whole objects)"
t 60 blkdiscard -o $((8 * MiB)) -l $((16 * MiB)) "$DEV" || fail "blkdiscard failed"
drop_caches
dev_range_is "$DEV" /dev/zero 8 16 || fail "the discarded range does not read back as zeroes"
for r in "0 8" "24 8"; do
  dev_range_is "$DEV" "$E2E_WORK/data" $r || fail "data at ${r% *} MiB (+${r#* } MiB) changed after the discard"
done
log "the discarded range reads zeroes; the data around it is intact"

step "rbd du gives the space back"
used1=$(used_mib)
log "rbd du: $used0 MiB -> $used1 MiB"
[ "$used1" -le $((used0 - 16)) ] || fail "rbd du did not drop by the 16 MiB discarded: $used0 -> $used1 MiB"

unmap_dev "$DEV"
[ "$(rbd_sha256 "$IMG")" = "$( { head -c $((8 * MiB)) "$E2E_WORK/data"; head -c $((16 * MiB)) /dev/zero;
   tail -c +$((24 * MiB + 1)) "$E2E_WORK/data"; head -c $((32 * MiB)) /dev/zero; } | sha256sum | cut -d' ' -f1)" ] \
  || fail "rbd export does not read data, zeroes, data, zeroes"
assert_no_nbd_connected
stop_daemon
pass
