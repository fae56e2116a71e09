#!/bin/bash
# bench/profile-daemon.sh - where rbd-nbdd's CPU per I/O goes on the RBD path (issue 13 item 5),
# on the HOST (no kernel nbd/ublk driver needed): `rbd-nbdd serve --rbd rbd/bench` on a Unix
# socket of a fresh dev cluster, driven by fio's nbd engine for a FIXED number of I/Os per run.
#
# For every run it takes, from /proc of the serve process:
#   CPU/IO   the sum over all its threads of /proc/PID/task/*/schedstat (ns on CPU, exact, not
#            tick-rounded) over the run, divided by the run's I/Os
#   cs/IO    voluntary + nonvoluntary context switches of all its threads, per I/O (a thread
#            that sleeps and is woken costs one voluntary switch: the wake-up count)
# and, per thread name (io_uring worker "rbdnbd-w*", librados "msgr-worker-*", "fn_anonymous",
# "ms_dispatch", ...), the same split, for the first round of the first variant.
#
# Variants (VARIANTS) are Ceph settings added in a [client] section of a copy of the cluster's
# ceph.conf (they override rbd-nbdd's kTunedDefaults like any user ceph.conf), and/or serve
# options. Each variant runs ROUNDS times, interleaved (variant order rotated per round), and
# the table shows medians (range in brackets). librbd's cache is off (rbd_cache = false) for
# every variant unless the variant sets it: the same as bench/kernel-paths.sh.
#
#   bench/profile-daemon.sh
#
# Settings (environment):
#   IOS=20000          I/Os per run (fio number_ios) of the QD32 cells; QD1 runs IOS/5
#   ROUNDS=3           interleaved rounds
#   WORKLOADS="randread:32 randwrite:32"   rw:QD[:CONNS], CONNS = fio jobs = NBD connections
#                      (each with QD/CONNS in flight, so the total depth stays QD)
#   VARIANTS           ';'-separated NAME=SETTINGS, SETTINGS a ','-separated list of
#                      ceph option=value and serve options (--poll-us=N, --workers=N);
#                      default: "base=" (no extra setting)
#   PROFILE=1          also profile one extra randread QD32 run of the first variant with
#                      perf record -e cpu-clock and print the split by thread and object
#   BENCH_PORT=15600   mon port of the bench's own cluster (OSD PORT+2..PORT+99)
#   BENCH_DIR          its directory (default a new /tmp/rbdnbd-bench.XXXXXX; an existing
#                      dev cluster dir with the same port is reused); KEEP_CLUSTER=1 keeps it
#   RBDNBD             the binary (default build/gateway/control/rbd-nbdd)
#   WORKERS=2          serve --workers (the daemon's default on the 2-core machine)
#   PERF_STAT=1        also count the serve process's write (eventfd posts), futex and
#                      io_uring_enter syscalls per I/O with perf stat's syscall tracepoints
#                      (needs perf and tracefs; left out when they do not work)
# A variant's SETTINGS may also hold binary=PATH: that variant runs another rbd-nbdd build
# (A/B of a code change: copy each build out of build/ first, as others may rebuild it).
# Output: a markdown table on stdout, also bench/results/profile-daemon-<stamp>.md.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, term_wait
# shellcheck source=lib_cluster.sh
. "$ROOT/bench/lib_cluster.sh"   # bench_cluster_up
IOS=${IOS:-20000}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-"randread:32 randwrite:32"}
VARIANTS=${VARIANTS:-"base="}
PROFILE=${PROFILE:-0}
BENCH_PORT=${BENCH_PORT:-15600}
RBDNBD=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
WORKERS=${WORKERS:-2}
PERF_STAT=${PERF_STAT:-1}
if [ "$PERF_STAT" = 1 ] && ! perf stat -e syscalls:sys_enter_write -o /dev/null true >/dev/null 2>&1; then PERF_STAT=0; fi
DEV_CLUSTER=$ROOT/deploy/dev-cluster.sh
STAMP=$(date +%Y-%m-%d-%H%M)
OUT_MD=$ROOT/bench/results/profile-daemon-$STAMP.md

