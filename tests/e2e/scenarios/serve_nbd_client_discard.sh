#!/bin/bash
# Discard: the memory backend advertises TRIM, so the kernel exposes discard on /dev/nbd0,
# and a discarded range must read back as zeroes (the backend drops the pages) while the
# data around it stays intact. Then a whole-device discard leaves every byte that was ever
# written reading as zeroes.
# Reads use O_DIRECT so that they reach the server.
# e2e-batch: serve
. "$(dirname "$0")/../lib.sh"
require_cmd nbd-client blkdiscard cmp

SIZE=$((1 << 30))
DEV=/dev/nbd0

# region_sha OFF_MIB LEN_MIB : sha256 of that region, read with O_DIRECT.
region_sha() {
  t 120 dd if=$DEV iflag=direct bs=1M skip="$1" count="$2" status=none | sha256sum | cut -d' ' -f1
}
# region_is_zero OFF_MIB LEN_MIB
region_is_zero() {
  t 120 dd if=$DEV iflag=direct bs=1M skip="$1" count="$2" status=none \
    | cmp -s -n $(($2 << 20)) - /dev/zero
}

load_nbd 16
start_server --export name=disk,backend=memory,size=1G
nbd_connect $DEV disk "$SIZE"
dmax=$(cat /sys/block/nbd0/queue/discard_max_bytes)
[ "$dmax" -gt 0 ] || fail "discard is not enabled on $DEV (is TRIM advertised?)"

step "fill 0..96 MiB with random data"
t 120 dd if=/dev/urandom of=$DEV bs=1M count=96 oflag=direct status=none || fail "fill failed"
a=$(region_sha 0 32)
c=$(region_sha 64 32)
! region_is_zero 32 32 || fail "the filled region reads as zeroes before any discard"

step "blkdiscard 32..64 MiB"
t 60 blkdiscard -o $((32 << 20)) -l $((32 << 20)) $DEV || fail "blkdiscard of 32..64 MiB failed"
region_is_zero 32 32 || fail "the discarded range 32..64 MiB does not read back as zeroes"
[ "$(region_sha 0 32)" = "$a" ] || fail "the data before the discarded range changed"
[ "$(region_sha 64 32)" = "$c" ] || fail "the data after the discarded range changed"
log "32..64 MiB reads zeroes; its neighbours are intact"

step "blkdiscard the whole device"
t 60 blkdiscard $DEV || fail "blkdiscard of the whole device failed"
region_is_zero 0 96 || fail "the written range does not read back as zeroes after a full discard"
log "0..96 MiB (all that was written) reads zeroes"

step "the device still takes writes after discards"
head -c 1M /dev/urandom > "$E2E_WORK/pattern"
t 30 dd if="$E2E_WORK/pattern" of=$DEV bs=1M seek=512 oflag=direct status=none
t 30 dd if=$DEV iflag=direct bs=1M skip=512 count=1 status=none | cmp -s - "$E2E_WORK/pattern" \
  || fail "a write after the discards did not read back"

nbd_disconnect $DEV
stop_server
pass
