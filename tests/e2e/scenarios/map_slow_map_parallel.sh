#!/bin/bash
# One slow map holds up nothing else (issue 11, item 3). A map whose monitor is hung (a
# listener that completes the TCP handshake from its backlog and never writes: what a
# stopped or overloaded monitor looks like) waits out its 20 s connect timeout. While it
# waits, `status`, `list-mapped`, a second map of a healthy image and the unmap of another
# device must all complete, each before the slow map has returned; then the slow map must
# fail with an error that names the hung monitor, and leave nothing behind.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"

cluster_up
start_daemon
rbd_create_many $((64 << 20)) rbd/fast-a rbd/fast-b rbd/slow || fail "cannot create the images"
map_image $((64 << 20)) rbd/fast-a
DEV_A=$MAPPED_DEV

# The hung monitor: listen, never accept, never write. Loopback only.
HUNG_PORT=$((MAP_CLUSTER_PORT + 50))
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True); time.sleep(600)' "$HUNG_PORT" > "$E2E_WORK/hung-mon.log" 2>&1 &
HUNG_PID=$!
on_exit "kill $HUNG_PID 2>/dev/null || true"
wait_until 30 "the hung monitor to listen" grep -q listening "$E2E_WORK/hung-mon.log"

step "a map against the hung monitor (connect timeout 20 s), in the background"
t0=$SECONDS
( t 120 env -u CEPH_CONF -u CEPH_ARGS "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -m "127.0.0.1:$HUNG_PORT" \
    --id admin -k "$CEPH_KEYRING" --connect-timeout 20 rbd/slow > "$E2E_WORK/slow-map.out" 2>&1
  echo "rc=$?" >> "$E2E_WORK/slow-map.out" ) &
SLOW_PID=$!
on_exit "kill $SLOW_PID 2>/dev/null || true"
# Give the CLI (it loads librbd: ~1 s here) time to hand the map to the daemon.
nap 4

# timed NAME CMD... : CMD must succeed while the slow map is still waiting; logs its time.
timed() {
  local name=$1 t1=$SECONDS
  shift
  "$@" > "$E2E_WORK/timed-$name.out" 2>&1 || { cat "$E2E_WORK/timed-$name.out" >&2; fail "$name failed"; }
  kill -0 "$SLOW_PID" 2>/dev/null \
    || fail "$name returned only after the slow map did ($(cat "$E2E_WORK/slow-map.out")): it waited for it"
  log "$name: $((SECONDS - t1)) s, while the slow map was still waiting ($((SECONDS - t0)) s in)"
}

step "status, list-mapped, another map and an unmap, while the slow map waits"
timed status rbdnbdd status --format json
timed list-mapped rbdnbdd list-mapped --format json
jq -e --arg d "$DEV_A" '.[] | select(.device == $d)' "$E2E_WORK/timed-list-mapped.out" > /dev/null \
  || fail "list-mapped does not show $DEV_A: $(cat "$E2E_WORK/timed-list-mapped.out")"
timed map-b "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" rbd/fast-b
DEV_B=$(sed -n 1p "$E2E_WORK/timed-map-b.out")
[[ "$DEV_B" =~ ^/dev/nbd[0-9]+$ ]] || fail "the second map printed '$DEV_B'"
on_exit "_unmap_quiet $DEV_B"
timed unmap-a rbdnbdd unmap "$DEV_A"
wait_nbd_size "$DEV_A" 0 30

# What the daemon itself took for each (the CLI's own start-up, ~1-2 s here, not counted):
# the daemon logs "control: OP answered in N ms" at debug level.
grep -E "control: (status|list|map|unmap) answered" "$DAEMON_LOG" | sed 's/^/    /' >&2
for op in status list; do
  ms=$(grep -E "control: $op answered in" "$DAEMON_LOG" | tail -n 1 | sed -E 's/.* in ([0-9.]+) ms.*/\1/')
  [ -n "$ms" ] || fail "the daemon log has no 'control: $op answered' line"
  [ "${ms%.*}" -lt 1000 ] || fail "the daemon took $ms ms to answer $op while the slow map waited"
done

step "the slow map fails, naming the hung monitor, and leaves nothing behind"
t 60 tail --pid="$SLOW_PID" -f /dev/null || fail "the slow map did not end"
out=$(cat "$E2E_WORK/slow-map.out")
log "slow map after $((SECONDS - t0)) s: $out"
grep -q "rc=0" <<< "$out" && fail "the map against a hung monitor succeeded: $out"
grep -qE "no Ceph banner|hung" <<< "$out" || fail "the slow map's error does not say the monitor is hung: $out"
l=$(mapped_json) || fail "list-mapped failed"
[ "$(jq -r '[.[].spec] | sort | join(" ")' <<< "$l")" = "rbd/fast-b" ] \
  || fail "after the failed map list-mapped shows: $l (expected only rbd/fast-b)"
[ -z "$(rbd_ status --format json rbd/slow | jq -r '.watchers[]?')" ] || fail "rbd/slow still has a watcher"
unmap_dev "$DEV_B"
rbd_ rm --no-progress rbd/fast-a >/dev/null 2>&1 && rbd_ rm --no-progress rbd/fast-b >/dev/null 2>&1 \
  && rbd_ rm --no-progress rbd/slow >/dev/null 2>&1 || fail "rbd rm failed"
pass "status, list-mapped, map and unmap all done while a map waited on a hung monitor"
