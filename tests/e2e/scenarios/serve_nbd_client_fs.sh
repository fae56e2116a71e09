#!/bin/bash
# A filesystem on /dev/nbd0 served by `rbd-nbdd serve` (memory backend) through the kernel's
# nbd driver, configured by Debian's nbd-client over netlink: mkfs.ext4, mount, write files,
# unmount, reconnect the device (so nothing can come from the page cache), fsck, mount
# again and verify every checksum. Then disconnect, and SIGTERM must exit 0.
# e2e-batch: serve
. "$(dirname "$0")/../lib.sh"
require_cmd nbd-client mkfs.ext4 e2fsck

SIZE=$((1 << 30))
MNT=$E2E_MNT
MANIFEST=$E2E_WORK/manifest.sha256

load_nbd 16
start_server --export name=disk,backend=memory,size=1G
nbd_connect /dev/nbd0 disk "$SIZE"

step "mkfs.ext4 (with its discard pass) and mount"
t 180 mkfs.ext4 -q -F /dev/nbd0 || fail "mkfs.ext4 failed"
mount_dev /dev/nbd0 "$MNT"

step "write files with known checksums"
make_files "$MNT" "$MANIFEST"
t 120 sync || fail "sync failed"
umount_dir "$MNT"

step "reconnect: the next reads must come from the server"
nbd_disconnect /dev/nbd0
nbd_connect /dev/nbd0 disk "$SIZE"
t 180 e2fsck -fn /dev/nbd0 > "$E2E_WORK/e2fsck.log" 2>&1 \
  || { cat "$E2E_WORK/e2fsck.log" >&2; fail "e2fsck found problems"; }

step "mount again and verify"
mount_dev /dev/nbd0 "$MNT"
verify_files "$MNT" "$MANIFEST"
umount_dir "$MNT"

nbd_disconnect /dev/nbd0
stop_server
pass
