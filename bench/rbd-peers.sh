#!/bin/bash
# bench/rbd-peers.sh - rbd-nbdd serving an RBD image against its two peers, in ONE command,
# on ONE fresh dev cluster, in ONE interleaved run:
#   fio-rbd    fio --ioengine=rbd: librbd called directly, the ceiling
#   rbd-nbdd   fio --ioengine=nbd -> rbd-nbdd serve --rbd rbd/IMAGE (Unix socket)
#   qemu-nbd   fio --ioengine=nbd -> qemu-nbd -f raw rbd:rbd/IMAGE:conf=...:id=admin:keyring=...
#              (Unix socket; --cache=none, --aio=threads: qemu's rbd driver uses librbd's
#              own async I/O whatever --aio says)
# librbd's cache is OFF on all three paths (a client conf with rbd_cache = false; qemu-nbd
# --cache=none, which sets the same). With the defaults the paths are not comparable:
# fio-rbd's writes get acknowledged by librbd's cache in ~6 us (measured here; fio's rbd
# engine puts the cache into writeback mode) while the NBD servers' clients never send a
# flush, so librbd stays writethrough-until-flush for them. BENCH_RBD_CACHE=default runs
# with librbd's defaults instead (and qemu-nbd --cache=writeback).
# All three use the same prefilled image (a full sequential write first, so reads read
# real data) and librbd's default settings. Workloads: 4k randread QD1 and QD32, 4k
# randwrite QD1 and QD32, 1M sequential read QD8, 1M sequential write QD8; for each
# workload the three paths run in turn, in an order rotated per workload. One client
# process and one connection (numjobs=1) per run; the server is started just before its
# run and stopped after it, so that only one client holds the image (exclusive-lock) at
# a time.
#
# Gateway CPU: utime+stime of the server process (all its threads, /proc/PID/stat) over
# the fio run, per I/O. For fio-rbd there is no gateway: librbd runs inside fio and its
# CPU cannot be separated from fio's, so the cell shows "n/a" with the whole fio
# process's CPU per I/O (fio + librbd, from wait4 via /usr/bin/time) in brackets. (fio's
# own JSON usr/sys is not used: it counts only the job's main thread, not librbd's.)
# A second table gives every path's client (fio process) and osd.0 CPU per I/O, and
# their sum with the gateway's: the whole cost of an I/O on the machine.
#
#   bench/rbd-peers.sh
#
# Settings (environment):
#   RUNTIME=10          seconds per run
#   ROUNDS=3            interleaved rounds (ROUNDS x 6 workloads x 3 or 4 paths x RUNTIME,
#                       plus ~1 min: 9.5 min at the defaults). Run-to-run spread on a
#                       2-core machine is up to +-15% for the same path and settings, so
#                       one round can meet or miss a 0.9x target by chance: the tables
#                       give each path's median over the rounds, each ratio as the median
#                       of the per-round ratios (paths of one round ran back to back), and
#                       its range over the rounds.
#   IMAGE_SIZE=2G       the image (prefilled completely)
#   BENCH_PORT=15500    mon port of the bench's own cluster (the OSD uses PORT+2..PORT+99)
#   BENCH_DIR           its directory (default /tmp/rbdnbd-bench.XXXXXX); wiped at the end
#   KEEP_CLUSTER=1      leave the cluster running (and BENCH_DIR) for inspection
#   BENCH_RBD_CACHE=off   off: rbd_cache=false for every path (qemu-nbd --cache=none);
#                         default: librbd's defaults (qemu-nbd --cache=writeback)
#   RBDNBD              the binary (default build/gateway/control/rbd-nbdd)
#   RBDNBD_WORKERS      rbd-nbdd --workers (default: the server's default)
#   RBDNBD_POLL_US=100  also run a fourth path, rbd-nbdd-poll: rbd-nbdd serve --poll-us N
#                       (busy polling before sleeping); 0 or empty leaves it out
#   WORKLOADS           a comma list of workload names to run (default: all six)
# Output: a markdown table on stdout, also written to bench/results/rbd-peers-<date>.md,
# with its plots beside it (bench/plot.py: -iops.png, -p99.png, .data.json)
# (the fio JSON of every run is kept in bench/results/rbd-peers-<date>/).
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, term_wait, proc_cpu_ticks
# shellcheck source=lib_cluster.sh
. "$ROOT/bench/lib_cluster.sh"   # bench_cluster_up
# shellcheck source=lib_plot.sh
. "$ROOT/bench/lib_plot.sh"   # bench_plot
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-3}
IMAGE_SIZE=${IMAGE_SIZE:-2G}
BENCH_PORT=${BENCH_PORT:-15500}
BENCH_RBD_CACHE=${BENCH_RBD_CACHE:-off}
case $BENCH_RBD_CACHE in off) QEMU_CACHE=none ;; default) QEMU_CACHE=writeback ;;
  *) echo "BENCH_RBD_CACHE must be off or default" >&2; exit 2 ;; esac
