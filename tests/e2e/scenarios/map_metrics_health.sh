#!/bin/bash
# Metrics and health of the daemon (issue 14) on a real /dev/nbdX. `rbd-nbdd daemon
# --metrics-address 127.0.0.1:PORT` serves /metrics, /healthz and /readyz:
# (1) a live scrape passes `promtool check metrics` and names every daemon family of
#     gateway/metrics/METRICS.md; the per-device series carry device/pool/rados_namespace/image;
# (2) fio (randwrite + crc32c verify) moves the device's byte counters by at least what fio
#     did, each op's histogram _count equals its ops_total, nothing stays in flight, and the
#     control calls are counted; `list-mapped`/`status --format json` show a sane health
#     object and the plain list-mapped a health column;
#     A real Prometheus server (Debian's prometheus, in the guest) scrapes the daemon every
#     second through the fio run; its HTTP API shows the write bytes counter moving under
#     fio, a write rate > 0, and at the end exactly the value the daemon's own scrape shows;
# (3) a reattach: the cluster is frozen (SIGSTOP mon + osd), the daemon SIGKILLed and
#     restarted; while the new daemon cannot reach the cluster the scrape shows the device
#     reattaching with stalled seconds growing and health says stalled, with the last error;
#     after the thaw the device is mapped again, reattaches_total is 1, the stalled seconds
#     cover the stall, health is no longer stalled, and I/O moves the new daemon's counters.
# The device is idle during the freeze, so the kernel holds no I/O and no request fails.
# In a guest on a loaded host the dev cluster alone takes 20-80 s: the data sets are small.
# e2e-vm: VM_TIMEOUT=480
# e2e-batch: mapguest
# e2e-cluster: guest (it stops and resumes the mon and the OSD by their pids)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
expect_nbd_reconnects
require_cmd curl jq fio prometheus promtool

IMG=rbd/metrics-health
SIZE=$((64 << 20))
PORT=19480
FREEZE_S=15
URL=http://127.0.0.1:$PORT

# scrape FILE : GET /metrics into FILE (must be 200).
scrape() { t 15 curl -fsS -o "$1" "$URL/metrics" || fail "GET /metrics failed"; }
# value FILE SERIES : the value of the series written exactly as SERIES (name{labels}); empty if absent.
value() { grep -F "$2 " "$1" | awk -v s="$2" '$1 == s {print $2; exit}'; }
# need FILE SERIES : as value, but the series must be there.
need() {
  local v
  v=$(value "$1" "$2")
  [ -n "$v" ] || fail "no series $2 in $1: $(grep -c . "$1") lines"
  echo "$v"
}
# ge A B : A >= B (numbers, floats allowed).
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a + 0 >= b + 0)}'; }
# http_code PATH : the status code of GET PATH.
http_code() { t 15 curl -s -o /dev/null -w '%{http_code}' "$URL$1"; }

