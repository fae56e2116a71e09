#!/bin/bash
# Sixteen images mapped at once by one daemon (one connection each): sixteen distinct
# /dev/nbdN, list-mapped lists all sixteen, each device holds its own data (a distinct
# pattern written to each, then all read back O_DIRECT and compared), a single rbd-nbdd
# process serves them, and all sixteen unmap cleanly.
# e2e-vm: VM_TIMEOUT=480
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

N=16
SIZE=$((64 << 20))
PAT=$E2E_WORK/pattern

cluster_up
start_daemon
step "create $N images"
for i in $(seq 0 $((N - 1))); do echo "rbd/many$i"; done \
  | t 300 xargs -P 4 -I{} rbd -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" create --size 64M {} \
  || fail "rbd create failed"

step "map $N images"
declare -a DEVS
for i in $(seq 0 $((N - 1))); do
  map_image "$SIZE" "rbd/many$i" --connections 1
  DEVS[i]=$MAPPED_DEV
done
uniq_devs=$(printf '%s\n' "${DEVS[@]}" | sort -u | wc -l)
[ "$uniq_devs" = "$N" ] || fail "$N maps gave only $uniq_devs distinct devices: ${DEVS[*]}"
log "devices: ${DEVS[*]}"

step "list-mapped lists all $N"
mapped_json > "$E2E_WORK/list-mapped.json" || fail "list-mapped failed"
t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" | sed 's/^/    /' >&2
[ "$(jq length "$E2E_WORK/list-mapped.json")" = "$N" ] \
  || fail "list-mapped lists $(jq length "$E2E_WORK/list-mapped.json") devices, expected $N"
for i in $(seq 0 $((N - 1))); do
  got=$(jq -r --arg s "rbd/many$i" '.[] | select(.spec == $s) | "\(.device) \(.live_connections)/\(.connections) \(.size) \(.kernel_connected)"' \
          "$E2E_WORK/list-mapped.json")
  [ "$got" = "${DEVS[i]} 1/1 $SIZE true" ] || fail "list-mapped for rbd/many$i: '$got', expected '${DEVS[i]} 1/1 $SIZE true'"
done

step "one daemon process serves them all"
procs=$(pgrep -x rbd-nbdd | tr '\n' ' ')
[ "$procs" = "$DAEMON_PID " ] || fail "rbd-nbdd processes: '$procs', expected only the daemon $DAEMON_PID"
log "one process (pid $DAEMON_PID), $(ls /proc/$DAEMON_PID/task | wc -l) threads," \
    "RSS $(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' /proc/$DAEMON_PID/status) with $N devices"

step "a distinct pattern on each device, at its start and near its end"
for i in $(seq 0 $((N - 1))); do
  { yes "device $i of $N, image rbd/many$i" || :; } | head -c $((2 << 20)) > "$PAT.$i"
  for off in 0 60; do
    t 60 dd if="$PAT.$i" of="${DEVS[i]}" bs=1M seek="$off" oflag=direct conv=notrunc status=none \
      || fail "write to ${DEVS[i]} failed"
  done
done
drop_caches
for i in $(seq 0 $((N - 1))); do
  for off in 0 60; do
    t 60 dd if="${DEVS[i]}" bs=1M skip="$off" count=2 iflag=direct status=none | cmp -s - "$PAT.$i" \
      || fail "${DEVS[i]} (rbd/many$i) at ${off} MiB does not hold its own pattern"
  done
done
log "all $N devices hold their own data"

step "unmap all $N"
for i in $(seq 0 $((N - 1))); do unmap_dev "${DEVS[i]}"; done
assert_no_nbd_connected
stop_daemon
pass
