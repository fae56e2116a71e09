#!/bin/bash
# Filesystems, discard and snapshots on an RBD image served as /dev/ublkbN by
# `rbd-nbdd serve --rbd --ublk-id`, on the dev cluster inside the 6.12 guest:
#   - the device advertises discard and write-zeroes;
#   - blkdiscard of whole objects reads back as zeroes, the data around it is intact, and
#     `rbd du` shows the space given back; blkdiscard -z reads back as zeroes;
#   - xfs: mkfs (its log goes out as WRITE_ZEROES), mount, files, remount, verify, and
#     fstrim after deleting them gives the space back in `rbd du`;
#   - ext4 the same way (mkfs, mount, files, remount, verify);
#   - a snapshot is served read-only (on a 32 MiB image of its own, whose head is written
#     after the snapshot): /sys/block/ublkbN/ro is 1, the device reads the snapshot's
#     bytes, not the head's, a write fails, and the snapshot is untouched;
#   - SIGTERM leaves no ublk node.
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_ublk.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd blkdiscard mkfs.xfs mkfs.ext4 fstrim jq

ID=4
DEV=/dev/ublkb$ID
Q=/sys/block/ublkb$ID/queue
IMG=rbd/ublk-fs
SIMG=rbd/ublk-snap   # the snapshot part's own image
SIZE=$((512 << 20))
MiB=$((1 << 20))

# used_mib : what `rbd du` says the image uses, in MiB.
used_mib() { rbd_ du --format json "$IMG" | jq -r '.images[0].used_size / 1048576 | floor'; }

load_ublk
cluster_up
rbd_ create --size $((SIZE >> 20))M "$IMG" || fail "creating $IMG failed"   # 4 MiB objects
# remove_image IMAGE : its snapshots and itself, quietly (teardown).
remove_image() { rbd_ snap purge --no-progress "$1" > /dev/null 2>&1; rbd_ rm --no-progress "$1" > /dev/null 2>&1 || true; }
on_exit "remove_image $IMG; remove_image $SIMG"

step "serve $IMG as $DEV"
UBLK_READY_SECS=120 start_ublk_server -c "$CEPH_CONF" -k "$CEPH_KEYRING" --rbd "$IMG" --workers 2 --ublk-id $ID
[ "$(cat /sys/block/ublkb$ID/size)" = $((SIZE / 512)) ] || fail "$DEV has the wrong size"
log "$DEV: discard_max_bytes $(cat $Q/discard_max_bytes), write_zeroes_max_bytes" \
    "$(cat $Q/write_zeroes_max_bytes), logical_block_size $(cat $Q/logical_block_size)"
[ "$(cat $Q/discard_max_bytes)" != 0 ] || fail "$DEV does not advertise discard"
[ "$(cat $Q/write_zeroes_max_bytes)" != 0 ] || fail "$DEV does not advertise write-zeroes"
[ "$(cat $Q/logical_block_size)" = 512 ] || fail "$DEV has $(cat $Q/logical_block_size)-byte blocks, not 512"

step "discard and write-zeroes: zeroes in reads, space back in rbd du"
t 60 dd if=/dev/urandom of="$E2E_WORK/data" bs=1M count=32 status=none
t 120 dd if="$E2E_WORK/data" of="$DEV" bs=1M oflag=direct conv=notrunc status=none || fail "write failed"
used0=$(used_mib)
[ "$used0" -ge 32 ] || fail "rbd du shows $used0 MiB used after writing 32 MiB"
t 60 blkdiscard -o $((8 * MiB)) -l $((8 * MiB)) "$DEV" || fail "blkdiscard failed"
t 60 blkdiscard -z -o $((16 * MiB)) -l $((8 * MiB)) "$DEV" || fail "blkdiscard -z failed"
drop_caches
dev_range_is "$DEV" /dev/zero 8 16 || fail "the discarded and zeroed range does not read back as zeroes"
for r in "0 8" "24 8"; do
  dev_range_is "$DEV" "$E2E_WORK/data" $r || fail "data at ${r% *} MiB (+${r#* } MiB) changed"
