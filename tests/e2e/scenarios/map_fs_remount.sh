#!/bin/bash
# A filesystem on an RBD image mapped by `rbd-nbdd map`: mkfs.ext4, mount, write files with
# known checksums, unmount, unmap; map the image again (so nothing can come from the page
# cache or from the daemon's state), e2fsck, mount and verify every checksum.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd mkfs.ext4 e2fsck

IMG=rbd/fs
SIZE=$((256 << 20))
MNT=$E2E_MNT
MANIFEST=$E2E_WORK/manifest.sha256

cluster_up
start_daemon
rbd_ create --size 256M "$IMG" || fail "rbd create $IMG failed"

step "map, mkfs.ext4, mount, write files"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
t 180 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$MNT"
make_files "$MNT" "$MANIFEST"
t 180 sync || fail "sync failed"
umount_dir "$MNT"
unmap_dev "$DEV"
assert_no_nbd_connected

step "map again: every read now comes from the cluster"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
t 180 e2fsck -fn "$DEV" > "$E2E_WORK/e2fsck.log" 2>&1 \
  || { cat "$E2E_WORK/e2fsck.log" >&2; fail "e2fsck found problems"; }
mount_dev "$DEV" "$MNT"
verify_files "$MNT" "$MANIFEST"
umount_dir "$MNT"
unmap_dev "$DEV"

assert_no_nbd_connected
stop_daemon
pass
