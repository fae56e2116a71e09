#!/bin/bash
# The file backend: an ext4 filesystem on /dev/nbd0 served from a sparse file in the guest's
# overlay (tmpfs underneath: no O_DIRECT there, so direct=auto must fall back). Files are
# written, the device disconnected, and the server stopped with SIGTERM (exit 0, after its
# flush). A NEW server on the same file must then present the same filesystem: fsck clean,
# every checksum intact.
# e2e-batch: serve
. "$(dirname "$0")/../lib.sh"
require_cmd nbd-client mkfs.ext4 e2fsck

SIZE=$((1 << 30))
IMG=$E2E_DISK
MNT=$E2E_MNT
MANIFEST=$E2E_WORK/manifest.sha256
SPEC="name=disk,backend=file,path=$IMG"

load_nbd 16
rm -f "$IMG"
truncate -s "$SIZE" "$IMG"
on_exit "rm -f $IMG"

step "first server: mkfs.ext4, mount, write files"
start_server --export "$SPEC"
nbd_connect /dev/nbd0 disk "$SIZE"
t 180 mkfs.ext4 -q -F /dev/nbd0 || fail "mkfs.ext4 failed"
mount_dev /dev/nbd0 "$MNT"
make_files "$MNT" "$MANIFEST"
umount_dir "$MNT"
nbd_disconnect /dev/nbd0
stop_server
log "backing file: $(du -h --apparent-size "$IMG" | cut -f1) apparent, $(du -h "$IMG" | cut -f1) allocated"

step "second server on the same file: fsck, mount, verify"
start_server --export "$SPEC"
nbd_connect /dev/nbd0 disk "$SIZE"
t 180 e2fsck -fn /dev/nbd0 > "$E2E_WORK/e2fsck.log" 2>&1 \
  || { cat "$E2E_WORK/e2fsck.log" >&2; fail "e2fsck found problems"; }
mount_dev /dev/nbd0 "$MNT"
verify_files "$MNT" "$MANIFEST"
umount_dir "$MNT"
nbd_disconnect /dev/nbd0
stop_server
pass
