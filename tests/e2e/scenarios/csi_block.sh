#!/bin/bash
# A raw block volume through rbd-nbdd-csi: NodeStage with the block access type maps the
# image and makes no filesystem; NodePublish to a file target (kubelet's
# volumeDevices/publish/PV/POD) gives a block device of the image's size there; a pattern
# written through the target with O_DIRECT (and a flush) reads back through it and matches
# `rbd export` of the image (sha256 of the whole image, against the expected image built
# locally); unpublish removes the target file, unstage unmaps. Every call repeated is OK.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

csi_up

VOL=blk1
SIZE=$((128 << 20))
ST=$(csi_block_staging $VOL)
TG=$(csi_block_target $VOL pod-blk)
csi_create_image $VOL 128M

step "stage (block) and publish to a file target"
csi_stage $VOL "$ST" --block
csi_stage $VOL "$ST" --block
DEV=$(mapped_json | jq -r --arg s "$CSI_POOL/$VOL" '.[] | select(.spec == $s) | .device')
[[ "$DEV" =~ ^/dev/nbd[0-9]+$ ]] || fail "the daemon lists no device for $CSI_POOL/$VOL: $(mapped_json)"
assert_mapped_as_kube "$DEV" "$CSI_POOL/$VOL"
[ "$(nbd_size "$DEV")" = "$SIZE" ] || fail "$DEV has $(nbd_size "$DEV") bytes, expected $SIZE"
rc=0; blkid -p "$DEV" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a block volume got a filesystem or a signature at stage (blkid -p exit $rc: $(blkid -p "$DEV"))"
csi_publish $VOL "$ST" "$TG" --block
csi_publish $VOL "$ST" "$TG" --block
[ -b "$TG" ] || fail "$TG is not a block device after publish ($(stat -c %F "$TG" 2>&1))"
[ "$(stat -L -c %t:%T "$TG")" = "$(stat -L -c %t:%T "$DEV")" ] \
  || fail "$TG is device $(stat -L -c %t:%T "$TG"), $DEV is $(stat -L -c %t:%T "$DEV")"
[ "$(t 20 blockdev --getsize64 "$TG")" = "$SIZE" ] || fail "$TG has $(blockdev --getsize64 "$TG") bytes, expected $SIZE"
log "$TG is $DEV ($SIZE bytes)"

step "pattern written through the target (O_DIRECT), read back, compared with rbd export"
t 60 dd if=/dev/urandom of="$E2E_WORK/pat.a" bs=1M count=8 status=none
t 60 dd if=/dev/urandom of="$E2E_WORK/pat.b" bs=1M count=4 status=none
t 60 dd if="$E2E_WORK/pat.a" of="$TG" bs=1M seek=0 oflag=direct conv=notrunc,fsync status=none \
  || fail "writing the first pattern through $TG failed"
t 60 dd if="$E2E_WORK/pat.b" of="$TG" bs=1M seek=100 oflag=direct conv=notrunc,fsync status=none \
  || fail "writing the second pattern through $TG failed"
t 60 dd if="$E2E_WORK/pat.b" of="$TG" bs=4k seek=$(((SIZE >> 12) - 1)) count=1 oflag=direct conv=notrunc,fsync status=none \
  || fail "writing the last block through $TG failed"
# the expected image: zeros, pat.a at 0, pat.b at 100 MiB, pat.b's first 4 KiB in the last block
truncate -s "$SIZE" "$E2E_WORK/expected.img"
dd if="$E2E_WORK/pat.a" of="$E2E_WORK/expected.img" bs=1M seek=0 conv=notrunc status=none
dd if="$E2E_WORK/pat.b" of="$E2E_WORK/expected.img" bs=1M seek=100 conv=notrunc status=none
dd if="$E2E_WORK/pat.b" of="$E2E_WORK/expected.img" bs=4k count=1 seek=$(((SIZE >> 12) - 1)) conv=notrunc status=none
want=$(sha256sum < "$E2E_WORK/expected.img" | cut -d' ' -f1)
rm -f "$E2E_WORK/expected.img"
got_a=$(t 60 dd if="$TG" bs=1M count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got_a" = "$(sha256sum < "$E2E_WORK/pat.a" | cut -d' ' -f1)" ] || fail "the first pattern reads back wrong through $TG"
got_b=$(t 60 dd if="$TG" bs=1M skip=100 count=4 iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got_b" = "$(sha256sum < "$E2E_WORK/pat.b" | cut -d' ' -f1)" ] || fail "the second pattern reads back wrong through $TG"
dev_sum=$(dev_sha256 "$TG" "$SIZE")
[ "$dev_sum" = "$want" ] || fail "the device through $TG reads $dev_sum, expected $want"
exp_sum=$(rbd_sha256 "$CSI_POOL/$VOL")
[ "$exp_sum" = "$want" ] || fail "rbd export of $CSI_POOL/$VOL gives $exp_sum, expected $want (the device reads $dev_sum)"
log "device, rbd export and the expected image agree: $want"

step "unpublish, unstage (each twice)"
csi_unpublish $VOL "$TG"
csi_unpublish $VOL "$TG"
! mountpoint -q "$TG" 2>/dev/null || fail "$TG is still mounted after unpublish"
[ ! -e "$TG" ] || fail "$TG still exists after unpublish ($(stat -c %F "$TG"))"
csi_unstage $VOL "$ST"
csi_unstage $VOL "$ST"
wait_nbd_size "$DEV" 0 30
assert_csi_clean

step "stage + publish again: the data is still there"
csi_stage $VOL "$ST" --block
csi_publish $VOL "$ST" "$TG" --block
[ "$(dev_sha256 "$TG" "$SIZE")" = "$want" ] || fail "after a new stage the device no longer reads $want"
csi_unpublish $VOL "$TG"
csi_unstage $VOL "$ST"
assert_csi_clean

stop_csi
stop_daemon
pass
