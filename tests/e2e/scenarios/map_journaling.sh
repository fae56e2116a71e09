#!/bin/bash
# An image with every feature, journaling included: the kernel's own RBD driver (krbd)
# refuses to map it, rbd-nbdd maps it. fio writes with crc32c verification, the journal
# records the writes (`rbd journal status`: the client's commit position has entries), and
# after the unmap `rbd export` reads exactly what the device read.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

IMG=rbd/journaled
SIZE=$((64 << 20))
FEATURES=layering,exclusive-lock,object-map,fast-diff,deep-flatten,journaling

cluster_up
start_daemon
rbd_ create --size 64M --image-feature "$FEATURES" "$IMG" || fail "rbd create $IMG failed"
feats=$(rbd_ info --format json "$IMG" | jq -r '.features | join(",")')
log "$IMG features: $feats"
[[ ",$feats," == *,journaling,* ]] || fail "$IMG lacks journaling: $feats"

step "krbd must refuse the image"
load_rbd
rc=0
t 60 rbd -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" map -o noudev "$IMG" > "$E2E_WORK/krbd-map.out" 2>&1 || rc=$?
sed 's/^/    krbd: /' "$E2E_WORK/krbd-map.out" >&2
if [ "$rc" = 0 ]; then
  t 60 rbd -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" unmap -o noudev "$IMG" || true
  fail "krbd mapped an image with journaling: the scenario's premise does not hold"
fi
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "rbd map (krbd) timed out instead of refusing"
grep -qiE 'feature' "$E2E_WORK/krbd-map.out" \
  || fail "krbd refused the image (rc $rc), but not for its features"
dmesg | grep -E 'rbd: .*(unsupported|feature)' | tail -n 2 | sed 's/^/    dmesg: /' >&2 || true
[ -z "$(ls /sys/bus/rbd/devices 2>/dev/null)" ] || fail "krbd left a device behind"
log "krbd refused it (rbd map exit $rc)"

step "rbd-nbdd maps it; fio randwrite + crc32c verify"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
fio_verify journal-4k "$DEV" 4M
fio_verify journal-64k "$DEV" 16M --bs=64k --offset=16M --ioengine=libaio

step "the journal holds the writes"
t 60 rbd -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" journal status --image "$IMG" \
  > "$E2E_WORK/journal-status.txt" 2>&1 || { cat "$E2E_WORK/journal-status.txt" >&2; fail "rbd journal status failed"; }
sed 's/^/    /' "$E2E_WORK/journal-status.txt" >&2
tids=$(grep -oE 'entry_tid=[0-9]+' "$E2E_WORK/journal-status.txt" | cut -d= -f2 | sort -n | tail -n 1)
[ -n "$tids" ] && [ "$tids" -gt 0 ] || fail "rbd journal status shows no journal entries"
grep -q 'registered clients' "$E2E_WORK/journal-status.txt" || fail "no registered journal client"
log "journal: highest committed entry_tid $tids"

step "what the device reads is what the image holds"
dev_sum=$(dev_sha256 "$DEV")
unmap_dev "$DEV"
img_sum=$(rbd_sha256 "$IMG")
[ "$dev_sum" = "$img_sum" ] || fail "device read $dev_sum, rbd export reads $img_sum"
log "sha256 $img_sum on both"

assert_no_nbd_connected
stop_daemon
pass
