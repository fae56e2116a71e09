#!/bin/bash
# A snapshot maps read-only: IMAGE@SNAP gives a device the kernel marks read-only
# (blockdev --getro = 1, sysfs ro = 1, list-mapped read_only), a write to it fails, and it
# reads exactly the snapshot's content, not the image's newer data.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

IMG=rbd/snapped
SNAP=$IMG@before
SIZE=$((64 << 20))

cluster_up
start_daemon
rbd_ create --size 64M "$IMG" || fail "rbd create $IMG failed"

step "write data, snapshot it, then overwrite the image"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
t 60 dd if=/dev/urandom of="$E2E_WORK/old" bs=1M count=8 status=none
t 60 dd if=/dev/urandom of="$E2E_WORK/new" bs=1M count=8 status=none
t 60 dd if="$E2E_WORK/old" of="$DEV" bs=1M seek=4 oflag=direct conv=notrunc status=none || fail "write failed"
t 60 dd if="$E2E_WORK/old" of="$DEV" bs=1M seek=48 oflag=direct conv=notrunc status=none || fail "write failed"
unmap_dev "$DEV"
rbd_ snap create "$SNAP" > /dev/null || fail "rbd snap create failed"
snap_sum=$(rbd_sha256 "$SNAP")
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
t 60 dd if="$E2E_WORK/new" of="$DEV" bs=1M seek=4 oflag=direct conv=notrunc status=none || fail "write failed"
head_sum=$(dev_sha256 "$DEV")
[ "$head_sum" != "$snap_sum" ] || fail "the image did not change after the snapshot"

step "map the snapshot (the image stays mapped too)"
map_image "$SIZE" "$SNAP"
SDEV=$MAPPED_DEV
[ "$SDEV" != "$DEV" ] || fail "the snapshot got the image's device $DEV"
ro=$(t 20 blockdev --getro "$SDEV") || fail "blockdev --getro failed"
[ "$ro" = 1 ] || fail "blockdev --getro $SDEV = $ro, expected 1"
[ "$(cat "/sys/block/$(basename "$SDEV")/ro")" = 1 ] || fail "sysfs ro of $SDEV is not 1"
jro=$(mapped_json | jq -r --arg d "$SDEV" '.[] | select(.device == $d) | .read_only')
[ "$jro" = true ] || fail "list-mapped: read_only of $SDEV is '$jro', expected true"
log "$SDEV: blockdev --getro 1, sysfs ro 1, list-mapped read_only true"

step "a write to the snapshot's device fails"
rc=0
t 30 dd if="$E2E_WORK/new" of="$SDEV" bs=1M count=1 oflag=direct conv=notrunc status=none \
  2> "$E2E_WORK/ro-write.err" || rc=$?
sed 's/^/    /' "$E2E_WORK/ro-write.err" >&2
[ "$rc" != 0 ] || fail "a write to the read-only $SDEV succeeded"
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "the write to the read-only $SDEV hung"
# Linux 6.1 refuses writes to a read-only block device with EPERM (older ones EROFS at open).
grep -qiE 'read-only|Operation not permitted' "$E2E_WORK/ro-write.err" \
  || fail "the write failed, but not as refused on a read-only device"

step "the snapshot's device reads the snapshot"
drop_caches
got=$(dev_sha256 "$SDEV")
[ "$got" = "$snap_sum" ] || fail "$SDEV reads $got, the snapshot is $snap_sum (the image is $head_sum)"
t 60 dd if="$SDEV" bs=1M skip=4 count=8 iflag=direct status=none | cmp -s - "$E2E_WORK/old" \
  || fail "$SDEV at 4 MiB does not hold the data written before the snapshot"
log "$SDEV reads the snapshot (sha256 $got); the image reads $head_sum"

unmap_dev "$SDEV"
unmap_dev "$DEV"
assert_no_nbd_connected
stop_daemon
pass
