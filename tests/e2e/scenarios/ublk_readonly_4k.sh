#!/bin/bash
# What SET_PARAMS tells the kernel follows the export: a read-only file export served
# with `--ublk-block-size 4096` is a read-only /dev/ublkbN with 4096-byte logical blocks,
# no discard and no write-zeroes; it reads the file's bytes, a write fails, and a bad
# block size is refused before anything reaches the kernel. Nothing is left behind.
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_ublk.sh"

ID=2
DEV=/dev/ublkb$ID
Q=/sys/block/ublkb$ID/queue

load_ublk
step "a bad block size is refused up front"
rc=0
t 30 "$RBDNBD_BIN" serve --socket "$E2E_WORK/x.sock" -e name=x,backend=memory,size=64M \
  --ublk-id $ID --ublk-block-size 1024 > "$E2E_WORK/bad.log" 2>&1 || rc=$?
cat "$E2E_WORK/bad.log" >&2
[ "$rc" = 2 ] && grep -q "not 512 or 4096" "$E2E_WORK/bad.log" || fail "--ublk-block-size 1024 was not refused"
no_ublk_nodes || fail "ublk nodes left after a refused start"

step "a read-only export with 4 KiB blocks"
t 30 dd if=/dev/urandom of="$E2E_DISK" bs=1M count=32 status=none
on_exit "rm -f $E2E_DISK"
start_ublk_server -e "name=ro,backend=file,path=$E2E_DISK,read-only" --workers 2 --ublk-id $ID --ublk-block-size 4096
[ "$(cat /sys/block/ublkb$ID/ro)" = 1 ] || fail "$DEV is not read-only"
[ "$(cat $Q/logical_block_size)" = 4096 ] || fail "logical block size $(cat $Q/logical_block_size), not 4096"
[ "$(cat $Q/discard_max_bytes)" = 0 ] || fail "a read-only device advertises discard"
[ "$(cat $Q/write_zeroes_max_bytes)" = 0 ] || fail "a read-only device advertises write-zeroes"
cmp <(t 60 dd if="$DEV" bs=1M iflag=direct status=none) "$E2E_DISK" || fail "$DEV does not read the file's bytes"
if t 30 dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct status=none 2> "$E2E_WORK/write.err"; then
  fail "a write to the read-only $DEV succeeded"
fi
log "write refused: $(cat "$E2E_WORK/write.err")"

step "SIGTERM removes the device"
stop_server
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"
pass
