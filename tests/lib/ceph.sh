# shellcheck shell=bash
# tests/lib/ceph.sh - Ceph helpers for tests and benchmarks: the dev cluster, images, users.
#
# Source it after tests/lib/common.sh (it uses log/fail/skip, t and on_exit):
#   . "$(dirname "$0")/../lib/common.sh"
#   . "$ROOT/tests/lib/ceph.sh"              # common.sh has cd-ed into $TMPD: use $ROOT
#   ceph_up                                  # start or reuse the dev cluster, export its env
#   img=rbd/$(unique_image_name)
#   rbd_create "$img" 256M all               # every feature, journaling included
#   ... serve it, do I/O ...
#   [ "$(rbd_sha256 "$img")" = "$expected" ] || fail "data differs"
#
# One cluster per test run. tests/run-all.sh (and bench/) should start the cluster once,
# export its env, and wipe it at the end:
#     deploy/dev-cluster.sh start && eval "$(deploy/dev-cluster.sh env)"   # ... tests ...
#     deploy/dev-cluster.sh wipe
# ceph_up then finds it running (RBDNBD_CLUSTER_DIR) and only waits until it is ready
# (~0.1 s). A test run on its own starts the cluster at
# ${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster} and leaves it running for the next test: stop
# it with `deploy/dev-cluster.sh stop` or `wipe`. Tests never stop the shared cluster;
# ceph_down is for the harness that started it. Tests remove the images they create (the
# on_exit hook rbd_create installs), unless CEPH_KEEP_IMAGES=1.
#
# After ceph_up these are exported:
#   CEPH_CONF            DIR/ceph.conf  (every Ceph tool and librados reads it)
#   CEPH_KEYRING         DIR/keyring, client.admin. Ceph's tools read CEPH_KEYRING and it
#                        wins over the conf, so a tool run as another user needs --keyring.
#   CEPH_MON_HOST        [v2:127.0.0.1:PORT,v1:127.0.0.1:PORT+1]
#   RBDNBD_CLUSTER_DIR   the cluster's directory
#   CEPH_KUBE_KEYRING    DIR/client.kube.keyring (client.kube: rbd on pool kube only)
#
# Settings: CEPH_T (seconds for each Ceph command, default 120), CEPH_START_T (ceph_up's
# bound on `dev-cluster.sh start`, default 120).

CEPH_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV_CLUSTER=${DEV_CLUSTER:-$CEPH_LIB_ROOT/deploy/dev-cluster.sh}
CEPH_T=${CEPH_T:-120}
CEPH_START_T=${CEPH_START_T:-120}
# every feature librbd has that an image can be created with (journaling needs
# exclusive-lock; fast-diff needs object-map). krbd in Linux 6.1 maps all but journaling.
RBD_FEATURES_ALL=layering,exclusive-lock,object-map,fast-diff,deep-flatten,journaling
RBD_FEATURES_DEFAULT=layering,exclusive-lock,object-map,fast-diff,deep-flatten

declare -F on_exit >/dev/null || { echo "tests/lib/ceph.sh: source tests/lib/common.sh first" >&2; exit 1; }

# ceph_require : skip (77) when the Ceph packages are missing. run-all.sh turns a skip into
# a failure when CI=true, so CI always runs the Ceph tests.
ceph_require() {
  local c
  for c in ceph-mon ceph-osd ceph rbd rados ceph-authtool; do
    command -v "$c" >/dev/null 2>&1 || skip "missing $c (deploy/install-deps.sh installs Ceph)"
  done
  [ -x "$DEV_CLUSTER" ] || fail "no $DEV_CLUSTER"
}

# ceph_env DIR : export the env of the cluster in DIR (no start).
ceph_env() {
  local e
  e=$("$DEV_CLUSTER" env "$1") || fail "dev-cluster.sh env $1 failed"
  eval "$e"
  export CEPH_KUBE_KEYRING=$RBDNBD_CLUSTER_DIR/client.kube.keyring
}

