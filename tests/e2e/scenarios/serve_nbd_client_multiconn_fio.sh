#!/bin/bash
# Multiple connections: the server advertises CAN_MULTI_CONN, so `nbd-client -C 4` can give
# /dev/nbd0 four sockets (the kernel refuses more than one otherwise). All four must reach
# the server, and fio with crc32c verification (io_uring 4k and libaio 64k at once, each on
# its own region: 64 MiB and 256 MiB) must see no error.
# UML has one vCPU and blk-mq caps hardware queues at the CPU count, so the kernel sends
# everything on the first socket: this checks correctness of a multi-socket device, not
# scaling. Later scenarios with `rbd-nbdd map --connections N` hit the same limit.
# e2e-vm: VM_TIMEOUT=360
# e2e-batch: serve
. "$(dirname "$0")/../lib.sh"
require_cmd nbd-client fio jq

SIZE=$((1 << 30))

# server_sockets : how many sockets the server holds (its listener plus its connections).
server_sockets() {
  find "/proc/$SERVER_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l
}

load_nbd 16
start_server --export name=disk,backend=memory,size=1G
before=$(server_sockets)
nbd_connect /dev/nbd0 disk "$SIZE" -C 4

step "four connections reach the server"
conns() { [ $(($(server_sockets) - before)) -ge 4 ]; }
wait_until 10 "4 connections at the server (it holds $(($(server_sockets) - before)) new sockets)" conns
[ $(($(server_sockets) - before)) = 4 ] \
  || fail "expected 4 new connections at the server, found $(($(server_sockets) - before))"
log "server holds $(server_sockets) sockets ($before before connecting)"

step "fio io_uring 4k and libaio 64k at once, randwrite + crc32c verify, QD32"
# 64 MiB of 4k writes (16384 requests, ~15 s in the guest; 256 MiB took ~70 s) at QD32;
# 256 MiB of 64k ones beside them. In UML all of it goes down the first socket (see above).
job=(--filename=/dev/nbd0 --direct=1 --rw=randwrite --iodepth=32
     --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1)
run_fio mc-io_uring-4k "${job[@]}" --ioengine=io_uring --bs=4k --offset=0 --size=64M \
  --name=mc-libaio-64k "${job[@]}" --ioengine=libaio --bs=64k --offset=256M --size=256M

nbd_disconnect /dev/nbd0
stop_server
n=$(grep -c 'serving export' "$SERVER_LOG" || true)
log "connections the server served (from its log): $n"
grep -E 'closed after' "$SERVER_LOG" | sed 's/^/    /' >&2
pass