done
used1=$(used_mib)
log "rbd du: $used0 MiB -> $used1 MiB after discarding 8 MiB (two whole objects)"
[ "$used1" -le $((used0 - 8)) ] || fail "rbd du did not drop by the 8 MiB discarded: $used0 -> $used1 MiB"

step "xfs: mkfs, mount, files, remount, verify, fstrim gives the space back"
t 180 mkfs.xfs -q -f "$DEV" || fail "mkfs.xfs failed"
mount_dev "$DEV" "$E2E_MNT"
make_files "$E2E_MNT" "$E2E_WORK/manifest"
t 60 dd if=/dev/urandom of="$E2E_MNT/filler" bs=1M count=48 conv=fsync status=none || fail "writing a 48 MiB file failed"
umount_dir "$E2E_MNT"
drop_caches
mount_dev "$DEV" "$E2E_MNT"
verify_files "$E2E_MNT" "$E2E_WORK/manifest"
sync
used_full=$(used_mib)
rm -f "$E2E_MNT/filler"
sync
t 120 fstrim -v "$E2E_MNT" || fail "fstrim failed"
used_trimmed=$(used_mib)
log "xfs: rbd du $used_full MiB with a 48 MiB file -> $used_trimmed MiB after rm and fstrim"
[ "$used_trimmed" -le $((used_full - 32)) ] \
  || fail "fstrim gave back less than 32 MiB of the 48 MiB file: $used_full -> $used_trimmed MiB"
umount_dir "$E2E_MNT"

step "ext4: mkfs, mount, files, remount, verify"
t 180 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$E2E_MNT"
make_files "$E2E_MNT" "$E2E_WORK/manifest4"
umount_dir "$E2E_MNT"
drop_caches
mount_dev "$DEV" "$E2E_MNT"
verify_files "$E2E_MNT" "$E2E_WORK/manifest4"
umount_dir "$E2E_MNT"
stop_server
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"

step "a snapshot is served read-only"
# On an image of its own, 32 MiB of the random data above: reading or exporting the 512 MiB
# filesystem image twice costs ~150 s of the emulated guest's time. The head is written after
# the snapshot, so a device that served the head instead would read other bytes.
rbd_ import --no-progress "$E2E_WORK/data" "$SIMG" || fail "rbd import into $SIMG failed"
rbd_ snap create --no-progress "$SIMG@s1" || fail "rbd snap create failed"
rbd_ bench --io-type write --io-pattern seq --io-size 64K --io-total 1M "$SIMG" > /dev/null \
  || fail "writing the head of $SIMG after the snapshot failed"
UBLK_READY_SECS=120 start_ublk_server -c "$CEPH_CONF" -k "$CEPH_KEYRING" --rbd "$SIMG@s1" --workers 2 --ublk-id $ID
[ "$(cat /sys/block/ublkb$ID/ro)" = 1 ] || fail "$DEV of a snapshot is not read-only"
[ "$(cat $Q/discard_max_bytes)" = 0 ] || fail "a snapshot's $DEV advertises discard"
dev_range_is "$DEV" "$E2E_WORK/data" 0 32 \
  || fail "$DEV does not read the snapshot's bytes"
rc=0
t 30 dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct status=none 2> "$E2E_WORK/ro-write.err" || rc=$?
cat "$E2E_WORK/ro-write.err" >&2
[ "$rc" != 0 ] || fail "a write to the snapshot's $DEV succeeded"
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "the write to the snapshot's $DEV hung"
stop_server
rbd_ export --no-progress "$SIMG@s1" - | cmp -s - "$E2E_WORK/data" || fail "the snapshot changed"
rbd_ export --no-progress "$SIMG" - | head -c 1048576 | cmp -s - <(head -c 1048576 "$E2E_WORK/data") \
  && fail "the head of $SIMG reads as the snapshot: the write after the snapshot was lost"
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"
pass
