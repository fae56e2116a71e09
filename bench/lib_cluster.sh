# shellcheck shell=bash
# bench/lib_cluster.sh - the bench scripts' own dev cluster: a fresh one per run, never the
# shared one tests use (tests/lib/ceph.sh ceph_up), so that a bench measures a cluster that
# nothing else loads, and leaves nothing behind.
#
# Source it after tests/lib/core.sh (on_exit), from a script that defines say MSG, die MSG
# and b SECS CMD... (CMD bounded by SECS) and sets DEV_CLUSTER (deploy/dev-cluster.sh) and
# BENCH_PORT:
#   . "$ROOT/bench/lib_cluster.sh"
#   bench_cluster_up                 # BENCH_DIR, WORK, the cluster's env exported
#   on_exit stop_my_servers          # registered after: runs before the cluster goes
#
# Settings (environment): BENCH_DIR (default a new /tmp/rbdnbd-bench.XXXXXX), KEEP_CLUSTER=1
# (leave the cluster and BENCH_DIR for inspection).

# bench_cluster_up : start a fresh memstore dev cluster in BENCH_DIR, mon at
# 127.0.0.1:$BENCH_PORT (the OSD uses PORT+2..PORT+99), and export its env (CEPH_CONF,
# CEPH_KEYRING, CEPH_MON_HOST, RBDNBD_CLUSTER_DIR; CEPH_ARGS unset). WORK is a new empty
# directory for the script's sockets, configs and logs. At exit (on_exit, so on failure
# too) the cluster is wiped and WORK removed; KEEP_CLUSTER=1 keeps the cluster. Dies when the
# cluster does not start within 180 s.
bench_cluster_up() {
  if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
  else
    BENCH_DIR=$(mktemp -d /tmp/rbdnbd-bench.XXXXXX)
  fi
  WORK=$(mktemp -d /tmp/rbdnbd-bench-work.XXXXXX)
  on_exit _bench_cluster_down
  say "starting a fresh memstore dev cluster in $BENCH_DIR (mon 127.0.0.1:$BENCH_PORT)"
  DEV_CLUSTER_PORT=$BENCH_PORT DEV_CLUSTER_STORE=memstore b 180 "$DEV_CLUSTER" start "$BENCH_DIR" >&2 \
    || die "the bench cluster did not start"
  eval "$("$DEV_CLUSTER" env "$BENCH_DIR")"
  unset CEPH_ARGS
}

_bench_cluster_down() {
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    say "cluster kept: $BENCH_DIR (wipe: $DEV_CLUSTER wipe $BENCH_DIR)"
  else
    b 120 "$DEV_CLUSTER" wipe "$BENCH_DIR" >&2
  fi
  rm -rf "$WORK"
}
