#!/bin/bash
# dev-cluster.sh - rbd-nbdd's own single-host Ceph (Pacific 16.2) cluster on 127.0.0.1
# (or DEV_CLUSTER_ADDR).
#
#   deploy/dev-cluster.sh [--bluestore|--memstore] start|stop|stop-osd|status|env|wipe [DIR]
#
# One mon (mon.a), one OSD (osd.0), no mgr, cephx on, size-1 pools. Everything it makes
# lives under DIR (default ${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster}): config, keyrings,
# daemon data, pid files, admin sockets, logs. No systemd, no udev, nothing in /etc/ceph,
# /var/run or /var/lib, so it also runs inside a user-mode-linux guest.
#
# Commands
#   start   Create the cluster if DIR holds none, restart it if it is stopped, or just wait
#           until it is ready if it runs. Ready = every PG of pools rbd and kube is active.
#           Prints the time it took. A new cluster gets:
#             pool rbd, pool kube      both `rbd pool init`ed, size 1, 8 PGs
#             client.admin             keyring DIR/keyring (0600)
#             client.kube              mon 'profile rbd' osd 'profile rbd pool=kube',
#                                      keyring DIR/client.kube.keyring (0600)
#           A memstore OSD keeps its data only over a clean `stop`. If it was killed
#           (SIGKILL, OOM, host reboot) its data is gone, and `start` says so and makes a
#           new empty cluster in DIR. A half-made DIR (creation interrupted) is re-made too.
#           On a running cluster it also undoes faults: a SIGSTOPped daemon gets SIGCONT,
#           and an OSD whose ops have been parked "waiting for readable" for over 30 s (a
#           PG latched laggy) is restarted cleanly.
#   stop    SIGTERM the OSD, then the mon; memstore writes its data to DIR/osd.0 on the way
#           down. Nothing running: no-op.
#   stop-osd  Stop only the OSD, cleanly (memstore keeps its data); for fault tests: client
#           I/O waits until `start` brings it back.
#   status  Which daemons run, then `ceph -s`. Exit 0 if `ceph -s` answered.
#   env     Shell exports for `eval "$(deploy/dev-cluster.sh env)"`:
#             CEPH_CONF  RBDNBD_CLUSTER_DIR  CEPH_KEYRING (client.admin)  CEPH_MON_HOST
#   wipe    SIGKILL every daemon of DIR and remove DIR. Refuses a DIR that is not a cluster
#           dir made by this script.
#
# Settings (environment; the ones marked * are read only when a cluster is created, later
# runs use what DIR/cluster.env recorded, and asking for something else is an error)
#   DEV_CLUSTER_STORE=memstore|bluestore *  (default memstore; same as --memstore/--bluestore)
#   DEV_CLUSTER_PORT=14200 *   mon v2 port; v1 is PORT+1; the OSD binds in PORT+2..PORT+99.
#                              Not 40000: that is inside Linux's ephemeral port range
#                              (32768-60999), where any outgoing connection may hold it, and
#                              the reference micro-ceph.sh uses it.
#   DEV_CLUSTER_ADDR=127.0.0.1 *   the IPv4 address the mon and the OSD bind to. Another one
#                              must already be on an interface here: a test's network
#                              namespace (start the cluster inside it with ip netns exec)
#                              whose tap a VM guest reaches it through (tests/e2e/host_cluster.sh)
#   DEV_CLUSTER_OSD_SIZE_GB=20 *   memstore capacity / size of bluestore's sparse file
#   DEV_CLUSTER_PG=8 *             pg_num of pools rbd and kube
#   DEV_CLUSTER_TIMEOUT=60     seconds `start` may wait for readiness (also each step's bound)
#   DEV_CLUSTER_STOP_TIMEOUT=120   seconds `stop` gives the OSD to exit (memstore writes its
#                              data out on the way down: ~4 s per GB held), then SIGKILL
#   DEV_CLUSTER_LOCK_TIMEOUT=300   seconds to wait for another dev-cluster.sh on the same DIR
#   DEV_CLUSTER_TRACE=1        print per-step times of `start`
#
# Measured on the 2-core dev machine (other jobs running): a new memstore cluster is ready in
# 0.7-1.5 s, bluestore 1.4-1.8 s; a restart takes 0.6-1.2 s (+~1 s per GB memstore holds),
# stop 0.2-0.7 s (memstore: +~4 s per GB). In a 1-vCPU UML guest a new cluster takes ~10 s
# (7-20 s seen while the host was busy). Memstore holds about twice the written data in RAM.
#
# Exit codes: 0 success, 1 failure (the message names the log to read), 2 usage.
# Concurrent runs on one DIR are serialised by flock on DIR/.lock: two overlapping `start`s
# give one cluster, and the second only waits for it.
set -uo pipefail
export LC_ALL=C
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
# The caller may have eval'ed our `env` (or point at another cluster): Ceph's tools and
# daemons read CEPH_KEYRING and CEPH_ARGS from the environment, and an inherited
# CEPH_KEYRING (the admin keyring) would make the OSD fail cephx as osd.0. Every command
# here passes -c explicitly.
unset CEPH_KEYRING CEPH_ARGS CEPH_CONF

