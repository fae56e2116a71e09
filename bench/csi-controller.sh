#!/bin/bash
# bench/csi-controller.sh - rbd-nbdd-csi-controller's provisioning speed, in ONE command, on
# ONE fresh dev cluster: CreateVolume + DeleteVolume latency and throughput at 1, 8 and 32
# concurrent requests (10 GiB images, all default features, and a row with journaling),
# CreateSnapshot and clone (from a snapshot, from a volume) latency, and the controller's
# memory over 1,000 create/delete cycles, against the issue's targets:
#   CreateVolume (10 GiB, default features) at 8 concurrent: p50 <= 100 ms, p99 <= 500 ms,
#   >= 20 creates/s; VmRSS flat over 1,000 cycles (reported: start, end, ratio; "flat" is
#   read as end <= 1.10 x start).
# Peers in the same run: `rbd create` / `rbd rm` (one process per call, as the in-tree RBD
# provisioner runs them; client.kube with its keyring file) and librbd in the benchmark's own
# process on one open connection (the floor: no gRPC, no name journal, no metadata).
#
# The controller runs as in production: no CEPH_* variable, no ceph.conf, no keyring; its
# cluster config names the bench cluster's mon (clusterID "bench"), and every request brings
# client.kube's userID/userKey in its secrets (pool kube). The client is
# bench/csi_controller_bench.py: real gRPC (the stubs of tests/csi/gen_stubs.py), one
# channel, N threads each keeping one request in flight.
#
#   bench/csi-controller.sh
#
# Settings (environment):
#   ROUNDS=2          rounds of the create/delete sweep (latencies pooled over the rounds,
#                     creates/s: median of the rounds and their range)
#   COUNT=160         CreateVolume calls per concurrency per round (then as many deletes)
#   CLI_COUNT=40      `rbd create` processes per concurrency per round
#   CONC=1,8,32       concurrencies of the sweep; PEER_CONC=1,8 those of the peers (empty: none);
#                     JOURNAL_CONC=8 the journaling row's
#   SNAPS=20          CreateSnapshot / from-snapshot / from-volume calls (concurrency 1)
#   CYCLES=1000       create+delete cycles of the memory phase (concurrency MEM_CONC=8)
#   SIZE_GIB=10       image size
#   Quick run: ROUNDS=1 COUNT=32 CLI_COUNT=8 SNAPS=3 CYCLES=100 (about a minute)
#   CTL_LOG_LEVEL=info    the controller's --log-level (debug costs time: for profiling)
#   CTL_WRAP          a command to start the controller under, e.g. "strace -c -f -o FILE"
#                     (words split on blanks; CTL_READY_SECS=60 bounds its start-up)
#   BENCH_PORT=15600  mon port of the bench's own cluster (the OSD uses PORT+2..PORT+99)
#   BENCH_DIR         its directory (default /tmp/rbdnbd-bench.XXXXXX); wiped at the end
#   KEEP_CLUSTER=1    leave the cluster running (and BENCH_DIR) for inspection
#   CTL_BIN           the controller (default build/csi/controller/rbd-nbdd-csi-controller)
# Output: the markdown tables on stdout, also written to bench/results/csi-controller-<date>.md
# (plots beside it: bench/plot.py, -ops.png, -p99.png, .data.json);
# every latency (JSON), the controller's log and the client's in build/bench-csi-controller/<date>/.
# A full run at the defaults takes about 5-8 minutes on the 2-core dev machine.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, term_wait, stop_checked
# shellcheck source=lib_cluster.sh
. "$ROOT/bench/lib_cluster.sh"   # bench_cluster_up
# shellcheck source=lib_plot.sh
. "$ROOT/bench/lib_plot.sh"   # bench_plot
ROUNDS=${ROUNDS:-2}
COUNT=${COUNT:-160}
CLI_COUNT=${CLI_COUNT:-40}
CONC=${CONC:-1,8,32}
PEER_CONC=${PEER_CONC-1,8}
JOURNAL_CONC=${JOURNAL_CONC:-8}
SNAPS=${SNAPS:-20}
CYCLES=${CYCLES:-1000}
MEM_CONC=${MEM_CONC:-8}
SIZE_GIB=${SIZE_GIB:-10}
CTL_LOG_LEVEL=${CTL_LOG_LEVEL:-info}
BENCH_PORT=${BENCH_PORT:-15600}
CTL_BIN=${CTL_BIN:-$ROOT/build/csi/controller/rbd-nbdd-csi-controller}
DEV_CLUSTER=$ROOT/deploy/dev-cluster.sh
PY=/usr/bin/python3
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=$ROOT/build/bench-csi-controller/$STAMP
OUT_MD=$ROOT/bench/results/csi-controller-$STAMP.md
CLUSTER_ID=bench

