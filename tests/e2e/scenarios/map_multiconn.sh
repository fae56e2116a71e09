#!/bin/bash
# One device with four connections (`map --connections 4`): list-mapped shows 4/4, and fio
# with crc32c verification (io_uring 4k and libaio 64k at once, each on its own region)
# sees no error. UML has one vCPU, so blk-mq gives the device one hardware queue and the
# kernel sends its requests on the first socket: this checks correctness, not scaling.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

IMG=rbd/multi
SIZE=$((128 << 20))

cluster_up
start_daemon
rbd_ create --size 128M "$IMG" || fail "rbd create $IMG failed"
map_image "$SIZE" "$IMG" --connections 4
DEV=$MAPPED_DEV

step "four connections"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | sed 's/^/    /' >&2
conns=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.live_connections)/\(.connections)"')
[ "$conns" = 4/4 ] || fail "list-mapped shows $conns connections for $DEV, expected 4/4"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | grep -qE "^[0-9]+ +$DEV +$IMG +mapped +4/4 " \
  || fail "the plain list-mapped does not show $DEV $IMG mapped 4/4"
nsock=$(find "/proc/$DAEMON_PID/fd" -lname 'socket:*' | wc -l)
log "the daemon holds $nsock sockets"

step "fio io_uring 4k and libaio 64k at once, randwrite + crc32c verify"
job=(--filename="$DEV" --direct=1 --rw=randwrite --iodepth=16 --verify=crc32c --do_verify=1
     --verify_fatal=1 --verify_dump=1)
run_fio mc-io_uring-4k "${job[@]}" --ioengine=io_uring --bs=4k --size=4M --offset=0 \
  --name=mc-libaio-64k "${job[@]}" --ioengine=libaio --bs=64k --size=24M --offset=64M
conns=$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | "\(.live_connections)/\(.connections)"')
[ "$conns" = 4/4 ] || fail "after fio list-mapped shows $conns connections, expected 4/4"

unmap_dev "$DEV"
n=$(grep -c "closed after" "$DAEMON_LOG" || true)
grep 'closed after' "$DAEMON_LOG" | sed 's/^.*#/    connection #/' >&2
[ "$n" = 4 ] || fail "the daemon log shows $n connections closed at unmap, expected 4"
assert_no_nbd_connected
stop_daemon
pass
