#!/bin/bash
# Restart survival. (1) SIGKILL the daemon while fio writes with crc32c verification; a new
# daemon reattaches the device from its state file (fencing the dead daemon's client and
# taking over the exclusive lock); the kernel resends the requests that were in flight once
# the io-timeout passes. fio must finish with zero errors and its verify must pass.
# (2) The upgrade path: SIGTERM detaches (exit 0) and leaves the device in the kernel with
# its size, again while fio runs; a new daemon attaches it and fio finishes with no error.
# (3) Everything written in (1) still verifies (fio --verify_only) at the end.
# The kernel logs connection-level messages for the dead sockets ("Receive control
# failed", "Connection timed out, retrying", "Dead connection, failed to find a fallback"
# while a request waits for the reconnect): those are expected; an I/O error a user could
# see ("I/O error, dev nbdN", "Buffer I/O error", filesystem errors) still fails.
# Both restarts stall I/O for up to the io-timeout: requests the kernel had sent on the old
# socket are resent only when they time out. The device is mapped with --io-timeout 15
# (default 30) to keep the scenario short; the new daemons must keep that setting.
# On the 6.12 guest (two vCPUs) the device has two connections, so two hardware queues,
# and both must come back after each restart.
# e2e-vm: VM_TIMEOUT=480
# e2e-batch: map3
# e2e-batch@6.12: k612
# e2e-kernel: uml 6.12
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
expect_nbd_reconnects

IMG=rbd/survivor
NCONN=1
[ "$E2E_KERNEL" = uml ] || NCONN=2
SIZE=$((128 << 20))

cluster_up
start_daemon
rbd_ create --size 128M "$IMG" || fail "rbd create $IMG failed"
map_image "$SIZE" "$IMG" --show-cookie --io-timeout 15 --connections "$NCONN"
DEV=$MAPPED_DEV COOKIE=$MAPPED_COOKIE
SYS=/sys/block/$(basename "$DEV")
[ -n "$COOKIE" ] || fail "map --show-cookie printed no cookie"
log "$DEV cookie $COOKIE"
if [ "$E2E_KERNEL" != uml ]; then
  hwq=("$SYS"/mq/*)
  [ -e "${hwq[0]}" ] || hwq=()
  [ "${#hwq[@]}" = "$NCONN" ] || fail "$DEV has ${#hwq[@]} hardware queues, expected $NCONN (one per connection)"
fi

FIO_DEV=$DEV   # lib_map.sh: writes_done, fio_bg, wait_fio, writes_progress

step "(1) SIGKILL under fio randwrite + verify"
fio_bg kill 8M 0
writes_progress 300
t_kill=$SECONDS
kill_daemon
sleep 1
[ "$(cat "$SYS/size")" = $((SIZE / 512)) ] || fail "$DEV lost its size after SIGKILL"
start_daemon
l=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.cookie) \(.live_connections)/\(.connections) \(.io_timeout)"')
[ "$l" = "$COOKIE $NCONN/$NCONN 15" ] || fail "after the restart list-mapped shows '$l' for $DEV, expected '$COOKIE $NCONN/$NCONN 15'"
grep -E 'fenced|attached|reattach' "$DAEMON_LOG" | sed 's/^/    /' >&2
w0=$(writes_done)
wait_until 90 "writes to resume on $DEV" eval '[ "$(writes_done)" -gt '"$w0"' ]'
log "writes resumed $((SECONDS - t_kill)) s after the SIGKILL"
wait_fio "after SIGKILL" 240
log "fio finished with zero errors, verify passed, $((SECONDS - t_kill)) s after the SIGKILL"

step "(2) SIGTERM (upgrade) under fio randwrite + verify"
fio_bg term 4M 64M
writes_progress 200
t_term=$SECONDS
pid_attr=$(cat "$SYS/pid" 2>/dev/null || echo none)
stop_daemon
sleep 1
[ "$(cat "$SYS/size")" = $((SIZE / 512)) ] || fail "$DEV lost its size after SIGTERM"
[ -e "$SYS/pid" ] || fail "$DEV is no longer connected in the kernel after SIGTERM"
log "$DEV kept its size and its kernel connection (pid attribute $pid_attr) with no daemon"
start_daemon
l=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.cookie) \(.live_connections)/\(.connections) \(.io_timeout)"')
[ "$l" = "$COOKIE $NCONN/$NCONN 15" ] || fail "after the upgrade list-mapped shows '$l' for $DEV, expected '$COOKIE $NCONN/$NCONN 15'"
wait_fio "after SIGTERM" 240
log "fio finished with zero errors, verify passed, $((SECONDS - t_term)) s after the SIGTERM"

step "(3) the data written across the SIGKILL still verifies"
drop_caches
run_fio kill-reverify --filename="$DEV" --direct=1 --ioengine=io_uring --rw=randwrite --bs=4k \
  --iodepth=16 --size=8M --offset=0 --verify=crc32c --verify_only=1 --verify_fatal=1 --verify_dump=1

unmap_dev "$DEV"
assert_no_nbd_connected
stop_daemon
if dmesg | grep -E "$E2E_DMESG_IOERRS" >&2; then fail "a user-visible I/O error in the kernel log"; fi
dmesg | grep -cE 'Receive control failed|Connection timed out|Send control failed|Dead connection' \
  | xargs -I{} echo "    kernel reconnect messages (expected): {}" >&2
pass
