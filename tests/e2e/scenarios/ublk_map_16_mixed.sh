#!/bin/bash
# Sixteen devices in ONE daemon, eight /dev/nbdN and eight /dev/ublkbN (Debian's 6.12):
# (1) the sixteen `rbd-nbdd map` requests are sent at once (-t nbd and -t ublk mixed); each
#     gets its own device, ready (its sysfs size) when map returns;
# (2) list-mapped lists all sixteen with their type, device and image; one process serves them;
# (3) a distinct pattern written to each device (1 MiB at its start and near its end, one
#     fio process), each region read back O_DIRECT and verified;
# (4) SIGTERM (the upgrade path): all sixteen stay in the kernel; a new daemon takes them
#     back from its state file (ublk: user recovery), list-mapped shows them mapped, and
#     every device's pattern (all written before any was read) reads back through it;
# (5) the sixteen unmaps sent at once: no /dev/ublkb* or /dev/ublkc*, no nbd connected,
#     an empty state file.
# e2e-kernel: 6.12
# e2e-batch: k612
# e2e-vm: VM_MEM=3G VM_TIMEOUT=420
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_ublk.sh"
expect_nbd_reconnects   # the idle nbd devices' sockets close with the first daemon

N=16        # devices 0..7 nbd, 8..15 ublk
SIZE=$((32 << 20))
type_of() { if [ "$1" -lt 8 ]; then echo nbd; else echo ublk; fi; }

load_ublk
no_ublk_nodes || fail "ublk nodes exist before the scenario: $(ls /dev/ublk* 2>&1)"
cluster_up
start_daemon --workers 2
rbd_create_many "$SIZE" $(for i in $(seq 0 $((N - 1))); do echo "rbd/mix$i"; done) \
  || fail "creating the $N images failed"

step "(1) map $N images (8 -t nbd, 8 -t ublk), all requests at once"
map_args_of() { echo -t "$(type_of "$1")"; }
map_all_at_once "$SIZE" $(for i in $(seq 0 $((N - 1))); do echo "rbd/mix$i"; done)
for i in $(seq 0 $((N - 1))); do
  if [ "$(type_of "$i")" = nbd ]; then re='^/dev/nbd[0-9]+$'; else re='^/dev/ublkb[0-9]+$'; fi
  [[ "${DEVS[i]}" =~ $re ]] || fail "map -t $(type_of "$i") rbd/mix$i printed '${DEVS[i]}'"
done

# check_listed WHAT : list-mapped lists the sixteen, mapped, with their type and image.
want=$(for i in $(seq 0 $((N - 1))); do echo "$(type_of "$i") ${DEVS[i]} rbd/mix$i $SIZE mapped"; done | sort)
check_listed() {
  local got
  got=$(mapped_json | jq -r '.[] | "\(.type) \(.device) \(.spec) \(.size) \(.state)"' | sort) \
    || fail "$1: list-mapped failed"
  [ "$got" = "$want" ] || fail "$1: list-mapped differs: $(diff <(echo "$want") <(echo "$got") | tr '\n' ' ')"
  [ "$(jq '.devices | length' "$MAP_STATE/state.json")" = "$N" ] || fail "$1: the state file does not list $N"
}

step "(2) list-mapped lists all $N with their type; one process"
check_listed "after map"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | sed 's/^/    /' >&2
assert_one_daemon_process

step "(3) a distinct pattern on each device, at its start and near its end"
# verify_patterns NAME : every device's pattern reads back (O_DIRECT).
verify_patterns() {
  drop_caches
  pattern_jobs 0x6b6b0000 30 256k --verify_only=1
  run_fio "$1" "${JOBS[@]}"
  [ "$(jq '[.jobs[] | .read.io_bytes] | add' "$E2E_WORK/fio-$1.json")" = $((2 * N << 20)) ] \
    || fail "$1: did not read 2 MiB from each of the $N devices"
}
pattern_jobs 0x6b6b0000 30 256k   # each job reads its region back after writing it; all are read again after (4)
run_fio patterns-write "${JOBS[@]}"
log "all $N devices hold their own data"

step "(4) SIGTERM: all $N stay; a new daemon takes them back"
stop_daemon
for i in $(seq 0 $((N - 1))); do
  [ "$(nbd_size "${DEVS[i]}")" = "$SIZE" ] || fail "${DEVS[i]} went away with the daemon"
done
t0=$SECONDS
start_daemon --workers 2
log "the new daemon serves all $N again $((SECONDS - t0)) s after its start"
check_listed "after the restart"
[ "$(grep -c 'ublk[0-9]*: recovered' "$DAEMON_LOG")" = 8 ] \
  || fail "the new daemon did not recover the 8 ublk devices: $(grep -c 'recovered' "$DAEMON_LOG") lines"
verify_patterns patterns-after-restart
log "all $N patterns read back through the new daemon"

step "(5) unmap all $N, all requests at once"
unmap_all_at_once "${DEVS[@]}"
wait_until 30 "no ublk nodes" no_ublk_nodes
assert_no_nbd_connected
[ "$(jq '.devices | length' "$MAP_STATE/state.json")" = 0 ] \
  || fail "the state file still lists $(jq -c .devices "$MAP_STATE/state.json")"
log "no /dev/ublkb*, no /dev/ublkc*, no nbd connected, the state file is empty"
stop_daemon
pass