say() { printf '[profile-daemon] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }

for c in fio rbd ceph /usr/bin/python3; do
  command -v "$c" >/dev/null 2>&1 || die "missing $c (deploy/install-deps.sh)"
done
[ -x "$RBDNBD" ] || die "no rbd-nbdd at $RBDNBD (build first: ninja -C build rbd-nbdd)"
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd engine"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_cluster_up
SERVER_PID=
stop_server() { [ -z "$SERVER_PID" ] || term_wait "$SERVER_PID" 30; SERVER_PID=; }
on_exit stop_server
BASE_CONF=$CEPH_CONF
rbd info rbd/bench >/dev/null 2>&1 || {
  b 60 rbd create --size 512M rbd/bench || die "rbd create failed"
  say "prefilling rbd/bench (512 MiB)"
  b 300 rbd bench --io-type write --io-size 4M --io-total 512M --io-pattern seq rbd/bench >/dev/null \
    || die "prefill failed"
}
SOCK=$WORK/nbd.sock
URI="nbd+unix:///rbd/bench?socket=$SOCK"

# start_serve NAME SETTINGS: serve with the variant's conf and options; SERVER_PID.
start_serve() {
  local name=$1 settings=$2 conf=$WORK/$1.conf item
  local -a opts=(--workers "$WORKERS")
  local bin=$RBDNBD
  cp "$BASE_CONF" "$conf"
  printf '\n[client]\nrbd_cache = false\n' >>"$conf"
  IFS=, read -r -a items <<<"$settings"
  for item in "${items[@]}"; do
    case $item in
      '') ;;
      --*=*) opts+=("${item%%=*}" "${item#*=}") ;;
      binary=*) bin=${item#binary=} ;;
      *=*) printf '%s = %s\n' "${item%%=*}" "${item#*=}" >>"$conf" ;;
      *) die "bad setting '$item' in variant $name" ;;
    esac
  done
  rm -f "$SOCK"
  START_STDIN=/dev/null start_ready "serve ($name)" "$WORK/serve-$name.log" 60 test -S "$SOCK" -- \
    "$bin" serve --socket "$SOCK" --rbd rbd/bench -c "$conf" -k "$CEPH_KEYRING" \
    "${opts[@]}"
  SERVER_PID=$STARTED_PID
}

# snap PID FILE: one line per thread "tid comm cpu_ns vol nonvol" into FILE.
snap() {
  local t comm ns vol nv
  : >"$2"
  for t in /proc/"$1"/task/*; do
    read -r ns _ <"$t/schedstat" || continue
    comm=$(tr ' ' _ <"$t/comm")
    vol=$(awk '/^voluntary_ctxt_switches/{print $2}' "$t/status")
    nv=$(awk '/^nonvoluntary_ctxt_switches/{print $2}' "$t/status")
    echo "${t##*/} $comm $ns $vol $nv" >>"$2"
  done
}

# run_fio RW QD CONNS IOS: fio's nbd engine, CONNS jobs of QD/CONNS each, IOS in all.
run_fio() {
  local rw=$1 qd=$2 conns=$3 ios=$4
  local per=$(( qd / conns )); [ "$per" -ge 1 ] || per=1
  b 600 fio --name=p --ioengine=nbd --uri="$URI" --rw="$rw" --bs=4k --iodepth="$per" --numjobs="$conns" \
    --number_ios=$(( ios / conns )) --size=512M --randrepeat=0 --group_reporting \
    --output-format=json --output="$WORK/fio.json" >/dev/null || die "fio failed ($rw QD$qd x$conns)"
  /usr/bin/python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))["jobs"][0]
r=j["read"] if j["read"]["total_ios"] else j["write"]
print(r["total_ios"], round(r["iops"]), round(r["clat_ns"]["percentile"]["50.000000"]/1000), round(r["clat_ns"]["percentile"]["99.000000"]/1000))
' "$WORK/fio.json"
}

