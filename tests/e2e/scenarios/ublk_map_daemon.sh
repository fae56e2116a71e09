#!/bin/bash
# `rbd-nbdd map -t ublk` in the daemon, beside an nbd device of the same daemon:
# (1) map an RBD image -t ublk --queue-depth 64 --max-io 256K and another -t nbd; list-mapped
#     shows both, with their type; the ublk device has one hardware queue per daemon worker,
#     64 tags per queue and 256 KiB requests (sysfs, list-mapped, the state file); fio randwrite
#     + verify; --queue-depth with -t nbd, and a shape whose buffers are too large, are refused
#     with nothing left behind;
# (2) SIGKILL the daemon while fio verify runs on the ublk device: the kernel keeps
#     /dev/ublkbN quiesced and holds its I/O (user recovery with reissue); a new daemon
#     takes it over from its state file, with the same depth and max I/O; fio finishes with 0 errors;
# (3) SIGTERM (the upgrade path) the same way;
# (3b) resize: Debian's 6.12 lacks UBLK_U_CMD_UPDATE_SIZE (Linux 6.16): an image resize
#     leaves the device at its size and shows a clear error in status;
# (4) bad input leaves nothing behind: a ublk id the daemon already serves is refused;
# (5) unmap of a mounted ublk device is refused without --force;
# (6) unmap both: no /dev/ublkb*, no /dev/ublkc*, no state entry;
# (7) without the ublk driver, map -t ublk fails saying "modprobe ublk_drv", nothing recorded.
# e2e-kernel: 6.12
# e2e-batch: ublk
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_ublk.sh"
expect_nbd_reconnects   # the idle nbd device's socket closes with each daemon

UIMG=rbd/ublk-daemon
NIMG=rbd/nbd-daemon
SIZE=$((128 << 20))
WORKERS=2

load_ublk
no_ublk_nodes || fail "ublk nodes exist before the scenario: $(ls /dev/ublk* 2>&1)"
cluster_up
start_daemon --workers $WORKERS
rbd_create_many $SIZE "$UIMG" "$NIMG" || fail "creating the images failed"

# map_ublk MAP_ARGS... : `rbd-nbdd map -t ublk`; UDEV=/dev/ublkbN, unmapped at exit.
UDEV=
map_ublk() {
  local out rc=0
  log "rbd-nbdd map -t ublk $*"
  out=$(t 180 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -t ublk "$@" \
          2> "$E2E_WORK/map.err") || rc=$?
  [ "$rc" = 0 ] || { cat "$E2E_WORK/map.err" >&2; fail "rbd-nbdd map -t ublk $* exited $rc"; }
  UDEV=$(sed -n 1p <<< "$out")
  [[ "$UDEV" =~ ^/dev/ublkb[0-9]+$ ]] || fail "map -t ublk printed '$out', expected /dev/ublkbN"
  on_exit "_unmap_quiet_ublk $UDEV"
}
_unmap_quiet_ublk() {
  [ -b "$1" ] && daemon_alive || return 0
  t 60 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" --force "$1" > /dev/null 2>&1
}

# state_devices : "type:device-index" of every record in the daemon's state file.
state_devices() { jq -r '.devices[] | "\(.type):\(.index)"' "$MAP_STATE/state.json" | sort | tr '\n' ' '; }