PROG=dev-cluster
usage() {
  echo "usage: $0 [--bluestore|--memstore] start|stop|stop-osd|status|env|wipe [DIR]" >&2
  echo "       DIR defaults to \${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster}" >&2
  exit 2
}

CMD='' DIR='' STORE_ARG=''
while [ $# -gt 0 ]; do
  case $1 in
    --bluestore) STORE_ARG=bluestore ;;
    --memstore) STORE_ARG=memstore ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$PROG: unknown option $1" >&2; usage ;;
    *) if [ -z "$CMD" ]; then CMD=$1; elif [ -z "$DIR" ]; then DIR=$1; else usage; fi ;;
  esac
  shift
done
case $CMD in start|stop|stop-osd|status|env|wipe) ;; "") usage ;; *) echo "$PROG: unknown command $CMD" >&2; usage ;; esac
[ -z "$STORE_ARG" ] || [ "$CMD" = start ] || { echo "$PROG: --$STORE_ARG only goes with start" >&2; usage; }

DIR=${DIR:-${RBDNBD_CLUSTER_DIR:-/tmp/rbd-nbdd-cluster}}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
DIR=${DIR%/}
[ -n "$DIR" ] || { echo "$PROG: refusing DIR=/" >&2; exit 2; }
CONF=$DIR/ceph.conf
LOGD=$DIR/log
TMO=${DEV_CLUSTER_TIMEOUT:-60}
STOP_TMO=${DEV_CLUSTER_STOP_TIMEOUT:-120}
LOCK_TMO=${DEV_CLUSTER_LOCK_TIMEOUT:-300}
ADDR=127.0.0.1   # a made cluster's is what its cluster.env recorded (load_recorded)
for v in TMO STOP_TMO LOCK_TMO; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "$PROG: bad timeout ${!v}" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
say() { echo "$PROG: $*" >&2; }
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # quote for the shell
die() { say "$*"; exit 1; }
now_us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { local d=$(( $(now_us) - $1 )); printf '%d.%02d' $((d / 1000000)) $(((d % 1000000) / 10000)); }
T0=$(now_us)
trace() { [ "${DEV_CLUSTER_TRACE:-0}" = 1 ] && say "  +$(secs_since "$T0")s $*"; return 0; }

# b SECS CMD... : every external command runs through this, bounded (TERM, KILL 5 s later).
b() { local s=$1; shift; timeout --kill-after=5 "$s" "$@"; }

# tail_log FILE : the end of a log, indented, for error messages.
tail_log() { [ -s "$1" ] && { echo "--- last lines of $1:"; tail -n 15 "$1" | sed 's/^/    /'; } >&2; return 0; }

# run NAME SECS CMD... : run CMD with its output in $LOGD/NAME.out; on failure say what
# failed, show the end of that log and exit 1.
run() {
  local name=$1 secs=$2; shift 2
  local out=$LOGD/$name.out rc=0
  b "$secs" "$@" >>"$out" 2>&1 </dev/null 9>&- || rc=$?
  [ "$rc" = 0 ] && return 0
  if [ "$rc" = 124 ]; then say "$name: timed out after ${secs}s: $*"; else say "$name failed (exit $rc): $*"; fi
  tail_log "$out"
  fail_cleanup
  die "start failed; logs in $LOGD"
}
fail_cleanup() { :; }   # replaced while a new cluster is being made

# The cluster's tools, pointed at our conf. Client admin sockets and logs follow the conf.
ceph_() { b "$1" ceph -c "$CONF" --connect-timeout "$1" "${@:2}"; }

# Live daemons of this DIR, found through /proc (not only pid files, which a crash or a
# half-finished run may have lost): every ceph-mon/ceph-osd whose argv holds "-c $CONF".
# Prints "NAME PID" lines.
daemons() {
  local d args i st
  for d in /proc/[0-9]*; do
    [ -r "$d/cmdline" ] || continue
    mapfile -d '' -t args <"$d/cmdline" 2>/dev/null || continue
    case ${args[0]:-} in */ceph-mon|ceph-mon|*/ceph-osd|ceph-osd) ;; *) continue ;; esac
    for ((i = 1; i < ${#args[@]} - 1; i++)); do
      if [ "${args[i]}" = -c ] && [ "${args[i+1]}" = "$CONF" ]; then
        read -r _ _ st _ <"$d/stat" 2>/dev/null || break
        [ "$st" = Z ] || [ "$st" = X ] && break
        case ${args[0]} in *mon) echo "mon.a ${d#/proc/}" ;; *) echo "osd.0 ${d#/proc/}" ;; esac
        break
      fi
    done
  done
}
pid_of() { daemons | awk -v n="$1" '$1 == n { print $2; exit }'; }

# The test library's process helpers: builtins only (in the UML guest, where the e2e tests
# run this script, an exec costs up to a second), and a /proc/PID/stat parse that is right.
# shellcheck source=../tests/lib/core.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/lib/core.sh"
alive() { _alive "$1"; }

