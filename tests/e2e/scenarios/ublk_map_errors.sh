#!/bin/bash
# `rbd-nbdd map -t ublk` refused by the kernel: each refusal says why and what to do, and
# leaves nothing behind (no new /dev/ublkb* or /dev/ublkc*, no state entry, nothing listed),
# and the daemon maps fine afterwards:
# (1) --device N where ublk id N belongs to ANOTHER ublk server (an `rbd-nbdd serve
#     --ublk-id N`): "the id is in use: /dev/ublkcN belongs to another ublk server";
# (2) a daemon without CAP_SYS_ADMIN (root in a container without it: setpriv drops it from
#     the bounding set): "permission denied: the ublk driver wants CAP_SYS_ADMIN";
# (3) then the first daemon maps -t ublk that very id (a 1 MiB fio verify), unmaps, and
#     nothing is left: no ublk node, an empty state file.
# Not here, because Debian's 6.12 cannot produce them for a privileged server: no free id
# (the driver's limit, ublks_max, counts only UBLK_F_UNPRIVILEGED_DEV devices in this
# kernel, `modinfo ublk_drv`; earlier kernels made ADD_DEV EACCES at it, which rbd-nbdd
# reports as the limit: unit tests), and a requested feature the kernel lacks (6.12 has
# every flag map asks for; the one it lacks, UPDATE_SIZE, is ublk_map_daemon's resize step).
# e2e-kernel: 6.12
# e2e-batch: k612
# e2e-vm: VM_TIMEOUT=300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_ublk.sh"

ID=5
SIZE=$((16 << 20))

load_ublk
no_ublk_nodes || fail "ublk nodes exist before the scenario: $(ls /dev/ublk* 2>&1)"
cluster_up
start_daemon --workers 1
rbd_create_many $SIZE rbd/uerr0 rbd/uerr1 || fail "creating the images failed"

nodes() { { compgen -G '/dev/ublk[bc]*' || true; } | sort | tr '\n' ' '; }
# must_refuse WHAT SOCKET PATTERN MAP_ARGS... : map -t ublk through SOCKET fails, its error
# says PATTERN, and nothing changed: the same ublk nodes, no state entry, nothing listed.
must_refuse() {
  local what=$1 sock=$2 pattern=$3 before err=$E2E_WORK/refused.err
  shift 3
  before=$(nodes)
  if t 60 "$RBDNBD_BIN" map --control-socket "$sock" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -t ublk "$@" \
       > /dev/null 2> "$err"; then
    fail "$what: map -t ublk $* succeeded"
  fi
  log "$what: refused: $(< "$err")"
  grep -qF -- "$pattern" "$err" || fail "$what: the error does not say '$pattern'"
  [ "$(nodes)" = "$before" ] || fail "$what: ublk nodes changed: '$before' -> '$(nodes)'"
  [ "$(t 20 "$RBDNBD_BIN" list-mapped --control-socket "$sock" --format json)" = "[]" ] \
    || fail "$what: list-mapped is not empty"
}
state_empty() { [ "$(jq '.devices | length' "$1/state.json")" = 0 ] || fail "$1/state.json lists $(jq -c .devices "$1/state.json")"; }

step "(1) ublk id $ID held by another ublk server"
SOCK2=$E2E_WORK/serve.sock
E2E_SOCK=$SOCK2 start_ublk_server -e name=mem,backend=memory,size=$SIZE --workers 1 --ublk-id $ID
[ -b /dev/ublkb$ID ] || fail "the serve did not make /dev/ublkb$ID"
must_refuse "id $ID in use" "$MAP_SOCK" "the id is in use: /dev/ublkc$ID belongs to another ublk server" \
  --device $ID rbd/uerr0
state_empty "$MAP_STATE"
[ -b /dev/ublkb$ID ] && server_alive || fail "the other server's /dev/ublkb$ID is gone"

stop_server
SERVER_PID=$DAEMON_PID SERVER_LOG=$DAEMON_LOG   # lib.sh's watch is on the daemon again
wait_until 30 "no ublk nodes after the serve stopped" no_ublk_nodes

step "(2) a daemon without CAP_SYS_ADMIN"
SOCK3=$E2E_WORK/nocap.sock STATE3=$E2E_WORK/nocap-state
mkdir -p "$STATE3"
start_ready "the daemon without CAP_SYS_ADMIN" "$E2E_WORK/daemon-nocap.log" 120 test -S "$SOCK3" \
  -- setpriv --bounding-set -sys_admin \
     "$RBDNBD_BIN" daemon --control-socket "$SOCK3" --state-dir "$STATE3" --log-level "$E2E_LOG_LEVEL"
NOCAP_PID=$STARTED_PID
on_exit "term_wait $NOCAP_PID 20"
capeff=$(awk '/^CapEff/ {print $2}' /proc/$NOCAP_PID/status)
(( (0x$capeff >> 21) & 1 )) && fail "the daemon has CAP_SYS_ADMIN (CapEff $capeff)"
log "daemon pid $NOCAP_PID, CapEff $capeff (no CAP_SYS_ADMIN)"
must_refuse "no CAP_SYS_ADMIN" "$SOCK3" "permission denied: the ublk driver wants CAP_SYS_ADMIN" rbd/uerr0
state_empty "$STATE3"
_alive "$NOCAP_PID" || fail "the daemon without CAP_SYS_ADMIN died"
stop_checked "the daemon without CAP_SYS_ADMIN" "$NOCAP_PID" "$E2E_WORK/daemon-nocap.log" 60

step "(3) the daemon maps -t ublk afterwards; unmap leaves nothing"
daemon_alive || fail "the daemon died"
out=$(t 120 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -t ublk \
        --device $ID rbd/uerr1) || fail "map -t ublk --device $ID failed after the refusals"
[ "$out" = /dev/ublkb$ID ] || fail "map printed '$out', expected /dev/ublkb$ID"
fio_verify after-refusals /dev/ublkb$ID 1M
t 90 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" /dev/ublkb$ID || fail "unmap /dev/ublkb$ID failed"
wait_until 30 "no ublk nodes" no_ublk_nodes
state_empty "$MAP_STATE"
[ "$(mapped_json)" = "[]" ] || fail "list-mapped is not empty"
stop_daemon
pass