# Per-run result lines: variant workload cpu_us_per_io cs_per_io iops p50 p99
RESULTS=$WORK/results.txt
THREADS=$WORK/threads.txt
: >"$RESULTS"
IFS=';' read -r -a VARS <<<"$VARIANTS"
NV=${#VARS[@]}
say "host load before: $LOAD_BEFORE; ${NV} variant(s) x ${ROUNDS} round(s); workloads: $WORKLOADS; $IOS I/Os per QD32 run"
for ((round = 0; round < ROUNDS; round++)); do
  for ((k = 0; k < NV; k++)); do
    v=${VARS[$(( (k + round) % NV ))]}
    name=${v%%=*} settings=${v#*=}
    start_serve "$name" "$settings"
    run_fio randread 32 1 200 >/dev/null   # warm-up: connect, take the lock, fill librbd's caches
    for w in $WORKLOADS; do
      IFS=: read -r rw qd conns <<<"$w"; conns=${conns:-1}
      ios=$IOS; [ "$qd" -gt 1 ] || ios=$(( IOS / 5 ))
      PSPID=
      if [ "$PERF_STAT" = 1 ]; then
        perf stat -x, -o "$WORK/pstat" -e syscalls:sys_enter_write,syscalls:sys_enter_futex,syscalls:sys_enter_io_uring_enter \
          -p "$SERVER_PID" 2>/dev/null &
        PSPID=$!
        sleep 0.3
      fi
      snap "$SERVER_PID" "$WORK/before"
      read -r nios iops p50 p99 < <(run_fio "$rw" "$qd" "$conns" "$ios")
      snap "$SERVER_PID" "$WORK/after"
      SYSC="- - -"
      if [ -n "$PSPID" ]; then
        kill -INT "$PSPID" 2>/dev/null; wait "$PSPID" 2>/dev/null || true
        SYSC=$(awk -F, -v n="$nios" '/sys_enter_write/{w=$1} /sys_enter_futex/{f=$1} /io_uring_enter/{e=$1}
          END{printf "%.3f %.3f %.3f", w/n, f/n, e/n}' "$WORK/pstat")
      fi
      /usr/bin/python3 - "$WORK/before" "$WORK/after" "$nios" "$name" "$w" "$iops" "$p50" "$p99" \
        "$( [ "$round$k" = 00 ] && echo "$THREADS" || echo /dev/null)" "$SYSC" >>"$RESULTS" <<'EOF'
import sys, collections
def load(p):
    d = {}
    for line in open(p):
        tid, comm, ns, vol, nv = line.split()
        d[tid] = (comm, int(ns), int(vol), int(nv))
    return d
b, a = load(sys.argv[1]), load(sys.argv[2])
n = int(sys.argv[3])
per = collections.defaultdict(lambda: [0, 0, 0])
for tid, (comm, ns, vol, nv) in a.items():
    c0 = b.get(tid, (comm, 0, 0, 0))
    # librados' messenger threads are msgr-worker-N; fold digits so names group
    key = comm
    per[key][0] += ns - c0[1]; per[key][1] += vol - c0[2]; per[key][2] += nv - c0[3]
cpu = sum(v[0] for v in per.values()) / n / 1000
cs = sum(v[1] + v[2] for v in per.values()) / n
print(sys.argv[4], sys.argv[5], f"{cpu:.2f}", f"{cs:.2f}", sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[10])
with open(sys.argv[9], "a") as f:
    for k, v in sorted(per.items(), key=lambda kv: -kv[1][0]):
        if v[0] == 0 and v[1] + v[2] == 0: continue
        f.write(f"{sys.argv[5]} {k} {v[0]/n/1000:.2f} {v[1]/n:.3f} {v[2]/n:.3f}\n")
EOF
      tail -1 "$RESULTS" | sed 's/^/[profile-daemon]   /' >&2
    done
    stop_server
  done
done

PROF_TEXT=
if [ "$PROFILE" = 1 ]; then
  # perf's cpu-clock sampling (no hardware PMU needed) of one extra randread QD32 run of
  # the first variant. valgrind --tool=callgrind was tried first: serve under it hangs
  # at the first NBD request here (io_uring under valgrind), so no instruction counts.
  v=${VARS[0]}
  start_serve "${v%%=*}" "${v#*=}"
  run_fio randread 32 1 200 >/dev/null
  perf record -F 2999 -e cpu-clock -o "$WORK/perf.data" -p "$SERVER_PID" >/dev/null 2>&1 &
  PRPID=$!
  sleep 0.3
  run_fio randread 32 1 "$IOS" >/dev/null
  kill -INT "$PRPID" 2>/dev/null; wait "$PRPID" 2>/dev/null || true
  stop_server
  PROF_TEXT=$(
    echo "| thread | object | share of the serve process's samples |"
    echo "| --- | --- | ---: |"
    perf report -i "$WORK/perf.data" --no-children -g none --sort comm,dso 2>/dev/null \
      | awk '/^ *[0-9.]+%/ && $1+0 >= 0.3 {printf "| %s | %s | %s |\n", $2, $3, $1}' | head -25 || true
    echo
    echo "| top symbols (self) | thread | share |"
    echo "| --- | --- | ---: |"
    perf report -i "$WORK/perf.data" --no-children -g none --sort comm,sym 2>/dev/null \
      | awk '/^ *[0-9.]+%/ {pct=$1; comm=$2; $1=$2=$3=""; sub(/^ +/,""); printf "| `%s` | %s | %s |\n", $0, comm, pct}' | head -30 || true
  )
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

TABLE=$(/usr/bin/python3 - "$RESULTS" "$VARIANTS" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
order_w = []
for line in open(sys.argv[1]):
    v, w, cpu, cs, iops, p50, p99, wr, fu, en = line.split()
    f = lambda x: float("nan") if x == "-" else float(x)
    rows[(v, w)].append((float(cpu), float(cs), int(iops), int(p50), int(p99), f(wr), f(fu), f(en)))
    if w not in order_w: order_w.append(w)
names = [x.split("=", 1)[0] for x in sys.argv[2].split(";")]
def cell(xs, fmt):
    m = statistics.median(xs)
    return fmt.format(m) + (f" ({fmt.format(min(xs))}–{fmt.format(max(xs))})" if len(xs) > 1 else "")
print("| workload | variant | CPU µs/IO | min | vs base | cs/IO | write/IO | futex/IO | io_uring_enter/IO | IOPS | p50 µs | p99 µs |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for w in order_w:
    base = statistics.median(r[0] for r in rows[(names[0], w)]) if rows[(names[0], w)] else None
    for v in names:
        r = rows.get((v, w))
        if not r: continue
        cpu = statistics.median(x[0] for x in r)
        rel = f"{cpu/base:.2f}x" if base else "-"
        print(f"| {w} | {v} | {cell([x[0] for x in r], '{:.1f}')} | {min(x[0] for x in r):.1f} | {rel} | {cell([x[1] for x in r], '{:.2f}')} | "
              f"{statistics.median(x[5] for x in r):.3f} | {statistics.median(x[6] for x in r):.3f} | {statistics.median(x[7] for x in r):.3f} | "
              f"{cell([x[2] for x in r], '{:.0f}')} | {statistics.median(x[3] for x in r):.0f} | {statistics.median(x[4] for x in r):.0f} |")
EOF
)
THREAD_TABLE=$(/usr/bin/python3 - "$THREADS" <<'EOF'
import sys
print("| workload | thread | CPU µs/IO | voluntary cs/IO | involuntary cs/IO |\n| --- | --- | ---: | ---: | ---: |")
for line in open(sys.argv[1]):
    w, t, cpu, v, nv = line.split()
    if float(cpu) < 0.05 and float(v) < 0.005: continue
    print(f"| {w} | {t} | {cpu} | {v} | {nv} |")
EOF
)
{
  echo "# profile-daemon: rbd-nbdd serve's CPU per I/O on the RBD path ($STAMP)"
  echo
  echo "- Host: $(nproc) CPUs, $(uname -r); host load average (1/5/15 min) $LOAD_BEFORE before, $LOAD_AFTER after (shared machine)"
  echo "- rbd-nbdd $("$RBDNBD" --version 2>/dev/null | head -1) serve --workers $WORKERS --rbd rbd/bench on a Unix socket; fio $(fio --version) nbd engine, 4k, $IOS I/Os per QD>1 run, $((IOS / 5)) per QD1 run"
  echo "- Cluster: deploy/dev-cluster.sh memstore, 1 mon, 1 OSD, on the same host; image 512 MiB prefilled, default features; rbd_cache = false unless a variant sets it"
  echo "- CPU/IO: sum of /proc/PID/task/*/schedstat run time of the serve process over the run / I/Os (median, range, and min: on a loaded host noise only adds); cs/IO: voluntary + involuntary context switches of all its threads / I/Os; write/futex/io_uring_enter per I/O: syscalls of all its threads (perf stat tracepoints; write is mostly the eventfd posts of librbd's completion thread)"
  echo "- ${ROUNDS} interleaved round(s); median (range in brackets)"
  echo "- Variants: \`$VARIANTS\`"
  echo
  echo "$TABLE"
  echo
  echo "Per thread (first round of the first variant):"
  echo
  echo "$THREAD_TABLE"
  if [ -n "$PROF_TEXT" ]; then
    echo
    echo "perf record -e cpu-clock of one randread QD32 run ($IOS I/Os) of the first variant, self time by thread and object ([kernel.kallsyms] under a thread is its syscalls and context switches; under this paravirtualised VM a context switch shows as pvm_irq_enable):"
    echo
    echo "$PROF_TEXT"
  fi
} >"$OUT_MD"
cat "$OUT_MD"
say "wrote $OUT_MD"
