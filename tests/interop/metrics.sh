#!/bin/bash
# rbd-nbdd serve --metrics-address: /metrics in the Prometheus text format, checked four ways.
#  1. promtool check metrics passes on live scrapes (idle, and after I/O with histograms and
#     errors), and every metric METRICS.md lists for serve is there; /healthz says ok.
#  2. fio (ioengine=nbd, 2 connections) randrw with verify: the ops and bytes counters moved
#     by exactly the reads and writes fio completed, with no error counted.
#  3. A read past the end (nbdsh, libnbd's own checks off) moves
#     rbdnbd_device_errors_total{op="read",errno="EINVAL"} by one.
#  4. A real Prometheus server (Debian's) scrapes the endpoint every second while fio runs;
#     its HTTP API shows rate() > 0 and a p99 from the histogram, and once fio is done its
#     value of the read counter equals a direct scrape.
# With CI=true nothing skips: a missing promtool, prometheus, fio, nbdsh or curl fails.
. "$(dirname "$0")/../lib/common.sh"
[ "$NBD_SERVER" = rbd-nbdd ] || skip "metrics are rbd-nbdd's own (the nbdkit reference has none)"
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 && continue
    [ "${CI:-}" = true ] && fail "missing command: $c (CI=true: not skipping)"
    skip "missing command: $c"
  done
}
need promtool prometheus fio nbdsh curl

