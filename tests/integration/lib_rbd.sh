# shellcheck shell=bash
# tests/integration/lib_rbd.sh - helpers for tests/integration/rbd_*.sh: rbd-nbdd serving
# real RBD images of the project's dev cluster (deploy/dev-cluster.sh).
#
# Source it first thing:   . "$(dirname "$0")/lib_rbd.sh"
#
# It sources tests/lib/common.sh (log/fail/skip/pass, t, on_exit, TMPD, make_scratch,
# sha256, random_file, SERVER_* and uri) and tests/lib/ceph.sh (ceph_up, rbd_create,
# unique_image_name, rbd_sha256, ceph_key, ceph_osd_freeze, ...). All rbd_*.sh of one run
# share one dev cluster: ceph_up starts it, or reuses the one already running in
# $RBDNBD_CLUSTER_DIR. Each test makes its own uniquely named images; rbd_create removes
# them at exit, after the servers started later have been stopped (on_exit hooks run
# last-registered first): a server's watch would make `rbd rm` refuse.
#
# Settings (environment), besides common.sh's:
#   RBDNBD_CLUSTER_DIR   the dev cluster directory (default /tmp/rbd-nbdd-cluster)
#   DEV_CLUSTER_PORT     its mon port, when this run creates it (see deploy/dev-cluster.sh)
#   RBD_LOG_LEVEL        the servers' --log-level unless a test passes one (default info)
#   CI=true              a missing Ceph tool or cluster is a failure, never a skip
#
# After rbd_setup: ceph.sh's exports (CEPH_CONF, CEPH_KEYRING = client.admin's keyring,
# CEPH_KUBE_KEYRING, RBDNBD_CLUSTER_DIR) and RBD_DIR (the cluster dir); the pools are rbd
# and kube. rbd-nbdd honours CEPH_KEYRING like Ceph's tools do: a server meant to find its
# key elsewhere must run without it (RBD_SERVER_ENV=(-u CEPH_KEYRING)).

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/ceph.sh
. "$ROOT/tests/lib/ceph.sh"

# skip, or in CI a failure: nothing may skip silently there.
rbd_skip() { [ "${CI:-}" = true ] && fail "$* (CI=true: not skipping)"; skip "$*"; }

RBD_SERVER_PIDS=()
declare -A RBD_SERVER_LOGS=()
RBD_USERS=()
RBD_SERVER_ENV=()

# Registered before any image or server exists, so it runs after their teardown.
_lib_rbd_users_cleanup() {
  local u
  for u in "${RBD_USERS[@]}"; do t 30 ceph auth rm "$u" >/dev/null 2>&1; done
  return 0
}
on_exit _lib_rbd_users_cleanup

# ---------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------
# rbd_setup : the dev cluster is up and the Ceph tools (and servers) point at it.
rbd_setup() {
  [ -x "$RBDNBD" ] || fail "rbd-nbdd binary not found at $RBDNBD (build first, or set RBDNBD)"
  ceph_up
  RBD_DIR=$RBDNBD_CLUSTER_DIR
  [ -f "$CEPH_CONF" ] || fail "no ceph.conf at $CEPH_CONF after ceph_up"
  unset CEPH_ARGS
  ceph_cli -s >/dev/null 2>&1 || fail "the dev cluster in $RBD_DIR does not answer"
}

# rbd_user_create NAME [caps...] : a cephx user (client.NAME), removed on exit; prints
# nothing, writes its keyring to $TMPD/client.NAME.keyring and its key to
# $TMPD/client.NAME.key (0600 both).
rbd_user_create() {
  local name=$1; shift
  RBD_USERS+=("client.$name")
  ( umask 077
    t 30 ceph auth get-or-create "client.$name" "$@" >"$TMPD/client.$name.keyring" ) \
    || fail "ceph auth get-or-create client.$name failed"
  ( umask 077; t 30 ceph auth get-key "client.$name" >"$TMPD/client.$name.key" ) \
    || fail "ceph auth get-key client.$name failed"
}

# rbd_sha256_head SPEC LENGTH : sha256 of the first LENGTH bytes of the image, as `rbd
# export` (another librbd client than the server) reads them.
rbd_sha256_head() {
  local out rc
  out=$(set -o pipefail; t 300 rbd export --no-progress "$1" - 2>/dev/null | head -c "$2" | sha256sum) ||
    { rc=$?; fail "rbd export $1 failed (exit $rc)"; }
  echo "${out%% *}"
}

