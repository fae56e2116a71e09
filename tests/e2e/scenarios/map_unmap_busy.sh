#!/bin/bash
# Unmapping a device that is in use is refused, clearly: `rbd-nbdd unmap` of a mounted
# device (by device and by spec) exits 1 with one line that says it is in use and names
# --force, and the device keeps working. `unmap --force` then disconnects it anyway: the
# kernel drops the device, the mounted filesystem gets I/O errors (expected here, and only
# here), it can be lazily unmounted, and data synced before the forced unmap is intact
# when the image is mapped and mounted again.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd mkfs.ext4

IMG=rbd/busy
SIZE=$((128 << 20))
MNT=$E2E_MNT

cluster_up
start_daemon
rbd_ create --size 128M "$IMG" || fail "rbd create $IMG failed"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
t 180 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$MNT"
t 60 dd if=/dev/urandom of="$MNT/kept" bs=1M count=8 status=none
(cd "$MNT" && sha256sum kept) > "$E2E_WORK/manifest"
t 60 sync || fail "sync failed"

# expect_refused TARGET : unmap TARGET must exit 1 with one line naming "in use" and --force.
expect_refused() {
  local rc=0 lines
  t 60 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "$1" > "$E2E_WORK/unmap.out" 2> "$E2E_WORK/unmap.err" || rc=$?
  log "unmap $1 -> exit $rc: $(cat "$E2E_WORK/unmap.err")"
  [ "$rc" = 1 ] || fail "unmap of the mounted $1 exited $rc, expected 1"
  lines=$(wc -l < "$E2E_WORK/unmap.err")
  [ "$lines" = 1 ] || fail "unmap's error is $lines lines, expected one"
  grep -q 'in use' "$E2E_WORK/unmap.err" || fail "unmap's error does not say the device is in use"
  grep -q -- '--force' "$E2E_WORK/unmap.err" || fail "unmap's error does not mention --force"
  [ ! -s "$E2E_WORK/unmap.out" ] || fail "unmap printed on stdout: $(cat "$E2E_WORK/unmap.out")"
}

step "unmap of the mounted device is refused"
dmesg_mark
expect_refused "$DEV"
expect_refused "$IMG"
[ "$(nbd_size "$DEV")" = "$SIZE" ] || fail "$DEV lost its size after a refused unmap"
[ "$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | .live_connections')" = 1 ] \
  || fail "$DEV is no longer served after a refused unmap"
mountpoint -q "$MNT" || fail "$MNT is no longer mounted"

step "the device still works"
t 60 dd if=/dev/urandom of="$MNT/later" bs=1M count=4 status=none
t 60 sync || fail "sync after a refused unmap failed"
drop_caches
(cd "$MNT" && t 60 sha256sum --quiet -c "$E2E_WORK/manifest") || fail "checksum mismatch after a refused unmap"
if dmesg_since | grep -E "$E2E_DMESG_IOERRS" >&2; then fail "I/O errors after a refused unmap"; fi

step "unmap --force disconnects it anyway"
# From here the mounted ext4 loses its device: I/O errors are the expected outcome.
# shellcheck disable=SC2034  # read by lib.sh's dmesg check at exit
E2E_ALLOW_IO_ERRORS=1
t 90 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" --force "$DEV" || fail "unmap --force $DEV failed"
[ "$(mapped_json | jq length)" = 0 ] || fail "list-mapped still lists a device after unmap --force"
grep -q 'closed after' "$DAEMON_LOG" || fail "the daemon did not close the device's connection"
dmesg_since | grep -q "$(basename "$DEV"): Disconnected due to user request\|NBD_DISCONNECT" \
  || fail "the kernel did not log the disconnect of $DEV"
# The kernel keeps a disconnected device's configuration (size, pid) until its last
# opener closes it: here, until the filesystem is unmounted. I/O fails meanwhile.
rc=0
t 60 dd if=/dev/zero of="$MNT/after-force" bs=1M count=1 oflag=direct status=none 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "a write to the filesystem on the disconnected $DEV succeeded"
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "a write to the filesystem on the disconnected $DEV hung"
log "a write on the orphaned mount fails (dd exit $rc), as it must"
t 60 umount -l "$MNT" || fail "umount -l $MNT failed"
wait_nbd_size "$DEV" 0 60
wait_until 30 "$DEV to lose its pid attribute" test ! -e "/sys/block/$(basename "$DEV")/pid"
log "$DEV dropped by the kernel once the filesystem let go of it"
dmesg_since | grep -E 'I/O error|EXT4-fs' | head -n 5 | sed 's/^/    dmesg: /' >&2 || true

step "map again: the data synced before the forced unmap is intact"
map_image "$SIZE" "$IMG"
DEV=$MAPPED_DEV
mount_dev "$DEV" "$MNT"
verify_files "$MNT" "$E2E_WORK/manifest"
umount_dir "$MNT"
unmap_dev "$DEV"
assert_no_nbd_connected
stop_daemon
pass
