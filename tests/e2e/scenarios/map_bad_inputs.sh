#!/bin/bash
# Bad specs and bad credentials leave nothing behind. Each bad `rbd-nbdd map` must exit
# non-zero, within a bound, with exactly one line on stderr that names the problem, and
# print nothing on stdout; afterwards no nbd device is connected in the kernel (no pid
# attribute, size 0), list-mapped is empty, and the daemon is still the same live process.
# Cases: a spec without a pool, an unknown pool, image and snapshot, a wrong key (valid
# format, from --keyfile), client.kube (caps: pool kube) on pool rbd, and unreachable
# monitors (-m 127.0.0.1:9 --connect-timeout 3). Every case is tried; the scenario fails at
# the end if any did. Then the same daemon maps a good image (as admin, and as client.kube
# on its own pool) and unmaps it.
# e2e-vm: VM_TIMEOUT=420
# e2e-batch: map2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
require_cmd ceph-authtool

GOOD=rbd/good
SIZE=$((64 << 20))

cluster_up
start_daemon
PID0=$DAEMON_PID
rbd_ create --size 64M "$GOOD" || fail "rbd create $GOOD failed"
rbd_ create --size 64M kube/kubes || fail "rbd create kube/kubes failed"
( umask 077; t 20 ceph-authtool --gen-print-key > "$E2E_WORK/wrong.key" ) || fail "ceph-authtool --gen-print-key failed"
ADMIN=(-c "$CEPH_CONF" -k "$CEPH_KEYRING")

FAILED=()
# case_ NAME REGEX SECS MAP_ARGS... : the map must fail as described above.
case_() {
  local name=$1 re=$2 secs=$3 rc=0 t0=$SECONDS why=
  shift 3
  local out=$E2E_WORK/bad.out err=$E2E_WORK/bad.err
  t $((secs + 30)) "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" "$@" > "$out" 2> "$err" < /dev/null || rc=$?
  # builtins where they do (an exec costs up to a second in the guest)
  local dt=$((SECONDS - t0)) lines errl=()
  mapfile -t errl < "$err"
  lines=${#errl[@]}
  if [ "$rc" = 0 ]; then why="the map succeeded: $(< "$out")"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then why="it hung"
  elif [ "$dt" -gt "$secs" ]; then why="it took ${dt}s (bound ${secs}s)"
  elif [ "$lines" != 1 ]; then why="$lines lines on stderr, expected one"
  elif ! grep -qiE "$re" "$err"; then why="the error does not match /$re/"
  elif [ -s "$out" ]; then why="it printed on stdout: $(< "$out")"
  fi
  local c
  c=$(nbd_connected_list)
  [ -z "$c" ] || why="${why:+$why; }device(s) left connected: ${c//$'\n'/ }"
  local l
  l=$(mapped_json) || l="(list-mapped failed)"
  [ "$l" = "[]" ] || why="${why:+$why; }list-mapped lists: $l"
  daemon_alive && [ "$DAEMON_PID" = "$PID0" ] || why="${why:+$why; }the daemon is gone$(_server_death)"
  if [ -n "$why" ]; then
    log "FAILED case '$name' (exit $rc, ${dt}s): $why"
    sed 's/^/    stderr: /' "$err" >&2
    FAILED+=("$name")
  else
    log "ok: $name -> exit $rc in ${dt}s: ${errl[0]}"
  fi
  daemon_alive || fail "the daemon died during case '$name'"
}

step "bad inputs"
case_ "bad spec (no pool)" "no pool|pool/" 15 "${ADMIN[@]}" justanimage
case_ "unknown pool" "pool.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" nopool/img
case_ "unknown image" "image.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" rbd/noimage
case_ "unknown snapshot" "snap.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" "$GOOD@nosnap"
case_ "wrong key" "authentication failed|wrong key" 20 -c "$CEPH_CONF" --id admin \
  --keyfile "$E2E_WORK/wrong.key" "$GOOD"
case_ "client.kube on pool rbd" "not allowed.*caps|caps.*(denied|not allowed)|permission" 20 \
  -c "$CEPH_CONF" --id kube -k "$KUBE_KEYRING" "$GOOD"
case_ "unreachable monitors" "monitor.*(did not answer|unreachable|timed out)" 15 \
  "${ADMIN[@]}" -m 127.0.0.1:9 --connect-timeout 3 "$GOOD"
log "kernel: $(dmesg | grep -c 'nbd' || true) nbd lines in dmesg"

step "the same daemon still maps good images"
map_image "$SIZE" "$GOOD"
DEV=$MAPPED_DEV
t 60 dd if=/dev/urandom of="$E2E_WORK/blob" bs=1M count=2 status=none
t 60 dd if="$E2E_WORK/blob" of="$DEV" bs=1M oflag=direct conv=notrunc status=none || fail "write to $DEV failed"
t 60 dd if="$DEV" bs=1M count=2 iflag=direct status=none | cmp -s - "$E2E_WORK/blob" || fail "$DEV reads other data"
unmap_dev "$DEV"
log "as client.kube on pool kube:"
out=$(t 120 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" --id kube -k "$KUBE_KEYRING" kube/kubes) \
  || fail "client.kube could not map kube/kubes"
on_exit "_unmap_quiet $out"
[ "$(nbd_size "$out")" = "$SIZE" ] || fail "$out: size $(nbd_size "$out"), expected $SIZE"
unmap_dev "$out"
[ "$DAEMON_PID" = "$PID0" ] || fail "the daemon changed"

[ ${#FAILED[@]} = 0 ] || fail "${#FAILED[@]} case(s) failed: $(IFS=';'; echo "${FAILED[*]}")"
assert_no_nbd_connected
stop_daemon
pass "every bad input: one line, non-zero exit, nothing left"
