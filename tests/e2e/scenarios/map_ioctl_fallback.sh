#!/bin/bash
# The ioctl fallback: a daemon that cannot use the nbd netlink family (forced here with
# --no-netlink, as on an old kernel) still maps with the NBD_SET_* ioctls and NBD_DO_IT:
# map, mkfs.ext4, mount, write and verify files, unmap; the kernel drops the device.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd mkfs.ext4

IMG=rbd/legacy
SIZE=$((128 << 20))
MNT=$E2E_MNT
MANIFEST=$E2E_WORK/manifest.sha256

cluster_up
start_daemon --no-netlink
grep -q "using the nbd ioctl interface" "$DAEMON_LOG" || fail "the daemon did not say it uses the ioctl interface"
rbd_ create --size 128M "$IMG" || fail "rbd create $IMG failed"

step "map over ioctls, mkfs.ext4, mount, write, verify"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
[ ! -e "/sys/block/$(basename "$DEV")/backend" ] || [ -z "$(cat "/sys/block/$(basename "$DEV")/backend" 2>/dev/null)" ] \
  || fail "an ioctl-configured device should have no netlink backend cookie"
t 180 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$MNT"
make_files "$MNT" "$MANIFEST"
umount_dir "$MNT"
mount_dev "$DEV" "$MNT"
verify_files "$MNT" "$MANIFEST"
umount_dir "$MNT"

step "unmap"
unmap_dev "$DEV"
assert_no_nbd_connected
pass "mapped, used and unmapped through the ioctl interface"