# check_exposition FILE : promtool check metrics if the guest sees it; else the format
# rules a shell can check (every sample line is NAME{labels} VALUE under a TYPE'd family).
check_exposition() {
  if [ -x /usr/bin/promtool ]; then
    t 30 /usr/bin/promtool check metrics < "$1" >&2 || fail "promtool check metrics rejected $1"
    log "promtool check metrics: ok ($(grep -vc '^#' "$1") samples)"
    return 0
  fi
  log "no /usr/bin/promtool in the guest: checking the text format rules in shell"
  local bad
  bad=$(grep -v '^#' "$1" | grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$' | head -3)
  [ -z "$bad" ] || fail "malformed sample lines in $1: $bad"
}

cluster_up
start_daemon --metrics-address "127.0.0.1:$PORT"
[ "$(http_code /healthz)" = 200 ] || fail "/healthz is not 200 on a healthy daemon"
[ "$(http_code /readyz)" = 200 ] || fail "/readyz is not 200 once the control socket listens"
[ "$(http_code /nothing)" = 404 ] || fail "an unknown path is not 404"

rbd_ create --size 64M "$IMG" || fail "rbd create $IMG failed"
map_image "$SIZE" "$IMG" --show-cookie --io-timeout 15 --connect-timeout 5 --reattach-timeout 120
DEV=$MAPPED_DEV
NBD=${DEV##*/}
L="device=\"$NBD\",pool=\"rbd\",rados_namespace=\"\",image=\"metrics-health\""

step "(1) a live scrape is valid and has every daemon family"
S0=$E2E_WORK/scrape0.txt
scrape "$S0"
check_exposition "$S0"
for f in rbdnbd_build_info rbdnbd_uptime_seconds rbdnbd_devices rbdnbd_cluster_connections \
         rbdnbd_control_requests_total rbdnbd_device_ops_total rbdnbd_device_bytes_total \
         rbdnbd_device_op_duration_seconds rbdnbd_device_errors_total rbdnbd_device_inflight_requests \
         rbdnbd_device_connections rbdnbd_device_configured_connections rbdnbd_device_reattaches_total \
         rbdnbd_device_stalled_seconds_total rbdnbd_device_last_completion_timestamp_seconds; do
  grep -q "^# TYPE $f " "$S0" || fail "family $f missing from /metrics"
done
[ "$(need "$S0" 'rbdnbd_devices{state="mapped"}')" = 1 ] || fail "rbdnbd_devices{state=mapped} is not 1"
[ "$(need "$S0" 'rbdnbd_cluster_connections{state="connected"}')" = 1 ] || fail "not 1 connected cluster"
[ "$(need "$S0" "rbdnbd_device_connections{$L}")" = 1 ] || fail "live connections of $NBD not 1"
[ "$(need "$S0" "rbdnbd_device_configured_connections{$L}")" = 1 ] || fail "configured connections not 1"
[ "$(need "$S0" "rbdnbd_device_reattaches_total{$L}")" = 0 ] || fail "a fresh map has reattaches"
ge "$(need "$S0" 'rbdnbd_control_requests_total{op="map",result="ok"}')" 1 || fail "the map call is not counted"
grep -E '^rbdnbd_build_info\{' "$S0" | sed 's/^/    /' >&2

step "(2) fio moves the counters (seen by a real Prometheus too); health is sane"
# A real Prometheus scrapes the daemon every second while fio runs.
PPORT=19490
PURL=http://127.0.0.1:$PPORT
PDIR=$E2E_WORK/prometheus
mkdir -p "$PDIR/tsdb"
cat > "$PDIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rbdnbd-daemon
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
t 30 promtool check config "$PDIR/prometheus.yml" >/dev/null || fail "promtool check config rejected the scrape config"
start_ready prometheus "$PDIR/prometheus.log" 90 curl -sf -o /dev/null "$PURL/-/ready" -- \
  prometheus --config.file="$PDIR/prometheus.yml" --storage.tsdb.path="$PDIR/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" --storage.tsdb.retention.time=1h
PROM_PID=$STARTED_PID
on_exit "term_wait $PROM_PID 10"
# pquery EXPR : the sum of an instant query's series ("none" when it has none).
pquery() {
  t 15 curl -sf "$PURL/api/v1/query" --data-urlencode "query=$1" \
    | jq -r 'if .status != "success" then error("query failed") elif (.data.result | length) == 0 then "none"
             else ([.data.result[].value[1] | tonumber] | add) end'
}
PW="rbdnbd_device_bytes_total{job=\"rbdnbd-daemon\",$L,op=\"write\"}"
prom_sees_device() { local v; v=$(pquery "$PW") && [ "$v" != none ]; }
wait_until 60 "prometheus to scrape the daemon's write bytes of $NBD" prom_sees_device
[ "$(pquery 'up{job="rbdnbd-daemon"}')" = 1 ] || fail "prometheus says the daemon is not up"
pw0=$(pquery "$PW")
log "prometheus is scraping the daemon: $NBD write bytes $pw0 before fio"
fio_verify metrics "$DEV" 2M
FJ=$E2E_WORK/fio-metrics.json
fw=$(jq '[.jobs[].write.io_bytes] | add' "$FJ") fr=$(jq '[.jobs[].read.io_bytes] | add' "$FJ")
fwn=$(jq '[.jobs[].write.total_ios] | add' "$FJ")
S1=$E2E_WORK/scrape1.txt
scrape "$S1"
check_exposition "$S1"
for op in read write; do
  b0=$(need "$S0" "rbdnbd_device_bytes_total{$L,op=\"$op\"}") b1=$(need "$S1" "rbdnbd_device_bytes_total{$L,op=\"$op\"}")
  o1=$(need "$S1" "rbdnbd_device_ops_total{$L,op=\"$op\"}")
  c1=$(need "$S1" "rbdnbd_device_op_duration_seconds_count{$L,op=\"$op\"}")
  want=$fw; [ "$op" = read ] && want=$fr
  log "$op: bytes +$((b1 - b0)) (fio $want), ops $o1, histogram count $c1"
  ge "$((b1 - b0))" "$want" || fail "$op bytes moved by $((b1 - b0)), less than fio's $want"
  [ "$o1" = "$c1" ] || fail "$op: ops_total $o1 but the histogram counted $c1"
done
o0=$(need "$S0" "rbdnbd_device_ops_total{$L,op=\"write\"}") o1=$(need "$S1" "rbdnbd_device_ops_total{$L,op=\"write\"}")
# The block layer may merge neighbouring 4k writes, never split them below 4k: at least half.
ge "$((o1 - o0))" "$((fwn / 2))" || fail "write ops moved by $((o1 - o0)) for fio's $fwn writes"
[ "$(need "$S1" "rbdnbd_device_inflight_requests{$L}")" = 0 ] || fail "requests left in flight after fio"
now=$(date +%s)
lc=$(need "$S1" "rbdnbd_device_last_completion_timestamp_seconds{$L}")
{ ge "$lc" "$((now - 120))" && ge "$((now + 5))" "$lc"; } || fail "last completion time $lc is not near now ($now)"
if grep -q "^rbdnbd_device_errors_total{$L" "$S1"; then fail "errors counted on a clean run: $(grep errors_total "$S1")"; fi
# Prometheus, through its HTTP API: the counter it scraped reaches the daemon's own value
# (nothing writes to the device now), moved by at least fio's bytes, and the write rate
# over the fio run was above 0.
pw1_want=$(need "$S1" "rbdnbd_device_bytes_total{$L,op=\"write\"}")
prom_has_final() { [ "$(pquery "$PW")" = "$pw1_want" ]; }
wait_until 30 "prometheus to scrape the final write bytes $pw1_want of $NBD" prom_has_final
ge "$((pw1_want - pw0))" "$fw" || fail "prometheus saw write bytes move by $((pw1_want - pw0)), less than fio's $fw"
prate=$(pquery "max_over_time(rate(${PW}[5s])[2m:1s])")
log "prometheus: $NBD write bytes $pw0 -> $pw1_want under fio, peak write rate $prate B/s"
ge "$prate" 1 || fail "prometheus saw no write rate for $NBD under fio: $prate"
term_wait "$PROM_PID" 10

h=$(mapped_json | jq -c --arg d "$DEV" '.[] | select(.device == $d) | .health')
log "health after fio: $h"
[ "$(jq -r '[.state, .last_error, .last_error_time, .inflight, .recent_errors, .stalled] | map(tostring) | join(" ")' <<< "$h")" \
  = "mapped  0 0 0 false" ] || fail "health after a clean fio is not healthy: $h"
s=$(jq -r .seconds_since_last_io <<< "$h")
{ ge "$s" 0 && ge 120 "$s"; } || fail "seconds_since_last_io $s after fio just ran"
st=$(rbdnbdd status --format json) || fail "status failed"
[ "$(jq -r --arg d "$DEV" '.devices[] | select(.device == $d) | .health | keys | join(",")' <<< "$st")" \
  = "inflight,last_error,last_error_time,recent_errors,seconds_since_last_io,stalled,state" ] \
  || fail "status --format json lacks health fields: $st"
rbdnbdd list-mapped | tee "$E2E_WORK/list-mapped.txt" | sed 's/^/    /' >&2
head -1 "$E2E_WORK/list-mapped.txt" | grep -q health || fail "list-mapped has no health column"
grep -E "^[0-9]+ +$DEV .* ok( |$)" "$E2E_WORK/list-mapped.txt" >/dev/null || fail "list-mapped does not say $DEV is ok"
S2=$E2E_WORK/scrape2.txt
scrape "$S2"
ge "$(need "$S2" 'rbdnbd_control_requests_total{op="list",result="ok"}')" 2 || fail "list calls not counted"
ge "$(need "$S2" 'rbdnbd_control_requests_total{op="status",result="ok"}')" 1 || fail "status calls not counted"

step "(3) a stalled reattach: cluster frozen, daemon SIGKILLed and restarted"
MON_PID='' OSD_PID=''
read -r MON_PID < "$MAP_CLUSTER_DIR/run/mon.a.pid" || fail "no mon pid file"
read -r OSD_PID < "$MAP_CLUSTER_DIR/run/osd.0.pid" || fail "no osd pid file"
thaw() { kill -CONT "$MON_PID" "$OSD_PID" 2>/dev/null || true; }
on_exit thaw   # never leave the batch's cluster frozen
kill -STOP "$MON_PID" "$OSD_PID" || fail "cannot SIGSTOP the cluster"
t_freeze=$SECONDS
kill_daemon
start_daemon --metrics-address "127.0.0.1:$PORT"
[ "$(http_code /healthz)" = 200 ] || fail "/healthz is not 200 while a device waits for the cluster"
wait_until 60 "health to report the reattach error of $DEV" eval \
  '[ -n "$(mapped_json | jq -r --arg d "$DEV" '"'"'.[] | select(.device == $d and .health.last_error != "") | .device'"'"')" ]'
h=$(mapped_json | jq -c --arg d "$DEV" '.[] | select(.device == $d) | .health')
log "health while frozen: $h"
[ "$(jq -r '"\(.state) \(.stalled)"' <<< "$h")" = "reattaching true" ] || fail "not stalled while reattaching: $h"
ge "$(jq -r .last_error_time <<< "$h")" "$(($(date +%s) - 60))" || fail "last_error_time is not recent: $h"
S3=$E2E_WORK/scrape3.txt S4=$E2E_WORK/scrape4.txt
scrape "$S3"
sleep 2
scrape "$S4"
check_exposition "$S4"
[ "$(need "$S4" 'rbdnbd_devices{state="reattaching"}')" = 1 ] || fail "the device is not counted as reattaching"
st3=$(need "$S3" "rbdnbd_device_stalled_seconds_total{$L}") st4=$(need "$S4" "rbdnbd_device_stalled_seconds_total{$L}")
log "stalled seconds while frozen: $st3 then $st4"
ge "$st4" "$(awk -v a="$st3" 'BEGIN {print a + 1.5}')" || fail "stalled seconds did not grow during the stall"
left=$((t_freeze + FREEZE_S - SECONDS))
[ "$left" -le 0 ] || nap "$left"
thaw
log "cluster thawed $((SECONDS - t_freeze)) s after the freeze"
wait_until 90 "$DEV to be mapped again" eval \
  '[ "$(mapped_json | jq -r --arg d "$DEV" '"'"'.[] | select(.device == $d) | "\(.state) \(.live_connections)"'"'"')" = "mapped 1" ]'
log "reattached $((SECONDS - t_freeze)) s after the freeze"
run_fio after --filename="$DEV" --direct=1 --ioengine=io_uring --rw=randread --bs=4k --iodepth=8 --size=1M
S5=$E2E_WORK/scrape5.txt
scrape "$S5"
check_exposition "$S5"
[ "$(need "$S5" "rbdnbd_device_reattaches_total{$L}")" = 1 ] || fail "reattaches_total is not 1 after the reattach"
st5=$(need "$S5" "rbdnbd_device_stalled_seconds_total{$L}")
log "stalled seconds after the reattach: $st5"
ge "$st5" "$st4" || fail "stalled seconds went back: $st4 -> $st5"
S6=$E2E_WORK/scrape6.txt
sleep 1.5
scrape "$S6"
[ "$(need "$S6" "rbdnbd_device_stalled_seconds_total{$L}")" = "$st5" ] || fail "stalled seconds still grow after the reattach"
[ "$(need "$S5" 'rbdnbd_devices{state="mapped"}')" = 1 ] || fail "the device is not counted as mapped again"
ge "$(need "$S5" "rbdnbd_device_bytes_total{$L,op=\"read\"}")" $((1 << 20)) || fail "the new daemon's read bytes did not move"
h=$(mapped_json | jq -c --arg d "$DEV" '.[] | select(.device == $d) | .health')
log "health after the reattach: $h"
[ "$(jq -r '"\(.state) \(.stalled) \(.inflight)"' <<< "$h")" = "mapped false 0" ] || fail "unhealthy after the reattach: $h"
[ -n "$(jq -r .last_error <<< "$h")" ] || fail "the reattach error is gone from health's history: $h"

unmap_dev "$DEV"
rbd_ rm --no-progress "$IMG" >/dev/null 2>&1 || fail "rbd rm $IMG failed"
stop_daemon
if dmesg | grep -E "$E2E_DMESG_IOERRS" >&2; then fail "a user-visible I/O error in the kernel log"; fi
pass "metrics valid, counters follow fio, health sane, stall and reattach counted"