# wait_gone SECS PID... : 0 when all are gone, 1 if some are still alive after SECS.
wait_gone() {
  local deadline=$(( $(now_us) + $1 * 1000000 )) p left; shift
  while :; do
    left=0; for p in "$@"; do alive "$p" && left=1; done
    [ $left = 0 ] && return 0
    [ "$(now_us)" -ge "$deadline" ] && return 1
    nap 0.05
  done
}

# A TCP port something listens on (IPv4 or IPv6), from /proc: works without ss, in UML too.
port_listening() {
  local hex; hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# DIR/cluster.env is the first file a new cluster gets, and it starts with this marker
MARK='# made by rbd-nbdd deploy/dev-cluster.sh'
is_cluster_dir() { [ "$(head -n 1 "$DIR/cluster.env" 2>/dev/null)" = "$MARK" ]; }

# lock : serialise start/stop/wipe on one DIR. The lock is DIR/.lock; a wipe may delete it
# while we wait, so after getting it check that the file we hold is still the one there.
lock() {
  local f=$DIR/.lock deadline=$((SECONDS + LOCK_TMO)) left
  while :; do
    mkdir -p "$DIR" 2>/dev/null || die "cannot create $DIR"
    exec 9>>"$f" || die "cannot open $f"
    left=$((deadline - SECONDS)); [ $left -gt 0 ] || left=1
    flock -w "$left" 9 || die "another dev-cluster.sh has held $f for ${LOCK_TMO}s; giving up"
    [ "$(stat -c %d:%i "$f" 2>/dev/null)" = "$(stat -L -c %d:%i /proc/self/fd/9 2>/dev/null)" ] && return 0
    exec 9>&-
  done
}

# kill_all : SIGKILL every daemon of DIR and wait (<= 10 s) until they are gone, so their
# ports and files are free.
kill_all() {
  local pids; pids=$(daemons | awk '{print $2}')
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  # shellcheck disable=SC2086
  wait_gone 10 $pids || say "warning: pids $pids still alive 10 s after SIGKILL"
  rm -f "$DIR"/run/*.pid
  return 0
}

# ---------------------------------------------------------------------------------------
# the configuration; every non-obvious setting says why it is there
# ---------------------------------------------------------------------------------------
write_conf() {
  local P=$PORT
  cat >"$CONF" <<EOF
# written by rbd-nbdd deploy/dev-cluster.sh; edits are lost when the cluster is re-made
[global]
fsid = $FSID
mon_host = [v2:$ADDR:$P,v1:$ADDR:$((P + 1))]
# one address, IPv4 only: loopback unless DEV_CLUSTER_ADDR names a test namespace's own,
# so nothing is reachable from outside, and no guessing of the "public network" (a UML
# guest has no other interface)
public_addr = $ADDR
cluster_addr = $ADDR
ms_bind_ipv4 = true
ms_bind_ipv6 = false
# the OSD's ports: a fixed, private range next to the mon's (default 6800-7300 could
# collide with a real cluster or a second dev cluster)
ms_bind_port_min = $((P + 2))
ms_bind_port_max = $((P + 99))
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
# the secure behaviour, which also keeps the AUTH_INSECURE_GLOBAL_ID_RECLAIM warnings away
auth_allow_insecure_global_id_reclaim = false
# per-user keyring first (DIR/client.kube.keyring for --id kube), then the admin keyring;
# daemons override this below with the keyring in their data dir. (The CEPH_KEYRING
# environment variable, which the env command exports, overrides this for every tool.)
keyring = $DIR/\$name.keyring,$DIR/keyring
# keep everything under DIR: nothing may assume /var/run/ceph or /var/lib/ceph (UML guest)
run_dir = $DIR/run
crash_dir = $DIR/crash
# one OSD: pools of size 1. Pacific refuses size 1 unless allowed, and warns about pools
# without redundancy unless told not to.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = $PG
osd_pool_default_pgp_num = $PG
# the autoscaler is a mgr module and there is no mgr
osd_pool_default_pg_autoscale_mode = off
# replicas across OSDs, not hosts: there is only one host
osd_crush_chooseleaf_type = 0
# tests and benchmarks remove the pools they make
mon_allow_pool_delete = true
# PG read leases: a primary serves a PG only until its lease runs out (interval = ratio x
# osd_heartbeat_grace, 0.8 x 20 = 16 s by default) and renews it every half interval. An
# OSD stopped (SIGSTOP, a frozen VM or host) past its lease finds its PGs "laggy" and
# parks their ops "waiting for readable"; with one OSD, Pacific 16.2 can latch that state
# for good (ceph PR 71663), and only an OSD restart frees the ops (measured: a 25 s
# SIGSTOP under writes left them parked 11 min). There are no replicas here whose reads
# the lease protects, so a 300 s lease only makes freezes under ~150 s harmless; a clean
# stop still marks the OSD down and dead, so a restart does not wait out the lease.
osd_pool_default_read_lease_ratio = 15
# the one OSD carries every PG of every pool tests and benchmarks create
mon_max_pg_per_osd = 1000
# the root disk of the dev machines sits near 30% free: the default 30%/5% thresholds
# would raise MON_DISK_LOW / refuse to run
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# there is no mgr (RBD I/O, snapshots, clones, resize and journaling do not need one);
# without this the mon raises MGR_DOWN after the default 120 s grace
mon_mgr_mkfs_grace = 31536000
# clone v2 (clone without protecting the snapshot) needs require_min_compat_client >=
# mimic; a new Pacific cluster starts at luminous
mon_osd_initial_require_min_compat_client = mimic
# Pacific's default RBD features, stated: exclusive-lock is what journaling needs on top.
# journaling itself is not a default: krbd cannot map it; ask for it per image.
rbd_default_features = layering,exclusive-lock,object-map,fast-diff,deep-flatten

[mon]
mon_data = $DIR/\$name
keyring = $DIR/\$name/keyring
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
# commit map changes after 10 ms instead of the default 1 s: start-up 7.5 s -> 0.6 s
# (measured, FACTS.md)
paxos_propose_interval = 0.01
paxos_min_wait = 0.001

[osd]
osd_data = $DIR/\$name
keyring = $DIR/\$name/keyring
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$name.log
osd_objectstore = $STORE
# a fixed CRUSH location: the default is built from the hostname, which in a UML guest may
# be "(none)", not a valid CRUSH name
crush_location = root=default host=rbdnbd-dev
# short PG logs: with the defaults (up to 10000 entries per PG) 4k randwrite IOPS decayed
# from run to run and OSD memory grew; with these they stay flat (measured, FACTS.md)
osd_min_pg_log_entries = 100
osd_max_pg_log_entries = 200
osd_pg_log_dups_tracked = 200
# memstore: page-based objects, 1.5-2x the IOPS and less RAM than the default bufferlist
# objects, which fragment under 4k random writes (measured, FACTS.md)
memstore_page_set = true
memstore_device_bytes = $((OSD_GB << 30))
# bluestore: a sparse file DIR/osd.0/block made at mkfs. Never set bluestore_block_path to
# \$osd_data/block: mkfs then makes a symlink to itself.
bluestore_block_create = true
bluestore_block_size = $((OSD_GB << 30))
bluestore_fsck_on_mkfs = false
# every block-device close waits for the aio thread's poll timeout: the default 250 ms made
# mkfs + mount take ~4-5 s, 20 ms gives ~1.4 s (measured, FACTS.md)
bdev_aio_poll_ms = 20
EOF
  if [ "$STORE" = memstore ]; then
    cat >>"$CONF" <<'EOF'
# memstore writes its objects to osd_data only when it is unmounted; Pacific's default fast
# shutdown skips the unmount, so without this every clean stop would lose all data
osd_fast_shutdown = false
EOF
  fi
}

# ---------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------
# gen_keys N : N new cephx secrets, as `ceph-authtool --gen-print-key` prints them: base64 of
# u16 type (1 = AES), u32 seconds + u32 nanoseconds created, u16 length (16), 16 random
# bytes. Done here with od and base64 because ceph-authtool loads libceph-common, which costs
# ~0.2-0.4 s per call in a UML guest (4 calls were 1.6 s of a 9.5 s start there).
gen_keys() {
  local n=$1 hex i j hdr esc t=$EPOCHSECONDS
  hex=$(b 10 od -An -tx1 -v -N $((16 * n)) /dev/urandom | tr -dc '0-9a-f') || return 1
  [ ${#hex} = $((32 * n)) ] || return 1
  printf -v hdr '\\x01\\x00\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00\\x10\\x00' \
    $((t & 255)) $(((t >> 8) & 255)) $(((t >> 16) & 255)) $(((t >> 24) & 255))
  for ((i = 0; i < n; i++)); do
    esc=$hdr
    for ((j = 0; j < 32; j += 2)); do esc+="\\x${hex:i*32+j:2}"; done
    # shellcheck disable=SC2059
    printf "$esc" | base64 -w0 && echo || return 1
  done
}

load_recorded() {   # PORT, STORE, ... of an existing cluster, from DIR/cluster.env
  local line k v
  while IFS= read -r line; do
    k=${line%%=*} v=${line#*=}
    case $k in STORE|PORT|ADDR|OSD_GB|PG) printf -v "$k" '%s' "$v" ;; esac
  done <"$DIR/cluster.env"
}

preflight() {
  local c
  for c in ceph-mon ceph-osd ceph monmaptool rados /usr/bin/python3 flock timeout od base64; do
    command -v "$c" >/dev/null 2>&1 || die "missing $c (run deploy/install-deps.sh)"
  done
  # Unix socket paths are limited to 107 bytes; clients put theirs in DIR/run too
  [ ${#DIR} -le 60 ] || die "DIR is too long for admin sockets (${#DIR} > 60 chars): $DIR"
  # a fresh UML guest may have lo down: 127.0.0.1 must exist before anything binds to it
  if command -v ip >/dev/null 2>&1 && ! ip -o -4 addr show dev lo 2>/dev/null | grep -q '127\.0\.0\.1'; then
    b 10 ip link set lo up 2>/dev/null || die "loopback 127.0.0.1 is not up (ip link set lo up)"
  fi
}

check_ports() {
  local p
  for p in "$PORT" $((PORT + 1)); do
    port_listening "$p" && die "port $p on this host is in use (another cluster?); choose another with DEV_CLUSTER_PORT=N (a new cluster) or stop whatever listens there"
  done
  return 0
}

# launch NAME CMD... : start a daemon (it forks itself away and writes DIR/run/NAME.pid),
# with the lock fd closed so that the daemon does not hold our lock forever.
launch() {
  local name=$1; shift
  local out=$LOGD/$name-start.out pid i
  rm -f "$DIR/run/$name.pid"
  # where this life of the daemon's log begins (failsafe_full reads only from there)
  { wc -l < "$LOGD/$name.log" 2>/dev/null || echo 0; } > "$DIR/run/$name.logmark"
  if ! b "$TMO" "$@" >>"$out" 2>&1 </dev/null 9>&-; then
    say "$name did not start: $*"; tail_log "$out"; tail_log "$LOGD/$name.log"; return 1
  fi
  for ((i = 0; i < 200; i++)); do      # <= 10 s for the pid file
    pid=$(cat "$DIR/run/$name.pid" 2>/dev/null)
    [ -n "$pid" ] && alive "$pid" && return 0
    sleep 0.05
  done
  say "$name started but wrote no pid file / died at once"; tail_log "$out"; tail_log "$LOGD/$name.log"
  return 1
}

# ready : every PG of both pools active. `rados ls` walks the PGs of a pool one by one and
# blocks on each until it is active (no mgr here, so no `ceph pg` commands).
ready() {
  local p pids=() rc=0
  for p in rbd kube; do
    b "$TMO" rados -c "$CONF" -p "$p" ls >/dev/null 2>>"$LOGD/ready.out" 9>&- &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

create() {
  local osd_uuid mkfs_pid k_mon k_admin k_osd k_kube
  say "creating a new $STORE cluster in $DIR (mon $ADDR:$PORT)"
  check_ports
  # remove what a failed or killed earlier attempt left, but keep the lock file we hold
  find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} + || die "cannot clean $DIR"
  printf '%s\nSTORE=%s\nPORT=%s\nADDR=%s\nOSD_GB=%s\nPG=%s\n' "$MARK" "$STORE" "$PORT" "$ADDR" "$OSD_GB" "$PG" \
    >"$DIR/cluster.env" || die "cannot write $DIR/cluster.env"
  mkdir -p "$DIR"/{run,log,crash,mon.a,osd.0} || die "cannot create directories in $DIR"
  fail_cleanup() { kill_all; }
  FSID=$(cat /proc/sys/kernel/random/uuid); osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_conf || die "cannot write $CONF"

  if [ "$STORE" = bluestore ]; then    # bluestore opens its block file with O_DIRECT
    b 10 dd if=/dev/zero of="$DIR/osd.0/.odirect" bs=4096 count=1 oflag=direct status=none 2>/dev/null \
      || die "bluestore needs O_DIRECT, which the filesystem of $DIR lacks (tmpfs before Linux 6.6?): use memstore or another DIR"
    rm -f "$DIR/osd.0/.odirect"
  fi

  # The OSD's mkfs needs only the fsid from the conf, not the mon or its key: run it first,
  # alongside everything up to the mon's start (it is the slowest step). --no-mon-config:
  # otherwise it first fetches the config from the mon, and so waits for it.
  b "$TMO" ceph-osd -c "$CONF" -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" >"$LOGD/osd-mkfs.out" 2>&1 </dev/null 9>&- &
  mkfs_pid=$!

  # Keys. The mon imports every key (with its caps) of the keyring given to its mkfs into
  # the auth database, so client.admin, osd.0 and client.kube exist from the first second,
  # without an `auth` command round trip.
  local keys; mapfile -t keys < <(gen_keys 4)
  [ ${#keys[@]} = 4 ] || die "could not generate keys (od/base64)"
  k_mon=${keys[0]} k_admin=${keys[1]} k_osd=${keys[2]} k_kube=${keys[3]}
  ( umask 077
    printf '[client.admin]\n\tkey = %s\n' "$k_admin" >"$DIR/keyring"
    printf '[client.kube]\n\tkey = %s\n' "$k_kube" >"$DIR/client.kube.keyring"
    printf '[osd.0]\n\tkey = %s\n' "$k_osd" >"$DIR/osd.0/keyring"
    cat >"$DIR/run/mkfs.keyring" <<EOF
[mon.]
	key = $k_mon
	caps mon = "allow *"
[client.admin]
	key = $k_admin
	caps mon = "allow *"
	caps osd = "allow *"
	caps mgr = "allow *"
	caps mds = "allow *"
[osd.0]
	key = $k_osd
	caps mon = "allow profile osd"
	caps mgr = "allow profile osd"
	caps osd = "allow *"
[client.kube]
	key = $k_kube
	caps mon = "profile rbd"
	caps osd = "profile rbd pool=kube"
EOF
  ) || die "cannot write keyrings in $DIR"
  trace keys
  run monmaptool 10 monmaptool --create --fsid "$FSID" \
    --addv a "[v2:$ADDR:$PORT,v1:$ADDR:$((PORT + 1))]" "$DIR/run/monmap"

  run mon-mkfs "$TMO" ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/run/monmap" --keyring "$DIR/run/mkfs.keyring"
  rm -f "$DIR/run/mkfs.keyring" "$DIR/run/monmap"
  trace mon-mkfs
  launch mon.a ceph-mon -c "$CONF" -i a || { fail_cleanup; die "start failed; logs in $LOGD"; }
  trace mon-up

  # Pools, in one python process (librados/librbd bindings) started while the OSD boots:
  # create rbd and kube, `rbd pool init` both (librbd's pool_init, the very call the rbd
  # CLI makes: application rbd, then a write that blocks until the pool's PG is active),
  # then wait for every PG (listing objects visits each PG, blocking until it is active;
  # there is no mgr for `ceph pg` commands). One process instead of five CLI start-ups:
  # on the 1-vCPU UML guest each `ceph`/`rbd`/`rados` start-up costs 0.4-0.8 s.
  b "$TMO" /usr/bin/python3 - "$CONF" "$PG" "$TMO" >"$LOGD/pools.out" 2>&1 9>&- <<'PY' &
import json, sys, time
import rados, rbd
conf, pg, tmo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
def step(what):
    print(f"+{time.time() - t0:.2f}s {what}", flush=True)
with rados.Rados(conffile=conf, name="client.admin") as c:   # connects
    step("connected")
    for pool in ("rbd", "kube"):
        cmd = {"prefix": "osd pool create", "pool": pool, "pg_num": pg, "pgp_num": pg}
        ret, _, err = c.mon_command(json.dumps(cmd), b"", timeout=tmo)
        if ret != 0:
            sys.exit(f"osd pool create {pool}: {err} ({ret})")
        step(f"pool {pool} created")
    # An op sent while no OSD is up waits for a newer osdmap, which this client would only
    # ask for on its next objecter tick (5 s): wait until osd.0 is up, then fetch that map.
    while True:
        ret, out, err = c.mon_command(json.dumps({"prefix": "osd dump", "format": "json"}), b"", timeout=tmo)
        if ret == 0 and any(o["osd"] == 0 and o["up"] for o in json.loads(out)["osds"]):
            break
        time.sleep(0.05)
    c.wait_for_latest_osdmap()
    step("osd.0 up")
    for pool in ("rbd", "kube"):
        with c.open_ioctx(pool) as io:
            rbd.RBD().pool_init(io, False)
        step(f"pool {pool} initialised")
    for pool in ("rbd", "kube"):
        with c.open_ioctx(pool) as io:
            for _ in io.list_objects():
                pass
    step("every PG active")
PY
  local pools_pid=$!
  wait "$mkfs_pid" || { say "OSD mkfs failed"; tail_log "$LOGD/osd-mkfs.out"; fail_cleanup; die "start failed; logs in $LOGD"; }
  trace osd-mkfs
  launch osd.0 ceph-osd -c "$CONF" -i 0 || { fail_cleanup; die "start failed; logs in $LOGD"; }
  trace osd-up
  if ! wait "$pools_pid"; then
    say "creating/initialising pools rbd and kube failed or timed out (${TMO}s)"
    tail_log "$LOGD/pools.out"; tail_log "$LOGD/osd.0.log"; fail_cleanup; die "start failed; logs in $LOGD"
  fi
  trace "pools ready ($(tr '\n' ' ' <"$LOGD/pools.out"))"
  touch "$DIR/.created"
  fail_cleanup() { :; }
  echo "$PROG: started a new $STORE cluster in $(secs_since "$T0") s: $DIR (mon $ADDR:$PORT)"
}

restart() {   # DIR holds a made cluster: start whatever of it is not running, wait until ready
  local mon osd started=() p
  mon=$(pid_of mon.a); osd=$(pid_of osd.0)
  # A daemon stopped by SIGSTOP (a fault test's freeze that was never undone) runs but
  # serves nothing: `ready` would wait its whole bound on it.
  for p in $mon $osd; do
    proc_stat "$p" && [ "${PROC_STAT[3]}" = T ] || continue
    say "${PROC_STAT[2]} (pid $p) was stopped (SIGSTOP): SIGCONT"
    kill -CONT "$p" 2>/dev/null
  done
  # A PG latched laggy never serves its parked ops again; only a restart of the OSD frees
  # them (and a clean one keeps memstore's data).
  if [ -n "$osd" ] && [ -n "$mon" ] && [ "$(parked_ops)" -gt 0 ]; then
    say "osd.0 (pid $osd) has ops parked \"waiting for readable\" for over 30 s (a PG latched laggy after a stall): restarting it"
    stop_osd "$osd"; rm -f "$DIR/run/osd.0.pid"; osd=''
  fi
  # memstore's space accounting can go negative (seen once in ~8 full runs, after
  # snapshots, discards and an export): statfs then reports more free than total, the
  # OSD computes a huge ratio, engages its full failsafe and drops every write. A clean
  # restart reloads the objects and counts their bytes afresh.
  if [ -n "$osd" ] && failsafe_full; then
    say "osd.0 (pid $osd) has its full failsafe engaged (memstore's used bytes went wrong): restarting it cleanly"
    stop_osd "$osd"; rm -f "$DIR/run/osd.0.pid"; osd=''
  fi
  if [ -z "$mon" ]; then
    port_listening "$PORT" && die "cannot restart $DIR: port $PORT is taken by something else"
    launch mon.a ceph-mon -c "$CONF" -i a || die "restart failed; logs in $LOGD"
    started+=(mon.a)
  fi
  if [ -z "$osd" ]; then
    launch osd.0 ceph-osd -c "$CONF" -i 0 || die "restart failed; logs in $LOGD (data kept; 'wipe' to start over)"
    # from now on memstore's files in DIR/osd.0 are older than its memory: only a clean
    # stop makes them current again
    rm -f "$DIR/osd.0.clean"
    started+=(osd.0)
  fi
  trace daemons-up
  ready || { say "PGs did not become active within ${TMO}s"; tail_log "$LOGD/ready.out"; tail_log "$LOGD/osd.0.log"; die "restart failed; logs in $LOGD"; }
  if [ ${#started[@]} = 0 ]; then
    echo "$PROG: already running and ready ($(secs_since "$T0") s): $DIR"
  else
    echo "$PROG: restarted ${started[*]} ($STORE) in $(secs_since "$T0") s: $DIR"
  fi
}

cmd_start() {
  preflight
  lock
  local want_store=${STORE_ARG:-${DEV_CLUSTER_STORE:-}}
  case $want_store in ""|memstore|bluestore) ;; *) echo "$PROG: DEV_CLUSTER_STORE must be memstore or bluestore" >&2; exit 2 ;; esac
  if [ -f "$DIR/.created" ] && [ -f "$DIR/cluster.env" ]; then
    load_recorded
    [ -z "$want_store" ] || [ "$want_store" = "$STORE" ] ||
      die "$DIR holds a $STORE cluster, not $want_store: run '$0 wipe $DIR' first"
    [ -z "${DEV_CLUSTER_PORT:-}" ] || [ "$DEV_CLUSTER_PORT" = "$PORT" ] ||
      die "$DIR holds a cluster on port $PORT, not $DEV_CLUSTER_PORT: run '$0 wipe $DIR' first"
    [ -z "${DEV_CLUSTER_ADDR:-}" ] || [ "$DEV_CLUSTER_ADDR" = "$ADDR" ] ||
      die "$DIR holds a cluster on $ADDR, not $DEV_CLUSTER_ADDR: run '$0 wipe $DIR' first"
    if [ "$STORE" = memstore ] && [ -z "$(pid_of osd.0)" ] && [ ! -f "$DIR/osd.0.clean" ]; then
      say "the memstore OSD of $DIR was not stopped cleanly (killed, crashed or host rebooted): its data is gone; making a new empty cluster"
      kill_all
    else
      restart
      return
    fi
  elif [ -e "$DIR/cluster.env" ]; then
    is_cluster_dir || die "$DIR holds something that is not a dev-cluster.sh cluster; refusing to touch it"
    say "$DIR holds a half-made cluster (an earlier start was interrupted): making it again"
    kill_all
  elif [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]; then
    die "$DIR is not empty and holds no cluster; refusing to use it"
  fi
  STORE=${want_store:-memstore}
  PORT=${DEV_CLUSTER_PORT:-14200}
  ADDR=${DEV_CLUSTER_ADDR:-127.0.0.1}
  OSD_GB=${DEV_CLUSTER_OSD_SIZE_GB:-20}
  PG=${DEV_CLUSTER_PG:-8}
  [[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65435 ] || { echo "$PROG: bad DEV_CLUSTER_PORT $PORT" >&2; exit 2; }
  [[ $ADDR =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || { echo "$PROG: DEV_CLUSTER_ADDR must be an IPv4 address, not '$ADDR'" >&2; exit 2; }
  if [ "$ADDR" != 127.0.0.1 ] && ! ip -o -4 addr show 2>/dev/null | grep -q " inet $ADDR/"; then
    echo "$PROG: DEV_CLUSTER_ADDR $ADDR is on no interface here (start the cluster in the network namespace that has it)" >&2; exit 2
  fi
  [[ $OSD_GB =~ ^[0-9]+$ ]] && [ "$OSD_GB" -ge 1 ] || { echo "$PROG: bad DEV_CLUSTER_OSD_SIZE_GB $OSD_GB" >&2; exit 2; }
  [[ $PG =~ ^[0-9]+$ ]] && [ "$PG" -ge 1 ] || { echo "$PROG: bad DEV_CLUSTER_PG $PG" >&2; exit 2; }
  create
}

# ---------------------------------------------------------------------------------------
# stop, wipe, status, env
# ---------------------------------------------------------------------------------------
# stop_osd PID : a clean stop of osd.0 (SIGTERM; memstore writes its data out), SIGKILL
# after STOP_TMO. SIGCONT too: a SIGSTOPped OSD would keep the TERM pending and be
# SIGKILLed (memstore data lost) after the whole bound.
stop_osd() {
  local osd=$1
  kill -TERM "$osd" 2>/dev/null; kill -CONT "$osd" 2>/dev/null
  if wait_gone "$STOP_TMO" "$osd"; then
    touch "$DIR/osd.0.clean"
  else
    kill -KILL "$osd" 2>/dev/null; wait_gone 10 "$osd"
    say "osd.0 (pid $osd) did not exit within ${STOP_TMO}s of SIGTERM: killed (memstore data lost; see $LOGD/osd.0.log)"
  fi
}

# parked_ops : how many of osd.0's ops have waited over 30 s "waiting for readable" (its
# admin socket's dump_blocked_ops), the mark of a PG latched "laggy" after the OSD stalled
# past its read lease (see osd_pool_default_read_lease_ratio in the conf). 0 when the
# socket does not answer.
parked_ops() {
  local n
  n=$(b 15 ceph --admin-daemon "$DIR/run/osd.0.asok" dump_blocked_ops 2>/dev/null |
      grep -c '"flag_point": "waiting for readable"')
  echo "${n:-0}"
}

# failsafe_full : osd.0's log, since the OSD last started, says its full failsafe is
# engaged ("full status failsafe engaged, dropping updates") and not disengaged since.
failsafe_full() {
  local mark
  mark=$(cat "$DIR/run/osd.0.logmark" 2>/dev/null) || mark=0
  [[ "$mark" =~ ^[0-9]+$ ]] || mark=0
  tail -n +"$((mark + 1))" "$LOGD/osd.0.log" 2>/dev/null |
    awk '/full status failsafe engaged/ {on = 1} /full status failsafe disengaged/ {on = 0} END {exit !on}'
}

cmd_stop() {   # cmd_stop [osd-only]
  [ -d "$DIR" ] || { say "no cluster at $DIR"; return 0; }
  is_cluster_dir || die "$DIR is not a dev-cluster.sh cluster dir"
  lock
  local mon osd t=$T0
  mon=$(pid_of mon.a); osd=$(pid_of osd.0)
  [ "${1:-}" = osd-only ] && mon=''
  if [ -z "$mon" ] && [ -z "$osd" ]; then say "not running: $DIR"; return 0; fi
  # the OSD first: it tells the mon it is going down, and memstore writes its data out
  [ -n "$osd" ] && stop_osd "$osd"
  if [ -n "$mon" ]; then
    kill -TERM "$mon" 2>/dev/null; kill -CONT "$mon" 2>/dev/null
    wait_gone 30 "$mon" || { kill -KILL "$mon" 2>/dev/null; wait_gone 10 "$mon"; say "mon.a (pid $mon) needed SIGKILL"; }
  fi
  [ -n "$osd" ] && rm -f "$DIR/run/osd.0.pid"
  [ -n "$mon" ] && rm -f "$DIR/run/mon.a.pid"
  echo "$PROG: stopped${osd:+ osd.0}${mon:+ mon.a} in $(secs_since "$t") s: $DIR"
}

cmd_wipe() {
  [ -e "$DIR" ] || { say "nothing to wipe at $DIR"; return 0; }
  [ -d "$DIR" ] || die "$DIR is not a directory"
  # never rm -rf a directory we did not make: it must hold our conf/marker, or be empty
  # but for the lock file
  if ! is_cluster_dir && [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]; then
    die "$DIR does not look like a dev-cluster.sh cluster dir; not removing it"
  fi
  lock
  kill_all
  rm -rf "$DIR" || die "cannot remove $DIR"
  echo "$PROG: wiped $DIR"
}

cmd_status() {
  [ -f "$CONF" ] || die "no cluster at $DIR"
  local d; d=$(daemons | tr '\n' ' ')
  local store='?' port='?' addr='?'
  [ -f "$DIR/cluster.env" ] && { load_recorded; store=$STORE; port=$PORT; addr=$ADDR; }
  echo "dir: $DIR  store: $store  mon: $addr:$port  daemons: ${d:-none}"
  [ -n "$d" ] || { echo "not running"; return 1; }
  ceph_ 20 -s || die "'ceph -s' failed or timed out (logs in $LOGD)"
}

cmd_env() {
  [ -f "$CONF" ] || die "no cluster at $DIR (run: $0 start $DIR)"
  local mh; mh=$(sed -n 's/^mon_host = //p' "$CONF")
  # single-quoted for eval; CEPH_CONF and CEPH_KEYRING are read by every Ceph tool (and by
  # librados after rados_conf_parse_env); CEPH_KEYRING wins over the conf's keyring, so a
  # tool run as another user needs --keyring (DIR/client.kube.keyring for --id kube)
  echo "export CEPH_CONF=$(shq "$CONF")"
  echo "export RBDNBD_CLUSTER_DIR=$(shq "$DIR")"
  echo "export CEPH_KEYRING=$(shq "$DIR/keyring")"
  echo "export CEPH_MON_HOST=$(shq "$mh")"
}

case $CMD in
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-osd) cmd_stop osd-only ;;
  status) cmd_status ;;
  env) cmd_env ;;
  wipe) cmd_wipe ;;
esac
