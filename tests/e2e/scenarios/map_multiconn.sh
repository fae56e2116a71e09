#!/bin/bash
# One device with four connections (`map --connections 4`): list-mapped shows 4/4, and fio
# with crc32c verification (io_uring 4k and libaio 64k at once, each on its own region)
# sees no error. UML has one vCPU, so blk-mq gives the device one hardware queue and the
# kernel sends its requests on the first socket: this checks correctness, not scaling.
# On the 6.12 guest (two vCPUs) the device has two connections, and /sys/block/nbdN/mq
# must show two hardware queues (one per socket, as many as CPUs).
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
# e2e-batch@6.12: k612
# e2e-kernel: uml 6.12
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

IMG=rbd/multi
SIZE=$((128 << 20))

cluster_up
start_daemon
rbd_ create --size 128M "$IMG" || fail "rbd create $IMG failed"
NCONN=4
[ "$E2E_KERNEL" = uml ] || NCONN=2
map_image "$SIZE" "$IMG" --connections "$NCONN"
DEV=$MAPPED_DEV

step "$NCONN connections"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | sed 's/^/    /' >&2
conns=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.live_connections)/\(.connections)"')
[ "$conns" = "$NCONN/$NCONN" ] || fail "list-mapped shows $conns connections for $DEV, expected $NCONN/$NCONN"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | grep -qE "^[0-9]+ +$DEV +$IMG +mapped +$NCONN/$NCONN " \
  || fail "the plain list-mapped does not show $DEV $IMG mapped $NCONN/$NCONN"
if [ "$E2E_KERNEL" != uml ]; then
  hwq=(/sys/block/"${DEV##*/}"/mq/*)
  [ -e "${hwq[0]}" ] || hwq=()
  log "$DEV has ${#hwq[@]} hardware queues with $(nproc) CPUs"
  [ "${#hwq[@]}" = "$NCONN" ] || fail "$DEV has ${#hwq[@]} hardware queues, expected $NCONN (one per connection)"
fi
nsock=$(find "/proc/$DAEMON_PID/fd" -lname 'socket:*' | wc -l)
log "the daemon holds $nsock sockets"

step "fio io_uring 4k and libaio 64k at once, randwrite + crc32c verify"
job=(--filename="$DEV" --direct=1 --rw=randwrite --iodepth=16 --verify=crc32c --do_verify=1
     --verify_fatal=1 --verify_dump=1)
run_fio mc-io_uring-4k "${job[@]}" --ioengine=io_uring --bs=4k --size=4M --offset=0 \
  --name=mc-libaio-64k "${job[@]}" --ioengine=libaio --bs=64k --size=24M --offset=64M
conns=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.live_connections)/\(.connections)"')
[ "$conns" = "$NCONN/$NCONN" ] || fail "after fio list-mapped shows $conns connections, expected $NCONN/$NCONN"

unmap_dev "$DEV"
n=$(grep -c "closed after" "$DAEMON_LOG" || true)
grep 'closed after' "$DAEMON_LOG" | sed 's/^.*#/    connection #/' >&2
[ "$n" = "$NCONN" ] || fail "the daemon log shows $n connections closed at unmap, expected $NCONN"
assert_no_nbd_connected
stop_daemon
pass