RBDNBD=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
DEV_CLUSTER=$ROOT/deploy/dev-cluster.sh
POOL=rbd IMAGE=bench
STAMP=$(date +%Y-%m-%d-%H%M)
OUT_MD=$ROOT/bench/results/rbd-peers-$STAMP.md
RAW=$ROOT/bench/results/rbd-peers-$STAMP
CLK_TCK=$(getconf CLK_TCK)

say() { printf '[rbd-peers] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }

for c in fio qemu-nbd rbd ceph ceph-mon ceph-osd /usr/bin/python3 /usr/bin/time; do
  command -v "$c" >/dev/null 2>&1 || die "missing $c (deploy/install-deps.sh)"
done
[ -x "$RBDNBD" ] || die "no rbd-nbdd at $RBDNBD (build first: ninja -C build rbd-nbdd)"
fio --enghelp=rbd >/dev/null 2>&1 || die "this fio has no rbd engine"
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd engine"
[ -f /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ] || ls /usr/lib/*/qemu/block-rbd.so >/dev/null 2>&1 \
  || die "qemu-nbd has no rbd driver (package qemu-block-extra)"

# ---------------------------------------------------------------------------------------
# The bench's own cluster, wiped at the end
# ---------------------------------------------------------------------------------------
bench_cluster_up   # WORK: sockets and server logs
SERVER_PID=
stop_server_at_exit() {   # registered after the cluster's hook: runs before the wipe
  [ -z "$SERVER_PID" ] || term_wait "$SERVER_PID" 30
}
on_exit stop_server_at_exit
KEYRING=$CEPH_KEYRING
if [ "$BENCH_RBD_CACHE" = off ]; then
  # the clients' conf: the cluster's, plus the cache setting (every path reads $CEPH_CONF)
  cp "$CEPH_CONF" "$WORK/client.conf"
  printf '\n[client]\nrbd_cache = false\n' >>"$WORK/client.conf"
  export CEPH_CONF=$WORK/client.conf
fi
b 60 rbd create --size "$IMAGE_SIZE" "$POOL/$IMAGE" || die "rbd create failed"
FEATURES=$(rbd info --format json "$POOL/$IMAGE" | /usr/bin/python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["features"]))')
FIO_RBD=(--ioengine=rbd --clientname=admin --pool="$POOL" --rbdname="$IMAGE")

say "prefilling $IMAGE_SIZE (sequential 4 MiB writes through librbd)"
t0=$SECONDS
b 900 fio --name=prefill "${FIO_RBD[@]}" --rw=write --bs=4M --iodepth=16 --size="$IMAGE_SIZE" \
  --output-format=json --output="$WORK/prefill.json" >/dev/null || die "prefill failed"
say "prefilled in $((SECONDS - t0)) s"

mkdir -p "$RAW"

# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------
start_server() {   # start_server PATH -> SERVER_PID, URI
  local sock=$WORK/$1.sock cmd
  rm -f "$sock"
  case $1 in
    rbd-nbdd|rbd-nbdd-poll)
      local w=(); [ -n "${RBDNBD_WORKERS:-}" ] && w=(--workers "$RBDNBD_WORKERS")
      [ "$1" = rbd-nbdd-poll ] && w+=(--poll-us "$RBDNBD_POLL_US")
      cmd=("$RBDNBD" serve --rbd "$POOL/$IMAGE" -s "$sock" "${w[@]}")
      URI="nbd+unix:///$POOL/$IMAGE?socket=$sock"
      ;;
    qemu-nbd)
      cmd=(qemu-nbd -t -f raw --cache="$QEMU_CACHE" --aio=threads -k "$sock" -x "$IMAGE"
           "rbd:$POOL/$IMAGE:conf=$CEPH_CONF:id=admin:keyring=$KEYRING")
      URI="nbd+unix:///$IMAGE?socket=$sock"
      ;;
  esac
  start_ready "$1" "$WORK/$1.log" 30 test -S "$sock" -- "${cmd[@]}"
  SERVER_PID=$STARTED_PID
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  term_wait "$SERVER_PID" 30
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

cpu_ticks() { proc_cpu_ticks "$1"; }   # utime+stime, all threads

# ---------------------------------------------------------------------------------------
# The interleaved run
# ---------------------------------------------------------------------------------------
#          name                 rw         bs  iodepth
ALL_WORKLOADS=(
  "4k-randread-QD1             randread   4k  1"
  "4k-randread-QD32            randread   4k  32"
  "4k-randwrite-QD1            randwrite  4k  1"
  "4k-randwrite-QD32           randwrite  4k  32"
  "1M-seqread-QD8              read       1M  8"
  "1M-seqwrite-QD8             write      1M  8"
)
PATHS=(fio-rbd rbd-nbdd qemu-nbd)
RBDNBD_POLL_US=${RBDNBD_POLL_US-100}
[ "${RBDNBD_POLL_US:-0}" != 0 ] && PATHS+=(rbd-nbdd-poll)
export BENCH_PATHS="${PATHS[*]}"
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
T_RUN=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
wi=$round
for w in "${ALL_WORKLOADS[@]}"; do
  read -r name rw bs qd <<<"$w"
  if [ -n "${WORKLOADS:-}" ] && [[ ",$WORKLOADS," != *",$name,"* ]]; then continue; fi
  for ((k = 0; k < ${#PATHS[@]}; k++)); do
    p=${PATHS[$(( (wi + k) % ${#PATHS[@]} ))]}
    json=$RAW/$name.$p.r$round.json
    common=(--name="$name" --rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs=1 --size="$IMAGE_SIZE"
            --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0
            --output-format=json --output="$json")
    osd=$(cat "$BENCH_DIR/run/osd.0.pid")
    if [ "$p" = fio-rbd ]; then
      o0=$(cpu_ticks "$osd")
      b $((RUNTIME + 120)) /usr/bin/time -f '%U %S' -o "$json.fiocpu" \
        fio "${common[@]}" "${FIO_RBD[@]}" >/dev/null || die "$name/$p: fio failed"
      o1=$(cpu_ticks "$osd")
      echo "na $((o1 - o0))" >"$json.cpu"
    else
      start_server "$p"
      c0=$(cpu_ticks "$SERVER_PID"); o0=$(cpu_ticks "$osd")
      b $((RUNTIME + 120)) /usr/bin/time -f '%U %S' -o "$json.fiocpu" \
        fio "${common[@]}" --ioengine=nbd --uri="$URI" >/dev/null \
        || { tail -n 20 "$WORK/$p.log" >&2; die "$name/$p: fio failed"; }
      c1=$(cpu_ticks "$SERVER_PID"); o1=$(cpu_ticks "$osd")
      echo "$((c1 - c0)) $((o1 - o0))" >"$json.cpu"
      stop_server
    fi
    say "$(printf 'round %d/%d  %-18s %-9s done' "$round" "$ROUNDS" "$name" "$p")"
  done
  wi=$((wi + 1))
done
done
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
say "interleaved run: $((SECONDS - T_RUN)) s; 1-min load average $LOAD0 before, $LOAD1 after"

# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------
HEADER=$(cat <<EOF
# rbd-peers: rbd-nbdd vs fio-rbd vs qemu-nbd on one RBD image

- Date: $(date -u +%FT%TZ); $(nproc) cores; $(uname -r); 1-min load average $LOAD0 before the run, $LOAD1 after
- Cluster: a fresh single-host dev cluster (deploy/dev-cluster.sh, memstore, 1 mon, 1 OSD, size 1, cephx), wiped afterwards
- Image: $POOL/$IMAGE, $IMAGE_SIZE, features $FEATURES, prefilled by one full sequential write
- librbd cache: $( [ "$BENCH_RBD_CACHE" = off ] && echo "off on every path (client conf rbd_cache = false; qemu-nbd --cache=none). With librbd's defaults fio-rbd's writes are acknowledged by the cache (~6 µs) while the NBD paths, whose client never flushes, stay writethrough: not comparable" || echo "librbd's defaults on every path (qemu-nbd --cache=writeback); note fio-rbd's writes are then acknowledged by librbd's cache")
- fio $(fio --version | sed 's/^fio-//'), numjobs=1 (one connection), time_based, RUNTIME=$RUNTIME s per run, --norandommap; ROUNDS=$ROUNDS rounds, in each the paths interleaved per workload (order rotated per workload and round)
- rbd-nbdd: \`serve --rbd $POOL/$IMAGE -s SOCK\`${RBDNBD_WORKERS:+ --workers $RBDNBD_WORKERS}$( [ "${RBDNBD_POLL_US:-0}" != 0 ] && echo "; rbd-nbdd-poll: the same with \`--poll-us $RBDNBD_POLL_US\`"); qemu-nbd $(qemu-nbd --version | head -1 | awk '{print $2}'): \`-f raw --cache=$QEMU_CACHE --aio=threads -t -k SOCK rbd:...\` (qemu's rbd driver uses librbd aio whatever --aio says); both over Unix sockets
- Every number is the median over the rounds; a ratio is the median of the per-round ratios (the paths of one round ran back to back), with its range over the rounds in brackets
- p50/p99: fio completion latency (clat). Gateway CPU: the server process's utime+stime (all threads, /proc/PID/stat) during the fio run, per I/O. fio-rbd has no gateway: its cell shows n/a, with the whole fio process's CPU per I/O in brackets (fio + librbd inside it: not separable)
- The second table: client = the whole fio process (user+sys from wait4, including start-up), OSD = osd.0's utime+stime during the run; total = client + gateway + OSD
- Runs on this machine kind vary by up to 2x between sessions and by +-15% between rounds: compare paths only within one run
EOF
)
/usr/bin/python3 - "$RAW" "$CLK_TCK" "$ROUNDS" "$OUT_MD" "$HEADER" <<'PY'
import json, os, statistics, sys
raw, tck, rounds, out_md, header = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
names = [("4k-randread-QD1", "4k randread QD1"), ("4k-randread-QD32", "4k randread QD32"),
         ("4k-randwrite-QD1", "4k randwrite QD1"), ("4k-randwrite-QD32", "4k randwrite QD32"),
         ("1M-seqread-QD8", "1M seq read QD8"), ("1M-seqwrite-QD8", "1M seq write QD8")]
paths = os.environ["BENCH_PATHS"].split()
runs = {}   # (key, path) -> [one dict per round that ran]
for key, label in names:
    for p in paths:
        for rnd in range(1, rounds + 1):
            f = os.path.join(raw, f"{key}.{p}.r{rnd}.json")
            if not os.path.exists(f):
                continue
            j = json.load(open(f))["jobs"][0]
            d = j["write"] if "write" in key else j["read"]
            ios = j["read"]["total_ios"] + j["write"]["total_ios"]
            pct = d["clat_ns"].get("percentile", {})
            gw, osd = open(f + ".cpu").read().split()
            u, s = open(f + ".fiocpu").read().split()[-2:]
            per_io = lambda us: us / ios if ios else float("nan")
            runs.setdefault((key, p), []).append(dict(
                round=rnd, iops=d["iops"], mbs=d["bw_bytes"] / 1e6,
                p50=pct.get("50.000000", 0) / 1000.0, p99=pct.get("99.000000", 0) / 1000.0,
                gw=None if gw == "na" else per_io(int(gw) * 1e6 / tck),
                client=per_io((float(u) + float(s)) * 1e6), osd=per_io(int(osd) * 1e6 / tck)))

def med(key, p, field):
    v = [r[field] for r in runs.get((key, p), []) if r[field] is not None]
    return statistics.median(v) if v else None

def paired(key, a, b, fn):
    """fn(run of a, run of b) for every round in which both ran: (median, min, max) or None."""
    rb = {r["round"]: r for r in runs.get((key, b), [])}
    v = [fn(r, rb[r["round"]]) for r in runs.get((key, a), []) if r["round"] in rb and rb[r["round"]]["iops"]]
    return (statistics.median(v), min(v), max(v)) if v else None

iops_ratio = lambda ra, rb: ra["iops"] / rb["iops"]

def ratio_cell(key, a, b):
    x = paired(key, a, b, iops_ratio)
    if not x:
        return "-"
    return "%.2f" % x[0] if x[1] == x[2] else "%.2f (%.2f-%.2f)" % x

lines = ["| workload | path | IOPS | MB/s | p50 µs | p99 µs | gateway CPU µs/IO | IOPS ratio vs fio-rbd | IOPS ratio vs qemu-nbd |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for key, label in names:
    for p in paths:
        if (key, p) not in runs:
            continue
        gw = med(key, p, "gw")
        cpu = "%.1f" % gw if gw is not None else "n/a (fio+librbd %.1f)" % med(key, p, "client")
        lines.append("| %s | %s | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |" % (
            label, p, med(key, p, "iops"), med(key, p, "mbs"), med(key, p, "p50"), med(key, p, "p99"), cpu,
            ratio_cell(key, p, "fio-rbd"), ratio_cell(key, p, "qemu-nbd")))
table = "\n".join(lines)
c = ["| workload | path | client (fio) CPU µs/IO | gateway CPU µs/IO | OSD CPU µs/IO | total CPU µs/IO |",
     "| --- | --- | ---: | ---: | ---: | ---: |"]
for key, label in names:
    for p in paths:
        if (key, p) in runs:
            gw = med(key, p, "gw")
            total = statistics.median([r["client"] + (r["gw"] or 0) + r["osd"] for r in runs[(key, p)]])
            c.append("| %s | %s | %.1f | %s | %.1f | %.1f |" % (
                label, p, med(key, p, "client"), "%.1f" % gw if gw is not None else "-", med(key, p, "osd"), total))
cputable = "\n".join(c)

# The issue's targets, on the medians of the per-round comparisons
t = ["| target | measured: median (range over the rounds) | met (median) |", "| --- | --- | --- |"]
ours = [p for p in paths if p.startswith("rbd-nbdd")]
rng = lambda x, f: (f % x[0]) if x[1] == x[2] else ((f + " (" + f + " to " + f + ")") % x)
for key, label in (("4k-randread-QD32", "4k randread QD32"), ("4k-randwrite-QD32", "4k randwrite QD32")):
    for o in ours:
        for peer, goal in (("fio-rbd", 0.9), ("qemu-nbd", 1.2)):
            x = paired(key, o, peer, iops_ratio)
            if x:
                t.append(f"| {label}: {o} >= {goal}x {peer} IOPS | {rng(x, '%.2fx')} | {'yes' if x[0] >= goal else 'NO'} |")
for key, label in (("4k-randread-QD1", "4k randread QD1"), ("4k-randwrite-QD1", "4k randwrite QD1")):
    for o in ours:
        x = paired(key, o, "fio-rbd", lambda ra, rb: ra["p50"] - rb["p50"])
        if x:
            t.append(f"| {label}: {o} p50 latency within 30 µs of fio-rbd | {med(key, o, 'p50'):.1f} vs "
                     f"{med(key, 'fio-rbd', 'p50'):.1f} µs; difference {rng(x, '%+.1f')} µs | {'yes' if x[0] <= 30 else 'NO'} |")
targets = "\n".join(t)
md = f"{header}\n\n{table}\n\n## CPU per I/O on the whole machine\n\n{cputable}\n\n## The issue's targets\n\n{targets}\n"
open(out_md, "w").write(md)
try:   # the rows at full precision, for bench/plot.py (after the table: that one is safe)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(out_md))))
    import plot
    plot.write_rows(out_md[:-3] + ".data.json", "rbd-peers", [
        {"workload": label, "path": p, "rounds": len(runs[(key, p)]), "iops": med(key, p, "iops"),
         "mbps": med(key, p, "mbs"), "p50_us": med(key, p, "p50"), "p99_us": med(key, p, "p99"),
         "gateway_cpu_us_per_io": med(key, p, "gw"), "client_cpu_us_per_io": med(key, p, "client"),
         "osd_cpu_us_per_io": med(key, p, "osd")}
        for key, label in names for p in paths if (key, p) in runs],
        header.splitlines()[0].lstrip("# "), os.path.basename(out_md))
except Exception as e:
    print(f"[rbd-peers] WARNING: no .data.json beside the table: {e}", file=sys.stderr)
print(table)
print()
print(cputable)
print()
print(targets)
PY
bench_plot "$OUT_MD"   # -iops.png, -p99.png and .data.json beside it; never fails
say "written: $OUT_MD (fio JSON in $RAW/, plots beside it)"