# ceph_up : make sure the dev cluster at ${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster} runs
# and is ready (start it, restart it, or just wait for it), and export its env.
ceph_up() {
  ceph_require
  local dir=${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster} out rc=0
  out=$(t "$CEPH_START_T" "$DEV_CLUSTER" start "$dir" 2>&1) || rc=$?
  [ "$rc" = 0 ] || { printf '%s\n' "$out" >&2; fail "could not start the dev cluster in $dir (exit $rc; logs in $dir/log)"; }
  log "${out##*$'\n'}"
  ceph_env "$dir"
}

# ceph_down [--wipe] : stop (or wipe) the cluster of RBDNBD_CLUSTER_DIR. For the harness that
# started it; a test must not stop a cluster that others share.
ceph_down() {
  local dir=${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster}
  if [ "${1:-}" = --wipe ]; then
    t 60 "$DEV_CLUSTER" wipe "$dir"
  else
    t 300 "$DEV_CLUSTER" stop "$dir"
  fi
}

# The tools, bounded, as client.admin (CEPH_CONF/CEPH_KEYRING from the env).
ceph_cli() { t "$CEPH_T" ceph --connect-timeout 30 "$@"; }
rbd_cli() { t "$CEPH_T" rbd "$@"; }
rados_cli() { t "$CEPH_T" rados "$@"; }
# rbd as client.kube (allowed: pool kube only)
rbd_kube() { t "$CEPH_T" rbd --id kube --keyring "$CEPH_KUBE_KEYRING" "$@"; }

# ceph_key USER : print the secret of client.USER (e.g. to hand it to rbd-nbdd on a pipe;
# never put it in argv or a log).
ceph_key() { ceph_cli auth print-key "client.$1"; }

# unique_image_name [PREFIX] : an image name (without pool) no other test or run uses:
# PREFIX (default: the test's name), the test's pid, microseconds and a random number (it
# is mostly called in $(...), where a counter would not survive).
unique_image_name() {
  local n="${1:-${TEST_NAME:-img}}-$$-${EPOCHREALTIME/./}-$RANDOM"
  printf '%s\n' "${n//[^A-Za-z0-9_.-]/_}"
}

# _rbd_features WORD : default | all | krbd | a comma list -> a comma list
_rbd_features() {
  case ${1:-default} in
    default|krbd) echo "$RBD_FEATURES_DEFAULT" ;;
    all) echo "$RBD_FEATURES_ALL" ;;
    *) echo "$1" ;;
  esac
}

