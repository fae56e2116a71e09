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
map_args_of() { echo --connections 1; }
map_all_at_once "$SIZE" $(for i in $(seq 0 $((N - 1))); do echo "rbd/many$i"; done)
for i in $(seq 0 $((N - 1))); do
  [[ "${DEVS[i]}" =~ ^/dev/nbd[0-9]+$ ]] || fail "map rbd/many$i printed '${DEVS[i]}', not a /dev/nbdN"
done

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
assert_one_daemon_process

step "a distinct pattern on each device, at its start and near its end"
# One fio process writes every device's own 32-bit pattern (O_DIRECT, 1 MiB at 0 and at
# 60 MiB; a thread per device and region), a second one reads all of them back after the
# writes to every device are done and verifies each against its device's pattern. (A dd per
# write and per read was ~200 execs, ~70 s in the guest.)
pattern_jobs 0x5a5a0000 60 1M --do_verify=0
run_fio patterns-write "${JOBS[@]}"
drop_caches
pattern_jobs 0x5a5a0000 60 1M --verify_only=1
run_fio patterns-verify "${JOBS[@]}"
[ "$(jq '[.jobs[] | .read.io_bytes] | add' "$E2E_WORK/fio-patterns-verify.json")" = $((2 * N << 20)) ] \
  || fail "the verify pass did not read 2 MiB from each of the $N devices"
log "all $N devices hold their own data"

step "unmap all $N, all requests at once"
unmap_all_at_once "${DEVS[@]}"
for i in $(seq 0 $((N - 1))); do wait_nbd_size "${DEVS[i]}" 0 30; done
assert_no_nbd_connected
stop_daemon
pass
