#!/bin/bash
# Live resize: `rbd resize` grows an image while it is mapped and mounted; the daemon
# follows (librbd's header update -> netlink RECONFIGURE), /sys/block/nbdN/size shows the
# new size within a bounded wait with no remap, and resize2fs grows the mounted ext4
# online. Files written before and after the grow verify, and the new space is usable.
# On the 6.12 guest (two vCPUs) the device has two connections (two hardware queues).
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map1
# e2e-batch@6.12: k612
# e2e-kernel: uml 6.12
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd mkfs.ext4 resize2fs e2fsck

IMG=rbd/growing
OLD=$((64 << 20))
NEW=$((160 << 20))
MNT=$E2E_MNT

cluster_up
start_daemon
rbd_ create --size 64M "$IMG" || fail "rbd create $IMG failed"
NCONN=1
[ "$E2E_KERNEL" = uml ] || NCONN=2
map_image "$OLD" "$IMG" --connections "$NCONN"
DEV=$MAPPED_DEV
SYS=/sys/block/$(basename "$DEV")

step "ext4 on the 64 MiB device"
t 180 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$MNT"
t 60 dd if=/dev/urandom of="$MNT/before" bs=1M count=8 status=none
blocks0=$(stat -f -c %b "$MNT")

step "rbd resize to 160 MiB while mounted"
rbd_ resize --size 160M "$IMG" 2>&1 | tail -n 1 >&2 || fail "rbd resize failed"
t0=$SECONDS
wait_nbd_size "$DEV" "$NEW" 30
log "$SYS/size shows $(cat "$SYS/size") sectors after $((SECONDS - t0))s"
got=$(t 20 blockdev --getsize64 "$DEV") || fail "blockdev --getsize64 failed"
[ "$got" = "$NEW" ] || fail "blockdev --getsize64 $DEV = $got, expected $NEW"
jsize=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | .size')
[ "$jsize" = "$NEW" ] || fail "list-mapped: size of $DEV is $jsize, expected $NEW"

step "resize2fs online"
t 180 resize2fs "$DEV" > "$E2E_WORK/resize2fs.log" 2>&1 \
  || { cat "$E2E_WORK/resize2fs.log" >&2; fail "resize2fs failed"; }
blocks1=$(stat -f -c %b "$MNT")
log "ext4 grew from $blocks0 to $blocks1 blocks"
[ "$blocks1" -gt $((blocks0 * 2)) ] || fail "ext4 did not grow: $blocks0 -> $blocks1 blocks"

step "the new space is usable: fill beyond the old size"
# 8 MiB before + 64 MiB now: more data than the whole old device held
(cd "$MNT" && sha256sum before) > "$E2E_WORK/manifest"
t 180 dd if=/dev/urandom of="$MNT/after" bs=1M count=64 status=none || fail "writing 64 MiB failed"
(cd "$MNT" && sha256sum after) >> "$E2E_WORK/manifest"
t 120 sync || fail "sync failed"
umount_dir "$MNT"
t 180 e2fsck -fn "$DEV" > "$E2E_WORK/e2fsck.log" 2>&1 \
  || { cat "$E2E_WORK/e2fsck.log" >&2; fail "e2fsck found problems"; }
mount_dev "$DEV" "$MNT"
drop_caches
verify_files "$MNT" "$E2E_WORK/manifest"
umount_dir "$MNT"

unmap_dev "$DEV"
assert_no_nbd_connected
stop_daemon
pass