# rbd_create SPEC SIZE [FEATURES] [extra rbd create args...]
#   SPEC is [pool/[namespace/]]image (pool defaults to rbd); SIZE as rbd takes it (64M, 2G);
#   FEATURES: default (Pacific's defaults), all (defaults + journaling), krbd (what the
#   kernel maps), or a comma list. The image is removed at exit (unless CEPH_KEEP_IMAGES=1).
rbd_create() {
  local spec=$1 size=$2 feat; feat=$(_rbd_features "${3:-default}"); shift 2; [ $# -gt 0 ] && shift
  case $spec in */*) ;; *) spec=rbd/$spec ;; esac
  rbd_cli create --size "$size" --image-feature "$feat" "$@" "$spec" ||
    fail "rbd create $spec ($size, $feat) failed"
  if [ "${CEPH_KEEP_IMAGES:-0}" != 1 ]; then on_exit "_rbd_cleanup '$spec'"; fi
}

# rbd_remove SPEC : remove an image and its snapshots (best effort, bounded). Clones made
# from its snapshots must be removed first.
# A mount timeout, so that cleanup against a cluster already gone does not hang for long.
rbd_remove() {
  t 60 rbd --client-mount-timeout 15 snap purge "$1" >/dev/null 2>&1
  t 60 rbd --client-mount-timeout 15 rm --no-progress "$1" >/dev/null 2>&1
}

# Cleanup hook of rbd_create. An image someone still watches cannot be removed. The hooks
# of servers started after the image ran already (LIFO), but a server started before it
# may serve it too: stop the latest server first.
_rbd_cleanup() {
  term_wait "$SERVER_PID" 10
  rbd_remove "$1" || log "could not remove image $1 (still watched?); left in the cluster"
}

# rbd_sha256 SPEC[@SNAP] : sha256 of the image's whole content, via `rbd export`.
rbd_sha256() {
  local out rc
  out=$(set -o pipefail; t "$CEPH_T" rbd export --no-progress "$1" - 2>/dev/null | sha256sum) ||
    { rc=$?; fail "rbd export $1 failed (exit $rc)"; }
  echo "${out%% *}"
}

# rbd_features SPEC : the image's features, comma-separated (as `rbd info` lists them).
rbd_features() {
  rbd_cli info --format json "$1" | /usr/bin/python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["features"]))'
}

# ---------------------------------------------------------------------------------------
# OSD faults (the dev cluster's single OSD), and undoing them
# ---------------------------------------------------------------------------------------
# Every rbd_*.sh of a run shares ONE cluster, so a fault a test injects must be undone on
# every way out of it: a frozen or stopped osd.0 left behind fails each script after it
# (ceph_up's `dev-cluster.sh start` waits its 60 s for PGs that never become active). The
# first fault a test injects registers one hook, ceph_heal; registered then, it runs
# before the teardown of what the test made earlier (servers, images), which would hang on
# a cluster without a serving OSD. A heal that fails makes the test fail.

# ceph_osd_pid : pid of osd.0, if it runs (a zombie is not running)
ceph_osd_pid() {
  local p
  p=$(cat "$RBDNBD_CLUSTER_DIR/run/osd.0.pid" 2>/dev/null) && _alive "$p" && echo "$p"
}

CEPH_FAULT_HOOK=
CEPH_FREEZE_PID=
CEPH_FROZEN_PIDS=()
_ceph_fault_injected() {
  [ -z "$CEPH_FAULT_HOOK" ] || return 0
  CEPH_FAULT_HOOK=1
  on_exit 'ceph_heal || fail "the shared dev cluster is still broken after the OSD faults of this test"'
}

# ceph_osd_stop / ceph_osd_start : a clean OSD stop (the mon marks it down; memstore keeps
# its data) and its restart (returns once every PG is active again). Client I/O in between
# waits; with default settings it completes after the restart. ceph_osd_start is
# `dev-cluster.sh start`: it starts whatever daemon of the cluster does not run.
ceph_osd_stop() {
  _ceph_fault_injected
  t 300 "$DEV_CLUSTER" stop-osd "$RBDNBD_CLUSTER_DIR" >&2
}
ceph_osd_start() {
  t "$CEPH_START_T" "$DEV_CLUSTER" start "$RBDNBD_CLUSTER_DIR" >&2
}

# ceph_osd_freeze SECS : SIGSTOP the OSD for SECS in the background (it stays "up" in the
# osdmap; I/O just stalls), SIGCONT after. Sets CEPH_FREEZE_PID (wait on it to know the
# OSD runs again).
ceph_osd_freeze() {
  local pid; pid=$(ceph_osd_pid) || fail "no running osd.0"
  _ceph_fault_injected
  CEPH_FROZEN_PIDS+=("$pid")
  kill -STOP "$pid" || fail "cannot SIGSTOP osd.0 (pid $pid)"
  ( sleep "$1"; kill -CONT "$pid" ) &
  CEPH_FREEZE_PID=$!
}

# ceph_probe [SECS] : 0 if the cluster serves I/O: an object written to pool rbd, read
# back and removed, each step within SECS (default 30). PGs that are "active" prove less:
# an OSD that is up but wedged fails this.
ceph_probe() {
  local secs=${1:-30} obj got
  obj="probe-${TEST_NAME:-ceph}-$$-$RANDOM"
  printf '%s' "$obj" | t "$secs" rados --client-mount-timeout "$secs" -p rbd put "$obj" - || return
  got=$(t "$secs" rados --client-mount-timeout "$secs" -p rbd get "$obj" -) || return
  t "$secs" rados --client-mount-timeout "$secs" -p rbd rm "$obj" || return
  [ "$got" = "$obj" ]
}

# ceph_heal : undo any OSD fault, then make sure the cluster serves I/O again: end a freeze
# timer still pending (its SIGCONT could hit a recycled pid later), SIGCONT every osd.0
# this test froze and any daemon of the cluster still stopped (state T), start whatever
# does not run and wait until every PG is active (ceph_osd_start), then ceph_probe. 0 when
# healthy; otherwise 1, after saying what is wrong. Bounded by about CEPH_START_T + 100 s.
ceph_heal() {
  local p f pids=("${CEPH_FROZEN_PIDS[@]}")
  # only while it is still our unreaped child: after `wait` its pid may be someone else's
  if [ -n "$CEPH_FREEZE_PID" ] && [[ " $(jobs -p) " == *" $CEPH_FREEZE_PID "* ]]; then
    kill "$CEPH_FREEZE_PID" 2>/dev/null
  fi
  for f in "$RBDNBD_CLUSTER_DIR"/run/*.pid; do
    p=$(cat "$f" 2>/dev/null) && pids+=("$p")
  done
  for p in "${pids[@]}"; do
    proc_stat "$p" || continue
    case ${PROC_STAT[2]} in ceph-osd|ceph-mon) ;; *) continue ;; esac
    if [ "${PROC_STAT[3]}" = T ]; then
      log "ceph_heal: ${PROC_STAT[2]} (pid $p) is stopped: SIGCONT"
      kill -CONT "$p" 2>/dev/null
    fi
  done
  if ! ceph_osd_start; then
    log "ceph_heal: dev-cluster.sh start failed"
    ceph_diagnose
    return 1
  fi
  if ! ceph_probe 30; then
    log "ceph_heal: the cluster does not serve I/O (an object put/get/rm in pool rbd failed)"
    ceph_diagnose
    return 1
  fi
  log "ceph_heal: the cluster serves I/O"
}

# ceph_diagnose : on stderr, what a broken cluster looks like, for the step log (the
# cluster dir is gone after the run): each daemon's process state (T = stopped), `ceph -s`,
# osd.0's view (admin socket: status, ops in flight) and the ends of the daemons' logs.
# Bounded (~1 min when nothing answers); never fails.
ceph_diagnose() {
  local d=$RBDNBD_CLUSTER_DIR f p
  log "---- ceph_diagnose $d ----"
  for f in "$d"/run/*.pid; do
    p=$(cat "$f" 2>/dev/null) || continue
    if proc_stat "$p"; then log "${f##*/}: pid $p ${PROC_STAT[2]} state ${PROC_STAT[3]}"
    else log "${f##*/}: pid $p not running"; fi
  done
  t 20 ceph --connect-timeout 15 -s >&2 2>&1 || true
  t 20 ceph --connect-timeout 15 osd dump 2>&1 | grep -E '^(epoch|flags|osd\.)' >&2 || true
  if [ -S "$d/run/osd.0.asok" ]; then
    t 10 ceph --admin-daemon "$d/run/osd.0.asok" status >&2 2>&1 || true
    t 10 ceph --admin-daemon "$d/run/osd.0.asok" dump_ops_in_flight 2>&1 | head -n 40 >&2 || true
  fi
  for f in "$d/log/osd.0.log" "$d/log/mon.a.log"; do
    [ -f "$f" ] || continue
    log "---- last 25 lines of $f (without memstore's object dumps) ----"
    grep -vE '^ |^\{|^\}' "$f" | tail -n 25 | cut -c1-300 >&2 || true
  done
  return 0
}
