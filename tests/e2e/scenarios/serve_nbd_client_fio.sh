#!/bin/bash
# fio with verification on /dev/nbd0 (one connection, memory backend): random writes with
# crc32c verification, direct I/O, queue depth 32, through both io_uring and libaio, at 4k
# and at 64k. Each of the four jobs writes and verifies 64 MiB in its own 256 MiB quarter of
# the 1 GiB device (16384 4k writes: plenty for correctness; throughput is bench/'s job).
# Any I/O error or verification failure fails the scenario.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: serve
. "$(dirname "$0")/../lib.sh"
require_cmd nbd-client fio jq

SIZE=$((1 << 30))
QUARTER=$((256 << 20))

load_nbd 16
start_server --export name=disk,backend=memory,size=1G
nbd_connect /dev/nbd0 disk "$SIZE"

i=0
for engine in io_uring libaio; do
  for bs in 4k 64k; do
    step "fio $engine bs=$bs randwrite + crc32c verify, QD32, 64 MiB at $((i * 256)) MiB"
    run_fio "$engine-$bs" --filename=/dev/nbd0 --ioengine="$engine" --direct=1 \
      --rw=randwrite --bs="$bs" --iodepth=32 --offset=$((i * QUARTER)) --size=64M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1
    i=$((i + 1))
  done
done

nbd_disconnect /dev/nbd0
stop_server
grep -E 'closed after' "$SERVER_LOG" | sed 's/^/    /' >&2
pass
