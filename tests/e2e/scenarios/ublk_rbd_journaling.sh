#!/bin/bash
# An RBD image with every feature krbd refuses (journaling) served as /dev/ublkbN by
# `rbd-nbdd serve --rbd --ublk-id`, on the dev cluster inside the guest: fio randwrite +
# verify (4k, QD32, two jobs of 1 MiB, so both hardware queues; a journaling image does
# ~15 write IOPS under TCG with the memstore cluster in the same guest), a pattern written through the
# device is what `rbd export` reads from the cluster after serve stopped (flushed), and
# SIGTERM leaves no ublk node behind.
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_ublk.sh"
. "$(dirname "$0")/../lib_map.sh"

ID=3
DEV=/dev/ublkb$ID
IMG=rbd/ublk-journal
SIZE=$((256 << 20))

load_ublk
cluster_up
rbd_ create --size $((SIZE >> 20))M \
  --image-feature layering,exclusive-lock,object-map,fast-diff,deep-flatten,journaling "$IMG" \
  || fail "creating $IMG failed"
on_exit "rbd_ rm --no-progress $IMG > /dev/null 2>&1 || true"

step "serve $IMG as $DEV"
UBLK_READY_SECS=120 start_ublk_server -c "$CEPH_CONF" -k "$CEPH_KEYRING" --rbd "$IMG" --workers 2 --ublk-id $ID
[ "$(cat /sys/block/ublkb$ID/size)" = $((SIZE / 512)) ] || fail "$DEV has the wrong size"
log "$DEV: $(ls /sys/block/ublkb$ID/mq | wc -l) hardware queues"

step "fio randwrite + verify, 4k, QD32, two jobs"
job=(--filename="$DEV" --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=32
     --size=1M --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0)
run_fio randwrite-4k "${job[@]}" --offset=0 --name=randwrite-4k-b "${job[@]}" --offset=64M

step "a pattern written through $DEV is in the image"
t 30 dd if=/dev/urandom of="$E2E_WORK/pattern" bs=1M count=8 status=none
t 120 dd if="$E2E_WORK/pattern" of="$DEV" bs=1M seek=128 oflag=direct conv=fsync status=none \
  || fail "writing the pattern failed"
stop_server
no_ublk_nodes || fail "ublk nodes left after serve stopped: $(ls /dev/ublk* 2>&1)"
rbd_ export --no-progress "$IMG" "$E2E_WORK/export.img" || fail "rbd export failed"
cmp <(dd if="$E2E_WORK/export.img" bs=1M skip=128 count=8 status=none) "$E2E_WORK/pattern" \
  || fail "rbd export does not hold what was written through $DEV"
rm -f "$E2E_WORK/export.img"
pass