say() { printf '[csi-controller] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }

for v in ROUNDS COUNT CLI_COUNT SNAPS CYCLES MEM_CONC SIZE_GIB JOURNAL_CONC; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number (is '${!v}')"
done
for c in rbd ceph ceph-mon ceph-osd protoc grpc_python_plugin "$PY"; do
  command -v "$c" >/dev/null 2>&1 || die "missing $c (deploy/install-deps.sh)"
done
"$PY" -c 'import grpc, rados, rbd' 2>/dev/null || die "$PY lacks grpc, rados or rbd (python3-grpcio, python3-rados, python3-rbd)"
[ -x "$CTL_BIN" ] || die "no controller at $CTL_BIN (ninja -C build rbd-nbdd-csi-controller)"
mkdir -p "$OUT" "$ROOT/bench/results"

# ---------------------------------------------------------------------------------------
# The bench's own cluster and controller, both gone at the end (on failure too)
# ---------------------------------------------------------------------------------------
bench_cluster_up   # WORK: the socket, the config, a private binary
CTL_PID='' PID=''
stop_controller() {   # registered after the cluster's hook: runs before the wipe
  [ -z "$PID" ] || [ "$PID" = "$CTL_PID" ] || term_wait "$PID" 30   # under CTL_WRAP
  [ -z "$CTL_PID" ] || term_wait "$CTL_PID" 30
}
on_exit stop_controller
KUBE_KEYRING=$BENCH_DIR/client.kube.keyring
[ -r "$KUBE_KEYRING" ] || die "no $KUBE_KEYRING"
# the mon's msgr2 address as plain HOST:PORT (as tests/e2e/lib_csi.sh csi_mon_addr)
MON=$(sed -E 's/.*v2:([0-9.]+:[0-9]+).*/\1/' <<<"$CEPH_MON_HOST")
[[ "$MON" =~ ^[0-9.]+:[0-9]+$ ]] || die "cannot read a mon address from CEPH_MON_HOST=$CEPH_MON_HOST"
printf '[{"clusterID": "%s", "monitors": ["%s"]}]\n' "$CLUSTER_ID" "$MON" >"$WORK/config.json"

# A private copy of the binary: the shared build may be relinked while we run.
cp "$CTL_BIN" "$WORK/rbd-nbdd-csi-controller"
CTL_VERSION=$("$WORK/rbd-nbdd-csi-controller" --version 2>&1 | head -n 1 || true)
# which build ran: the shared build dir is relinked by others, so HEAD alone does not say
CTL_BUILD="$(date -u -r "$CTL_BIN" +%FT%TZ), sha256 $(sha256sum "$WORK/rbd-nbdd-csi-controller" | cut -c1-12)"
SOCK=$WORK/ctl.sock
CTL_LOG=$OUT/controller.log
ctl_ready() { [ -S "$SOCK" ] && "$PY" "$ROOT/tests/csi/csi_client.py" --endpoint "unix://$SOCK" --timeout 5 call Probe >/dev/null 2>&1; }
"$PY" "$ROOT/tests/csi/gen_stubs.py" >/dev/null || die "cannot generate the CSI stubs"
# env -i: no CEPH_* (nor anything else) reaches the controller
read -r -a WRAP <<<"${CTL_WRAP:-}"
say "starting $CTL_VERSION (--log-level $CTL_LOG_LEVEL${CTL_WRAP:+, under $CTL_WRAP})"
start_ready rbd-nbdd-csi-controller "$CTL_LOG" "${CTL_READY_SECS:-60}" ctl_ready -- \
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "${WRAP[@]}" "$WORK/rbd-nbdd-csi-controller" \
  --endpoint "unix://$SOCK" --cluster-config "$WORK/config.json" --driver-name rbd-nbdd.csi.ceph.io \
  --log-level "$CTL_LOG_LEVEL"
CTL_PID=$STARTED_PID
# Under a wrapper the controller is its child: read /proc of the controller itself.
PID=$CTL_PID
if [ -n "${CTL_WRAP:-}" ]; then
  PID=$(pgrep -P "$CTL_PID" -f rbd-nbdd-csi-controller | head -n 1 || true)
  [ -n "$PID" ] || PID=$CTL_PID
fi
tr '\0' '\n' <"/proc/$PID/environ" | grep -q '^CEPH_' && die "the controller has CEPH_* in its environment"
say "controller ready (pid $PID)"

# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
HEADER="# CSI controller: provisioning latency and throughput ($STAMP UTC, git $REV)

- $CTL_VERSION (binary built $CTL_BUILD), \`--log-level $CTL_LOG_LEVEL\`, started with no CEPH_* variable, no ceph.conf and no keyring; cluster config \`[{clusterID: $CLUSTER_ID, monitors: [$MON]}]\`; every request with client.kube's userID/userKey in its secrets
- Cluster: a fresh single-host dev cluster (deploy/dev-cluster.sh, memstore, 1 mon, 1 OSD, size 1, cephx), pool kube, wiped afterwards. $(nproc) cores, $(uname -r); the client, the controller, the mon and the OSD share them
- Images: ${SIZE_GIB} GiB, \`imageFeatures\` left to the default (layering, exclusive-lock, object-map, fast-diff, deep-flatten; checked on the image) or with journaling added (parameter \`imageFeatures\`); volume capability mount ext4 SINGLE_NODE_WRITER
- Client: bench/csi_controller_bench.py, real gRPC on one channel (as the external-provisioner), N threads each keeping one request in flight; latency = the call's own time at the client; creates/s = creates ÷ wall time of the phase (median of $ROUNDS rounds, range in brackets); latencies pooled over the rounds. Per round and concurrency: $COUNT CreateVolume, then $COUNT DeleteVolume
- Peers: \`rbd -c CONF --id kube --keyring FILE create --size ${SIZE_GIB}G --image-feature ...\` and \`rbd rm\`, one process per call ($CLI_COUNT per concurrency per round); librbd in the benchmark's process on one kept-open connection (\`rbd.RBD().create/remove\`: no gRPC, no name journal, no metadata: a floor, not a peer doing the same work)
- CPU per call: utime+stime over the phase (all threads, /proc/PID/stat) of the controller, of the Ceph daemons (mon + OSD) and of the client (the benchmark process with its gRPC threads or its in-process librbd, plus the rbd CLI processes), divided by the calls: what one call costs the whole 2-core machine"
rc=0
b 1800 "$PY" "$ROOT/bench/csi_controller_bench.py" --endpoint "unix://$SOCK" --pid "$PID" \
  --conf "$CEPH_CONF" --keyring "$KUBE_KEYRING" --user kube --pool kube --cluster-id "$CLUSTER_ID" \
  --size-gib "$SIZE_GIB" --rounds "$ROUNDS" --count "$COUNT" --cli-count "$CLI_COUNT" --conc "$CONC" \
  --peer-conc "$PEER_CONC" --journal-conc "$JOURNAL_CONC" --snaps "$SNAPS" --cycles "$CYCLES" \
  --mem-conc "$MEM_CONC" --ceph-pids "$(cat "$BENCH_DIR/run/mon.a.pid"),$(cat "$BENCH_DIR/run/osd.0.pid")" --raw "$OUT/latencies.json" --out-md "$OUT/report.md" --header "$HEADER" \
  --out-data "$OUT/report.data.json" --data-source "$(basename "$OUT_MD")" \
  2> >(tee "$OUT/client.log" >&2) || rc=$?
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# the controller must still run, then stop cleanly on SIGTERM
if ! _alive "$PID"; then show_log_tail "$CTL_LOG"; die "the controller died during the run"; fi
# (under CTL_WRAP the signal goes to the controller, and the wrapper exits after it)
kill -TERM "$PID" 2>/dev/null || true
pid=$CTL_PID; CTL_PID='' PID=''
wait_checked rbd-nbdd-csi-controller "$pid" "$CTL_LOG" 30 || die "the controller did not stop cleanly"
[ "$rc" = 0 ] || { show_log_tail "$CTL_LOG" 30; die "the benchmark failed (exit $rc); partial report and logs in $OUT"; }
{ cat "$OUT/report.md"; printf '\nHost load average (1/5/15 min) before the run: %s; after: %s.\n' "$LOAD0" "$LOAD1"; } >"$OUT_MD"
[ ! -s "$OUT/report.data.json" ] || cp "$OUT/report.data.json" "${OUT_MD%.md}.data.json"   # full-precision rows
bench_plot "$OUT_MD"   # -ops.png, -p99.png and .data.json beside it; never fails
say "written: $OUT_MD (plots beside it; every latency in $OUT/latencies.json, logs in $OUT)"