SIZE_MIB=256
start_server --export name=disk,backend=memory,size=${SIZE_MIB}M --workers 2 --metrics-address 127.0.0.1:0
MPORT=$(sed -n 's|.*metrics: serving http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$SERVER_LOG" | head -1)
[ -n "$MPORT" ] || fail "no 'metrics: serving http://127.0.0.1:PORT/metrics' line in the log"
[ "$MPORT" != 0 ] || fail "the log names port 0, not the bound port"
MURL="http://127.0.0.1:$MPORT"
log "metrics at $MURL/metrics"

scrape() { t 10 curl -sf "$MURL/metrics"; }
# value FILE NAME [LABEL=\"V\"...] : the sum of NAME's samples in FILE whose labels hold
# every given pair (0 when none).
value() {
  local f=$1 n=$2
  shift 2
  awk -v n="$n" -v want="$*" '
    index($1, n "{") == 1 || $1 == n {
      ok = 1; k = split(want, w, " ")
      for (i = 1; i <= k; i++) if (index($1, w[i]) == 0) ok = 0
      if (ok) s += $2
    }
    END { printf "%.0f\n", s }' "$f"
}
check_promtool() {  # check_promtool FILE WHAT
  local out
  out=$(t 30 promtool check metrics < "$1" 2>&1) || { echo "$out" >&2; fail "promtool check metrics ($2)"; }
  [ -z "$out" ] || { echo "$out" >&2; fail "promtool check metrics ($2) printed problems"; }
}

# ---- 1. health, promtool, the contract's metric names
[ "$(t 10 curl -sf "$MURL/healthz")" = ok ] || fail "/healthz does not answer ok"
scrape > "$TMPD/idle.txt" || fail "scrape failed"
check_promtool "$TMPD/idle.txt" idle
t 30 python3 - "$ROOT/gateway/metrics/METRICS.md" "$TMPD/idle.txt" <<'PY' || fail "a metric of METRICS.md is missing"
import re, sys
contract, scraped = open(sys.argv[1]).read(), open(sys.argv[2]).read()
want = []
section = None
for line in contract.splitlines():
    if line.startswith("## "):
        section = line
    m = re.match(r"\| (rbdnbd_[a-z_]+) \| (counter|gauge|histogram) \|", line)
    if not m:
        continue
    name = m.group(1)
    if section.startswith("## Per device") and "daemon only" not in line:
        want.append(name)
    if section.startswith("## Daemon-wide") and name in ("rbdnbd_build_info", "rbdnbd_uptime_seconds",
                                                          "rbdnbd_metrics_render_seconds"):
        want.append(name)   # "serve has the first three"
have = set(re.findall(r"^# TYPE (\S+) ", scraped, re.M))
missing = [n for n in want if n not in have]
print(f"contract: {len(want)} serve metrics, missing: {missing}", file=sys.stderr)
sys.exit(1 if missing or len(want) < 9 else 0)
PY
grep -q '^rbdnbd_build_info{version="[^"]*",compiler="[^"]*"} 1$' "$TMPD/idle.txt" || fail "rbdnbd_build_info"
grep -q '^rbdnbd_device_connections{device="disk",pool="",rados_namespace="",image=""} 0$' "$TMPD/idle.txt" \
  || fail "the export's series (labels device=disk, empty pool/namespace/image)"

# ---- 2. fio randrw with verify: the counters equal what fio completed
fio_json() {  # fio_json OUT.json [fio options...]
  local out=$1; shift
  t 300 fio --name=rw --ioengine=nbd --uri="$(uri disk)" --numjobs=2 --group_reporting=0 \
    --output-format=json --output="$out" "$@" 2>"$out.stderr"
}
rc=0
fio_json "$TMPD/rw.json" --rw=randrw --rwmixread=50 --bs=4k --iodepth=16 --size=32m \
  --offset_increment=64m --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 || rc=$?
[ "$rc" = 0 ] || { head -c 3000 "$TMPD/rw.json.stderr" >&2; fail "fio randrw+verify exited $rc"; }
read -r FIO_R FIO_W FIO_RB FIO_WB < <(t 30 python3 - "$TMPD/rw.json" <<'PY'
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert all(j["error"] == 0 for j in jobs), "fio job error"
r = sum(j["read"]["total_ios"] for j in jobs); w = sum(j["write"]["total_ios"] for j in jobs)
rb = sum(j["read"]["io_bytes"] for j in jobs); wb = sum(j["write"]["io_bytes"] for j in jobs)
print(r, w, rb, wb)
PY
) || fail "fio report"
log "fio completed $FIO_R reads ($FIO_RB bytes), $FIO_W writes ($FIO_WB bytes)"
[ "$FIO_R" -gt 0 ] && [ "$FIO_W" -gt 0 ] || fail "fio did no reads or no writes"
scrape > "$TMPD/after-fio.txt" || fail "scrape failed"
check_promtool "$TMPD/after-fio.txt" "after fio"
d='device="disk"'
got_r=$(value "$TMPD/after-fio.txt" rbdnbd_device_ops_total "$d" 'op="read"')
got_w=$(value "$TMPD/after-fio.txt" rbdnbd_device_ops_total "$d" 'op="write"')
got_rb=$(value "$TMPD/after-fio.txt" rbdnbd_device_bytes_total "$d" 'op="read"')
got_wb=$(value "$TMPD/after-fio.txt" rbdnbd_device_bytes_total "$d" 'op="write"')
got_e=$(value "$TMPD/after-fio.txt" rbdnbd_device_errors_total "$d")
got_h=$(value "$TMPD/after-fio.txt" rbdnbd_device_op_duration_seconds_count "$d" 'op="read"')
log "server counted $got_r reads ($got_rb bytes), $got_w writes ($got_wb bytes), $got_e errors"
[ "$got_r" = "$FIO_R" ] || fail "ops_total{op=read} $got_r, fio completed $FIO_R reads"
[ "$got_w" = "$FIO_W" ] || fail "ops_total{op=write} $got_w, fio completed $FIO_W writes"
[ "$got_rb" = "$FIO_RB" ] || fail "bytes_total{op=read} $got_rb, fio read $FIO_RB bytes"
[ "$got_wb" = "$FIO_WB" ] || fail "bytes_total{op=write} $got_wb, fio wrote $FIO_WB bytes"
[ "$got_e" = 0 ] || fail "$got_e errors counted during a clean fio run"
[ "$got_h" = "$FIO_R" ] || fail "the read latency histogram counted $got_h, not $FIO_R"
[ "$(value "$TMPD/after-fio.txt" rbdnbd_device_connections "$d")" = 0 ] || fail "connections left after fio"
# whole seconds, both truncated; the server derives the time from CLOCK_MONOTONIC plus an
# offset to the wall clock, so allow it a second ahead of `date`
last=$(awk '/^rbdnbd_device_last_completion_timestamp_seconds\{device="disk"/ {printf "%d", int($2)}' "$TMPD/after-fio.txt")
now=$(date +%s)
[ $((now - last)) -ge -1 ] && [ $((now - last)) -lt 120 ] || fail "last completion time $last, now $now"

# ---- 3. a read past the end is an EINVAL error of op read
einval() { value "$1" rbdnbd_device_errors_total "$d" 'op="read"' 'errno="EINVAL"'; }
before=$(einval "$TMPD/after-fio.txt")
TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$(uri disk)" -c - <<'PY' || fail "nbdsh bad read"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import expect_errno
h.set_strict_mode(0)
expect_errno(nbd, "pread past the end", lambda: h.pread(4096, h.get_size()), errno.EINVAL)
h.shutdown()
PY
scrape > "$TMPD/after-bad.txt" || fail "scrape failed"
check_promtool "$TMPD/after-bad.txt" "with an error series"
after=$(einval "$TMPD/after-bad.txt")
[ "$after" = $((before + 1)) ] || fail "errors_total{op=read,errno=EINVAL} went $before -> $after, expected +1"
[ "$(value "$TMPD/after-bad.txt" rbdnbd_device_errors_total "$d")" = 1 ] || fail "other errors counted"
grep '^rbdnbd_device_errors_total' "$TMPD/after-bad.txt" >&2

# ---- 4. a real Prometheus server scrapes it under fio
PPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMPD/prom"
cat > "$TMPD/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rbdnbd-serve
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
t 30 promtool check config "$TMPD/prometheus.yml" >/dev/null || fail "promtool check config"
PURL="http://127.0.0.1:$PPORT"
start_ready prometheus "$TMPD/prometheus.log" 60 curl -sf -o /dev/null "$PURL/-/ready" -- \
  prometheus --config.file="$TMPD/prometheus.yml" --storage.tsdb.path="$TMPD/prom" \
  --web.listen-address="127.0.0.1:$PPORT" --storage.tsdb.retention.time=1h
PROM_PID=$STARTED_PID
on_exit "term_wait $PROM_PID 10"
log "prometheus ready at $PURL (pid $PROM_PID)"
# query EXPR : the scalar of an instant vector query (the sum of its series; "none" if empty).
query() {
  t 10 curl -sf "$PURL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
r = d["data"]["result"]
print("none" if not r else sum(float(x["value"][1]) for x in r))'
}
up_is_1() { [ "$(query 'up{job="rbdnbd-serve"}')" = 1.0 ]; }
wait_until 30 "prometheus to scrape rbd-nbdd (up == 1)" up_is_1
before_prom=$(query 'sum(rbdnbd_device_ops_total{device="disk",op="read"})')
log "prometheus sees $before_prom reads before the timed fio"

bg t 60 fio --name=load --ioengine=nbd --uri="$(uri disk)" --rw=randrw --bs=4k --iodepth=8 \
  --numjobs=1 --size=64m --time_based --runtime=12 --output="$TMPD/load.txt"
FIO_PID=$BG_PID
# Polled while fio runs: a loaded machine (or the ASan server) may delay a scrape or two.
under_load() {
  rate=$(query 'sum(rate(rbdnbd_device_ops_total{device="disk"}[4s]))')
  p99=$(query 'histogram_quantile(0.99, sum by (le) (rate(rbdnbd_device_op_duration_seconds_bucket{device="disk",op="read"}[4s])))')
  python3 -c "import sys; r, p = '$rate', '$p99'; sys.exit(0 if r not in ('none', 'nan') and p not in ('none', 'nan') and float(r) > 0 and 0 < float(p) < 30 else 1)"
}
nap 3
wait_until 9 "prometheus to show a rate > 0 and a read p99 under fio" under_load
log "prometheus under fio: ops rate $rate/s, read p99 $p99 s"
wait "$FIO_PID" || fail "the timed fio failed ($(tail -5 "$TMPD/load.txt"))"
scrape > "$TMPD/final.txt" || fail "scrape failed"
final=$(value "$TMPD/final.txt" rbdnbd_device_ops_total "$d" 'op="read"')
prom_has_final() { python3 -c "import sys; sys.exit(0 if float('$(query 'sum(rbdnbd_device_ops_total{device="disk",op="read"})')') == $final else 1)"; }
wait_until 15 "prometheus to scrape the final read count $final" prom_has_final
increase=$(python3 -c "print(int($final - float('$before_prom')))")
[ "$increase" -gt 0 ] || fail "the read counter did not move in prometheus"
log "prometheus: reads went $before_prom -> $final (+$increase) through the timed fio"

term_wait "$PROM_PID" 10
stop_server
pass