# rbd_used SPEC : bytes in use by the image's head (rbd du, from the object map).
rbd_used() {
  local img=${1#*/}
  t 60 rbd du --format json "$1" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
for i in d["images"]:
    if i["name"] == sys.argv[1] and i.get("snapshot") is None:
        print(i["used_size"]); break
else:
    sys.exit("image not in rbd du output")' "$img" || fail "rbd du $1 failed"
}

# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------
# start_rbd_server [serve options...] : rbd-nbdd serve with those options (--rbd SPEC ...),
# on a fresh Unix socket; waits (<= T_START s) for the socket. Sets SERVER_PID,
# SERVER_SOCK, SERVER_LOG (so common.sh's uri/stop_server apply to the latest one).
# Its stdin is $RBD_STDIN (default /dev/null); other fds the caller opened are inherited
# (--key-fd); RBD_SERVER_ENV holds env(1) options for it (e.g. -u CEPH_KEYRING).
# Stopped at exit if it still runs (before the images made earlier are removed).
start_rbd_server() {
  local n=${#RBD_SERVER_PIDS[@]}
  SERVER_SOCK="$TMPD/rbd$n.sock"
  SERVER_LOG="$TMPD/rbd$n.log"
  local -a lvl=(--log-level "${RBD_LOG_LEVEL:-info}")
  case " $* " in *" --log-level "*) lvl=() ;; esac
  log "starting: rbd-nbdd serve -s $SERVER_SOCK ${lvl[*]} $*"
  START_STDIN=${RBD_STDIN:-/dev/null} start_ready server "$SERVER_LOG" "$T_START" test -S "$SERVER_SOCK" \
    -- env "${RBD_SERVER_ENV[@]}" "$RBDNBD" serve -s "$SERVER_SOCK" "${lvl[@]}" "$@"
  SERVER_PID=$STARTED_PID
  RBD_SERVER_PIDS+=("$SERVER_PID")
  RBD_SERVER_LOGS[$SERVER_PID]=$SERVER_LOG
  on_exit "term_wait $SERVER_PID 15"
  log "server ready (pid $SERVER_PID)"
}

# stop_rbd_server [PID] : SIGTERM the server (default: the latest), bounded wait; it must
# exit 0 and its log must hold no crash or sanitizer report.
stop_rbd_server() {
  local pid=${1:-$SERVER_PID}
  [ -n "$pid" ] || fail "stop_rbd_server: no server"
  _alive "$pid" || fail "server $pid died before it was told to stop: $(tail -n 5 "${RBD_SERVER_LOGS[$pid]}")"
  [ "$pid" != "$SERVER_PID" ] || SERVER_PID=
  stop_checked server "$pid" "${RBD_SERVER_LOGS[$pid]}" "$T_STOP"
}

# rbd_uri SPEC [SOCK] : the NBD URI of image SPEC (the export name is the spec).
rbd_uri() { printf 'nbd+unix:///%s?socket=%s' "$1" "${2:-$SERVER_SOCK}"; }

# nbdinfo_json URI FIELD : one field of the (single) export nbdinfo --json describes.
nbdinfo_json() {
  t 30 nbdinfo --json "$1" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)["exports"][0][sys.argv[1]]
print(str(v).lower() if isinstance(v, bool) else v)' "$2"
}

# server_errors LOG : the error lines of a server log (level E), if any.
server_errors() { grep -E '^[0-9T:.-]+ E \[' "$1" || true; }

# sock_listening SOCK : 0 if something accepts connections on the Unix socket.
sock_listening() {
  [ -S "$1" ] || return 1
  /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(1)' "$1"
}

# procs_with ARG : pids of live processes whose argv holds ARG (for "nothing left running").
procs_with() {
  local d
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    if tr '\0' '\n' 2>/dev/null <"$d/cmdline" | grep -qxF -- "$1"; then
      _alive "${d#/proc/}" && echo "${d#/proc/}"
    fi
  done
  return 0
}

# expect_start_failure WHAT PHRASE MAXSECS [serve options...] : rbd-nbdd serve with those
# options must fail at start-up within MAXSECS with exit code 2 and exactly one error
# line that contains PHRASE (an ERE, case-insensitive), print nothing but log lines (no
# library noise), leave no process behind and no socket listening. Returns 1 (after
# logging why) instead of failing, so a script can check every case before it fails.
# $RBD_FAIL_OUT holds the output.
expect_start_failure() {
  local what=$1 phrase=$2 maxs=$3; shift 3
  local n=$((${#RBD_SERVER_PIDS[@]} + RANDOM))
  local sock="$TMPD/bad$n.sock" out="$TMPD/bad$n.out" rc=0 t0=$EPOCHREALTIME
  RBD_FAIL_OUT=$out
  timeout --kill-after=5 $((maxs + 20)) env "${RBD_SERVER_ENV[@]}" "$RBDNBD" serve -s "$sock" "$@" \
    >"$out" 2>&1 <"${RBD_STDIN:-/dev/null}" || rc=$?
  local dt; dt=$(/usr/bin/python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
  local ok=1 errs others
  errs=$(server_errors "$out")
  others=$(grep -vE '^[0-9T:.-]+ [TDIWEC] \[' "$out" | grep -v '^$' || true)
  if [ "$rc" != 2 ]; then log "$what: exit code $rc, expected 2"; ok=0; fi
  if [ "$(printf '%s' "$errs" | grep -c .)" != 1 ]; then log "$what: expected exactly one error line"; ok=0; fi
  if ! printf '%s\n' "$errs" | grep -qiE -- "$phrase"; then log "$what: the error does not match /$phrase/"; ok=0; fi
  if [ -n "$others" ]; then log "$what: output other than log lines (library noise?)"; ok=0; fi
  if /usr/bin/python3 -c "import sys; sys.exit(0 if $dt <= $maxs else 1)"; then :; else
    log "$what: took ${dt}s, more than ${maxs}s"; ok=0
  fi
  local left; left=$(procs_with "$sock")
  if [ -n "$left" ]; then log "$what: processes left running: $left"; ok=0; fi
  if sock_listening "$sock"; then log "$what: socket $sock still accepts connections"; ok=0; fi
  if [ "$ok" = 1 ]; then
    log "ok   $what (${dt}s, exit 2): $(printf '%s' "$errs" | sed 's/^[^]]*] //')"
    return 0
  fi
  log "FAIL $what (${dt}s, exit $rc); output:"
  sed 's/^/    /' "$out" >&2
  return 1
}
