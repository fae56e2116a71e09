#!/bin/bash
# A memory export served as /dev/ublkbN by `rbd-nbdd serve --ublk-id`, on the same worker
# loops as its NBD socket: without the driver serve fails with a clear error and leaves
# nothing; with it the device comes up with one hardware queue per worker (2), a second
# serve asking for the same id fails clearly ("in use") and leaves the first one intact;
# fio randwrite+verify at 4k and 64k (QD32, two jobs: both queues); discard and
# write-zeroes read back as zeroes; ext4 made, mounted, filled, remounted and verified;
# SIGTERM removes the device: no /dev/ublkb*, no /dev/ublkc* afterwards.
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_ublk.sh"

ID=0
DEV=/dev/ublkb$ID
SIZE=$((512 << 20))
SOCK2=$E2E_WORK/second.sock
METRICS=127.0.0.1:9481

# serve_must_fail PATTERN SERVE_ARGS... : serve exits 2 within 30 s, saying PATTERN.
serve_must_fail() {
  local pattern=$1 out=$E2E_WORK/fail.log rc=0
  shift
  t 30 "$RBDNBD_BIN" serve --socket "$SOCK2" -e name=x,backend=memory,size=64M "$@" > "$out" 2>&1 || rc=$?
  cat "$out" >&2
  [ "$rc" = 2 ] || fail "serve $* exited $rc, not 2"
  grep -q -- "$pattern" "$out" || fail "serve $* did not say '$pattern'"
}

step "no driver: a clear error, nothing left behind"
if [ -d /sys/module/ublk_drv ] && no_ublk_nodes; then t 30 rmmod ublk_drv || true; fi
if [ ! -e /dev/ublk-control ]; then
  serve_must_fail "the ublk driver is not loaded" --ublk-id $ID
  no_ublk_nodes || fail "ublk nodes left after the failed start"
else
  log "ublk_drv is built in or busy: the no-driver check is skipped"
fi

step "load the driver"
load_ublk

ip link set lo up 2>/dev/null || true   # /metrics on 127.0.0.1

step "serve a memory export as $DEV"
start_ublk_server -e name=mem,backend=memory,size=$SIZE --workers 2 --ublk-id $ID \
  --metrics-address $METRICS
[ -b "$DEV" ] || fail "$DEV is not a block device"
sectors=$(cat /sys/block/ublkb$ID/size)
[ "$sectors" = $((SIZE / 512)) ] || fail "/sys/block/ublkb$ID/size is $sectors, not $((SIZE / 512))"
queues=$(ls /sys/block/ublkb$ID/mq | wc -l)
[ "$queues" = 2 ] || fail "$DEV has $queues hardware queues, not 2"
log "$DEV: $((SIZE >> 20)) MiB, $queues hardware queues, discard_max_bytes" \
    "$(cat /sys/block/ublkb$ID/queue/discard_max_bytes), write_zeroes_max_bytes" \
    "$(cat /sys/block/ublkb$ID/queue/write_zeroes_max_bytes)"

step "the same id again: a clear error, the first device untouched"
serve_must_fail "in use" --ublk-id $ID
[ -b "$DEV" ] && server_alive || fail "the first device or server is gone"
[ "$(compgen -G '/dev/ublkc*' | wc -l)" = 1 ] || fail "a second /dev/ublkc* was left behind"

step "fio randwrite + verify, 4k and 64k, QD32, two jobs"
# Two jobs (processes, so both vCPUs and so both hardware queues), each on its own range.
for bs in 4k 64k; do
  job=(--filename="$DEV" --ioengine=io_uring --direct=1 --rw=randwrite --bs=$bs --iodepth=32
       --size=64M --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0)
  run_fio "randwrite-$bs" "${job[@]}" --offset=0 --name="randwrite-$bs-b" "${job[@]}" --offset=128M
done

step "the ublk I/O is in the export's metrics"
metrics=$(t 30 curl -sf "http://$METRICS/metrics") || fail "no /metrics from serve"
writes=$(awk '/^rbdnbd_device_ops_total\{.*op="write"/ {print $NF}' <<< "$metrics")
reads=$(awk '/^rbdnbd_device_ops_total\{.*op="read"/ {print $NF}' <<< "$metrics")
log "metrics: $writes writes, $reads reads"
[ "${writes:-0}" -ge $((2 * 16384 + 2 * 1024)) ] || fail "rbdnbd_device_ops_total{op=write} is '$writes'"
[ "${reads:-0}" -ge $((2 * 16384 + 2 * 1024)) ] || fail "rbdnbd_device_ops_total{op=read} is '$reads'"

step "discard and write-zeroes read back as zeroes"
t 60 dd if=/dev/urandom of="$DEV" bs=1M count=8 seek=256 oflag=direct status=none
t 60 blkdiscard -o $((256 << 20)) -l $((4 << 20)) "$DEV" || fail "blkdiscard failed"
t 60 blkdiscard -z -o $((260 << 20)) -l $((4 << 20)) "$DEV" || fail "blkdiscard -z failed"
cmp <(t 60 dd if="$DEV" bs=1M count=8 skip=256 iflag=direct status=none) \
    <(head -c $((8 << 20)) /dev/zero) || fail "discarded or zeroed range does not read back as zeroes"

step "ext4: mkfs, mount, files, remount, verify"
t 120 mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 failed"
mount_dev "$DEV" "$E2E_MNT"
make_files "$E2E_MNT" "$E2E_WORK/manifest"
umount_dir "$E2E_MNT"
drop_caches
mount_dev "$DEV" "$E2E_MNT"
verify_files "$E2E_MNT" "$E2E_WORK/manifest"
umount_dir "$E2E_MNT"

step "SIGTERM removes the device"
stop_server
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"
[ -z "$(ls /sys/block | grep ublk || true)" ] || fail "a ublk disk is still in /sys/block"
grep -q "ublk$ID: removed" "$SERVER_LOG" || fail "serve did not log the removal"
pass