# ublk_shape WHAT : $UDEV has 64 tags per queue and 256 KiB requests, in sysfs, list-mapped and the state file.
ublk_shape() {
  local tags kb l
  tags=$(cat "$USYS"/mq/*/nr_tags | sort -u | paste -sd,)
  kb=$(cat "$USYS/queue/max_hw_sectors_kb")
  [ "$tags" = 64 ] && [ "$kb" = 256 ] || fail "$1: $UDEV has $tags tags per queue and max_hw_sectors_kb $kb, expected 64 and 256"
  [ "$(cat "$USYS/queue/max_sectors_kb")" -le 256 ] || fail "$1: max_sectors_kb $(cat "$USYS/queue/max_sectors_kb")"
  l=$(mapped_json | jq -r --arg d "$UDEV" '.[] | select(.device == $d) | "\(.queue_depth) \(.max_io_bytes)"')
  [ "$l" = "64 262144" ] || fail "$1: list-mapped shows queue_depth/max_io_bytes '$l'"
  l=$(jq -r '.devices[] | select(.type == "ublk") | "\(.queue_depth) \(.max_io_bytes)"' "$MAP_STATE/state.json")
  [ "$l" = "64 262144" ] || fail "$1: the state file has queue_depth/max_io_bytes '$l'"
  log "$1: $UDEV has $tags tags per queue, max_hw_sectors_kb $kb, nr_requests $(cat "$USYS/queue/nr_requests") ($(cat "$USYS/queue/scheduler"))"
}
# map_refused WHY ARGS... : `rbd-nbdd map ARGS` fails with WHY in its error; no new device or record.
map_refused() {
  local why=$1 nodes
  shift
  nodes=$(ls /dev/ublkc* /dev/ublkb* 2> /dev/null | tr '\n' ' ')
  if t 60 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" "$@" \
       > /dev/null 2> "$E2E_WORK/map-refused.err"; then
    fail "rbd-nbdd map $* succeeded"
  fi
  grep -q -- "$why" "$E2E_WORK/map-refused.err" || fail "map $*: unexpected error: $(cat "$E2E_WORK/map-refused.err")"
  log "refused: $(cat "$E2E_WORK/map-refused.err")"
  [ "$(ls /dev/ublkc* /dev/ublkb* 2> /dev/null | tr '\n' ' ')" = "$nodes" ] || fail "map $*: ublk nodes changed"
}

step "(1) map -t ublk --queue-depth 64 --max-io 256K, and -t nbd"
map_ublk --queue-depth 64 --max-io 256K "$UIMG"
UID_=${UDEV#/dev/ublkb}
USYS=/sys/block/ublkb$UID_
ublk_shape "mapped"
[ "$(($(cat "$USYS/size") * 512))" = $SIZE ] || fail "$UDEV has $(cat "$USYS/size") sectors, expected $((SIZE / 512))"
q=$(ls -d "$USYS"/mq/* | wc -l)
[ "$q" = $WORKERS ] || fail "$UDEV has $q hardware queues, expected $WORKERS (one per worker)"
[ "$(cat "$USYS/queue/logical_block_size")" = 512 ] || fail "$UDEV logical block $(cat "$USYS/queue/logical_block_size")"
[ "$(cat "$USYS/ro")" = 0 ] || fail "$UDEV is read-only"
map_image $SIZE "$NIMG" -t nbd
NDEV=$MAPPED_DEV
l=$(mapped_json | jq -r '[.[] | "\(.type) \(.device) \(.spec) \(.state)"] | sort | join(",")')
want=$(printf '%s\n' "nbd $NDEV $NIMG mapped" "ublk $UDEV $UIMG mapped" | sort | paste -sd,)
[ "$l" = "$want" ] || fail "list-mapped shows '$l', expected '$want'"
log "list-mapped: $l; $UDEV has $q queues"
[ "$(state_devices)" = "$(printf '%s\n' "nbd:${NDEV#/dev/nbd}" "ublk:$UID_" | sort | tr '\n' ' ')" ] \
  || fail "the state file lists $(state_devices)"
grep -q "UBLK_F_USER_RECOVERY|UBLK_F_USER_RECOVERY_REISSUE" "$DAEMON_LOG" \
  || fail "the ublk device was not added with user recovery"
fio_verify ublk-first "$UDEV" 8M
rbd_ create --size 16M rbd/ublk-other || fail "rbd create failed"
map_refused "applies to -t ublk only" -t nbd --queue-depth 64 rbd/ublk-other
map_refused "ublk buffers of $WORKERS queue(s) x depth 4096 x max I/O 32 MiB = 256 GiB" -t ublk \
  --queue-depth 4096 --max-io 32M rbd/ublk-other
map_refused "max-io" -t ublk --max-io 6K rbd/ublk-other
[ "$(mapped_json | jq length)" = 2 ] || fail "list-mapped changed after a refused map"
[ "$(jq '.devices | length' "$MAP_STATE/state.json")" = 2 ] || fail "the state file lists $(state_devices)"

FIO_DEV=$UDEV   # lib_map.sh: writes_done, fio_bg, wait_fio, writes_progress
# after_restart WHAT : the new daemon serves both devices again.
after_restart() {
  local l
  l=$(mapped_json | jq -r '[.[] | "\(.type) \(.device) \(.state)"] | sort | join(",")')
  [ "$l" = "$(printf '%s\n' "nbd $NDEV mapped" "ublk $UDEV mapped" | sort | paste -sd,)" ] \
    || fail "$1: list-mapped shows '$l'"
  grep -q "ublk$UID_: recovered" "$DAEMON_LOG" || fail "$1: the new daemon did not recover ublk$UID_"
  ublk_shape "$1"
}

step "(2) SIGKILL under fio randwrite + verify on $UDEV"
fio_bg kill 16M 0
writes_progress 300
t_kill=$SECONDS
kill_daemon
nap 1
[ -b "$UDEV" ] && [ -c "/dev/ublkc$UID_" ] || fail "$UDEV went away with the daemon"
start_daemon --workers $WORKERS
after_restart "after SIGKILL"
w0=$(writes_done)
wait_until 90 "writes to resume on $UDEV" eval '[ "$(writes_done)" -gt '"$w0"' ]'
log "writes resumed $((SECONDS - t_kill)) s after the SIGKILL"
wait_fio "after SIGKILL" 300
log "fio finished with zero errors, verify passed, $((SECONDS - t_kill)) s after the SIGKILL"

step "(3) SIGTERM (upgrade) under fio randwrite + verify on $UDEV"
fio_bg term 8M 64M
writes_progress 200
t_term=$SECONDS
stop_daemon
nap 1
[ -b "$UDEV" ] && [ -c "/dev/ublkc$UID_" ] || fail "$UDEV went away with SIGTERM"
start_daemon --workers $WORKERS
after_restart "after SIGTERM"
wait_fio "after SIGTERM" 300
log "fio finished with zero errors, verify passed, $((SECONDS - t_term)) s after the SIGTERM"
drop_caches
run_fio kill-reverify --filename="$UDEV" --direct=1 --ioengine=io_uring --rw=randwrite --bs=4k \
  --iodepth=16 --size=16M --offset=0 --verify=crc32c --verify_only=1 --verify_fatal=1 --verify_dump=1

step "(3b) resize of the image behind $UDEV"
log "$(grep -m1 'ublk driver features' "$DAEMON_LOG" | sed 's/^.*\] //')"
rbd_ resize --size 256M "$UIMG" || fail "rbd resize failed"
if grep -q 'UBLK_F_UPDATE_SIZE' <(grep -m1 'ublk driver features' "$DAEMON_LOG"); then
  wait_until 30 "$UDEV to grow" eval '[ "$(cat "$USYS/size")" = $((256 << 11)) ]'
  log "$UDEV grew to 256 MiB (the kernel has UPDATE_SIZE)"
else
  wait_until 30 "a resize error in list-mapped" \
    eval 'mapped_json | jq -e --arg d "$UDEV" '"'"'.[] | select(.device == $d) | .last_error | test("Linux 6.16")'"'"' > /dev/null'
  [ "$(cat "$USYS/size")" = $((SIZE / 512)) ] || fail "$UDEV changed size without UPDATE_SIZE"
  log "refused: $(mapped_json | jq -r --arg d "$UDEV" '.[] | select(.device == $d) | .last_error')"
  [ "$(grep -c 'resize of /dev/ublkb' "$DAEMON_LOG")" = 1 ] || fail "the resize error was not logged exactly once"
fi

step "(4) a ublk id the daemon serves is refused, nothing is left behind"
nodes_before=$(ls /dev/ublkc* | tr '\n' ' ')
if t 60 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -t ublk \
     --device "$UDEV" rbd/ublk-other > /dev/null 2> "$E2E_WORK/map-busy.err"; then
  fail "map -t ublk --device $UDEV of another image succeeded"
fi
grep -q "already in use" "$E2E_WORK/map-busy.err" || fail "unexpected error: $(cat "$E2E_WORK/map-busy.err")"
log "refused: $(cat "$E2E_WORK/map-busy.err")"
[ "$(ls /dev/ublkc* | tr '\n' ' ')" = "$nodes_before" ] || fail "ublk nodes changed: $(ls /dev/ublkc*)"
[ "$(mapped_json | jq length)" = 2 ] || fail "list-mapped changed after a refused map"

step "(5) unmap of a mounted $UDEV is refused without --force"
t 120 mkfs.ext4 -q -F "$UDEV" || fail "mkfs.ext4 on $UDEV failed"
MNT=$E2E_WORK/mnt
mkdir -p "$MNT"
t 60 mount "$UDEV" "$MNT" || fail "mount $UDEV failed"
on_exit "_umount_quiet $MNT"
echo hello > "$MNT/f" && sync
if t 30 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "$UDEV" 2> "$E2E_WORK/unmap-busy.err"; then
  fail "unmap of a mounted $UDEV succeeded"
fi
grep -q "in use" "$E2E_WORK/unmap-busy.err" || fail "unexpected error: $(cat "$E2E_WORK/unmap-busy.err")"
log "refused: $(cat "$E2E_WORK/unmap-busy.err")"
[ -b "$UDEV" ] || fail "$UDEV went away after the refused unmap"
umount_dir "$MNT"

step "(6) unmap both: nothing left"
t 90 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "$UDEV" || fail "unmap $UDEV failed"
unmap_dev "$NDEV"
wait_until 30 "no ublk nodes" no_ublk_nodes
assert_no_nbd_connected
[ "$(jq '.devices | length' "$MAP_STATE/state.json")" = 0 ] || fail "the state file still lists $(state_devices)"
log "no /dev/ublkb*, no /dev/ublkc*, no nbd connected, the state file is empty"

step "(7) without ublk_drv: a clear error, nothing recorded"
stop_daemon   # it holds /dev/ublk-control open, and so the module
t 30 rmmod ublk_drv || fail "rmmod ublk_drv failed"
start_daemon --workers $WORKERS
if t 60 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -t ublk \
     rbd/ublk-other > /dev/null 2> "$E2E_WORK/map-nodrv.err"; then
  fail "map -t ublk succeeded without the ublk driver"
fi
grep -q "the ublk driver is not loaded: modprobe ublk_drv" "$E2E_WORK/map-nodrv.err" \
  || fail "unexpected error: $(cat "$E2E_WORK/map-nodrv.err")"
log "refused: $(cat "$E2E_WORK/map-nodrv.err")"
[ "$(jq '.devices | length' "$MAP_STATE/state.json")" = 0 ] || fail "the state file lists $(state_devices)"
[ "$(mapped_json)" = "[]" ] || fail "list-mapped is not empty"
load_ublk
stop_daemon
pass
