#!/bin/bash
# User recovery (UBLK_F_USER_RECOVERY|_REISSUE): a file export served as /dev/ublkb1 by
# `serve --ublk-recovery`; serve is SIGKILLed; the kernel keeps /dev/ublkb1 and holds a
# read issued while no server runs; `serve --ublk-recover 1` takes the device over, the
# held read completes with the data written before the crash, new writes work, and
# SIGTERM then removes the device (no /dev/ublkb*, no /dev/ublkc*).
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_ublk.sh"

ID=1
DEV=/dev/ublkb$ID
SIZE=$((256 << 20))

load_ublk
rm -f "$E2E_DISK"
truncate -s $SIZE "$E2E_DISK"
on_exit "rm -f $E2E_DISK"
EXPORT=name=disk,backend=file,path=$E2E_DISK

step "serve $DEV with user recovery, write 16 MiB"
start_ublk_server -e "$EXPORT" --workers 2 --ublk-id $ID --ublk-recovery
grep -q "UBLK_F_USER_RECOVERY|UBLK_F_USER_RECOVERY_REISSUE" "$SERVER_LOG" \
  || fail "the device was not added with user recovery"
t 30 dd if=/dev/urandom of="$E2E_WORK/pattern" bs=1M count=16 status=none
t 60 dd if="$E2E_WORK/pattern" of="$DEV" bs=1M oflag=direct conv=fsync status=none || fail "write failed"

step "SIGKILL the server: the kernel keeps $DEV"
kill -KILL "$SERVER_PID"
_wait_exit "$SERVER_PID" 30 || fail "the killed server did not exit"
SERVER_PID=
[ -b "$DEV" ] || fail "$DEV went away with the server"

step "a read while no server runs is held"
( t 120 dd if="$DEV" of="$E2E_WORK/held" bs=1M count=16 iflag=direct status=none; echo $? > "$E2E_WORK/held.rc" ) &
READER=$!
on_exit "kill $READER 2>/dev/null || true"
nap 3
[ ! -e "$E2E_WORK/held.rc" ] || fail "the read finished without a server (rc $(cat "$E2E_WORK/held.rc"))"

step "serve --ublk-recover $ID takes the device over"
start_ublk_server -e "$EXPORT" --workers 2 --ublk-recover $ID
grep -q "ublk$ID: recovered" "$SERVER_LOG" || fail "serve did not log the recovery"
wait_until 60 "the held read" test -e "$E2E_WORK/held.rc"
[ "$(cat "$E2E_WORK/held.rc")" = 0 ] || fail "the held read failed (rc $(cat "$E2E_WORK/held.rc"))"
cmp "$E2E_WORK/held" "$E2E_WORK/pattern" || fail "the held read returned other data"
log "the held read completed after the recovery with the data written before the crash"

step "the recovered device reads and writes"
t 60 dd if="$E2E_WORK/pattern" of="$DEV" bs=1M seek=32 oflag=direct conv=fsync status=none || fail "write failed"
cmp <(t 60 dd if="$DEV" bs=1M skip=32 count=16 iflag=direct status=none) "$E2E_WORK/pattern" \
  || fail "data written after the recovery does not read back"

step "SIGTERM removes the device"
stop_server
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"
pass
