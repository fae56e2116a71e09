#!/bin/bash
# Sixteen images mapped at once by one daemon (one connection each; the sixteen map and
# the sixteen unmap requests are sent in parallel): sixteen distinct /dev/nbdN, list-mapped
# lists all sixteen, each device holds its own data (a distinct pattern written to each,
# then all read back O_DIRECT and compared), a single rbd-nbdd process serves them, and
# all sixteen unmap cleanly.
# e2e-vm: VM_TIMEOUT=480
# e2e-batch: map3
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

N=16
SIZE=$((64 << 20))

cluster_up
start_daemon
step "create $N images"
rbd_create_many "$SIZE" $(for i in $(seq 0 $((N - 1))); do echo "rbd/many$i"; done) \
  || fail "creating the $N images failed"

step "map $N images, all requests at once"
# Sixteen `rbd-nbdd map` clients in parallel, as a node plugin may issue them: the daemon
# must hand each its own device.
declare -a DEVS
PIDS=()   # a bare `wait` would wait for the daemon too
for i in $(seq 0 $((N - 1))); do
  ( rc=0
    t 300 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" \
      --connections 1 "rbd/many$i" > "$E2E_WORK/map.$i.out" 2> "$E2E_WORK/map.$i.err" || rc=$?
    echo "$rc" > "$E2E_WORK/map.$i.rc" ) &
  PIDS+=($!)
done
wait "${PIDS[@]}"
# (the results are read with builtins, $(< F): 16 x 3 cats cost ~30 s in a loaded guest)
for i in $(seq 0 $((N - 1))); do
  DEVS[i]=$(< "$E2E_WORK/map.$i.out")
  [[ "${DEVS[i]}" =~ ^/dev/nbd[0-9]+$ ]] && on_exit "_unmap_quiet ${DEVS[i]}"
done
for i in $(seq 0 $((N - 1))); do
  [ "$(< "$E2E_WORK/map.$i.rc")" = 0 ] \
    || fail "map rbd/many$i exited $(< "$E2E_WORK/map.$i.rc"): $(< "$E2E_WORK/map.$i.err")"
  [[ "${DEVS[i]}" =~ ^/dev/nbd[0-9]+$ ]] || fail "map rbd/many$i printed '${DEVS[i]}'"
  [ "$(nbd_size "${DEVS[i]}")" = "$SIZE" ] \
    || fail "map rbd/many$i returned before ${DEVS[i]} was ready: size $(nbd_size "${DEVS[i]}")"
done
uniq_devs=$(printf '%s\n' "${DEVS[@]}" | sort -u | wc -l)
[ "$uniq_devs" = "$N" ] || fail "$N maps gave only $uniq_devs distinct devices: ${DEVS[*]}"
log "devices: ${DEVS[*]}"

step "list-mapped lists all $N"
mapped_json > "$E2E_WORK/list-mapped.json" || fail "list-mapped failed"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | sed 's/^/    /' >&2
[ "$(jq length "$E2E_WORK/list-mapped.json")" = "$N" ] \
  || fail "list-mapped lists $(jq length "$E2E_WORK/list-mapped.json") devices, expected $N"
want=$(for i in $(seq 0 $((N - 1))); do echo "rbd/many$i ${DEVS[i]} 1/1 $SIZE true"; done | sort)
got=$(jq -r '.[] | "\(.spec) \(.device) \(.live_connections)/\(.connections) \(.size) \(.kernel_connected)"' \
        "$E2E_WORK/list-mapped.json" | sort)
[ "$got" = "$want" ] || fail "list-mapped differs from what was mapped: $(diff <(echo "$want") <(echo "$got") | tr '\n' ' ')"

step "one daemon process serves them all"
procs=$(pgrep -x rbd-nbdd | tr '\n' ' ')
[ "$procs" = "$DAEMON_PID " ] || fail "rbd-nbdd processes: '$procs', expected only the daemon $DAEMON_PID"
log "one process (pid $DAEMON_PID), $(ls /proc/$DAEMON_PID/task | wc -l) threads," \
    "RSS $(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' /proc/$DAEMON_PID/status) with $N devices"

step "a distinct pattern on each device, at its start and near its end"
# One fio process writes every device's own 32-bit pattern (O_DIRECT, 1 MiB at 0 and at
# 60 MiB; a thread per device and region), a second one reads all of them back after the
# writes to every device are done and verifies each against its device's pattern. (A dd per
# write and per read was ~200 execs, ~70 s in the guest.)
# pattern_jobs MODE... : the fio jobs (each with MODE), less the first --name (run_fio's NAME)
pattern_jobs() {
  local i off pat
  JOBS=()
  for i in $(seq 0 $((N - 1))); do
    printf -v pat '0x%08x' $((0x5a5a0000 + i))
    for off in 0 60; do
      JOBS+=(--name="nbd$i-at-${off}M" --filename="${DEVS[i]}" --offset="${off}M" --size=1M --bs=1M
             --rw=write --direct=1 --ioengine=psync --thread --verify=pattern
             --verify_pattern="$pat" --verify_fatal=1 --verify_dump=1 "$@")
    done
  done
  JOBS=("${JOBS[@]:1}")
}
pattern_jobs --do_verify=0
run_fio patterns-write "${JOBS[@]}"
drop_caches
pattern_jobs --verify_only=1
run_fio patterns-verify "${JOBS[@]}"
[ "$(jq '[.jobs[] | .read.io_bytes] | add' "$E2E_WORK/fio-patterns-verify.json")" = $((2 * N << 20)) ] \
  || fail "the verify pass did not read 2 MiB from each of the $N devices"
log "all $N devices hold their own data"

step "unmap all $N, all requests at once"
PIDS=()
for i in $(seq 0 $((N - 1))); do
  ( rc=0
    t 300 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "${DEVS[i]}" 2> "$E2E_WORK/unmap.$i.err" || rc=$?
    echo "$rc" > "$E2E_WORK/unmap.$i.rc" ) &
  PIDS+=($!)
done
wait "${PIDS[@]}"
for i in $(seq 0 $((N - 1))); do
  [ "$(< "$E2E_WORK/unmap.$i.rc")" = 0 ] \
    || fail "unmap ${DEVS[i]} exited $(< "$E2E_WORK/unmap.$i.rc"): $(< "$E2E_WORK/unmap.$i.err")"
  wait_nbd_size "${DEVS[i]}" 0 30
done
assert_no_nbd_connected
stop_daemon
pass
