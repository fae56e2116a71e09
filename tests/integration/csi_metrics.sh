#!/bin/bash
# rbd-nbdd-csi-controller's /metrics (gateway/metrics/METRICS.md, "CSI plugins") on a live
# controller against the real dev cluster, driven by the real gRPC client
# (tests/csi/csi_client.py): started with --metrics-address 127.0.0.1:PORT, it answers
# /healthz; `promtool check metrics` passes on every scrape; every family of the contract's
# CSI section is served with its type; between a scrape before and one after a known set of
# calls (CreateVolume OK x3 incl. an idempotent repeat, CreateVolume INVALID_ARGUMENT x1,
# DeleteVolume OK x3 incl. a repeat) rbd_csi_rpcs_total moved by exactly those calls and
# codes and nothing else, the latency histogram counted each one, uptime grew and
# build_info names the binary's version; no label value holds a key, a volume id or a
# name the test chose; SIGTERM closes the endpoint; started without the flag, nothing
# listens (off by default). Nothing is left in the pool.
. "$(dirname "$0")/lib_csi_controller.sh"
for c in promtool curl; do command -v "$c" >/dev/null 2>&1 || rbd_skip "missing command: $c (Debian: prometheus, curl)"; done
ctl_setup

# A free port on 127.0.0.1 (bound and released by the kernel's choice).
PORT=$("$CTL_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
METRICS=http://127.0.0.1:$PORT
ctl_start --metrics-address "127.0.0.1:$PORT"
grep -q "metrics on 127.0.0.1:$PORT" "$CTL_LOG" || fail "the controller's log does not name its metrics address: $(grep -m1 serving "$CTL_LOG")"
K=$KUBE_SECRETS
N=0

# scrape NAME : GET /metrics into $TMPD/NAME.prom; promtool must accept it.
scrape() {
  local f=$TMPD/$1.prom
  t 10 curl -fsS -o "$f" -D "$TMPD/$1.headers" "$METRICS/metrics" || fail "GET $METRICS/metrics failed"
  grep -qi '^content-type: text/plain; version=0.0.4' "$TMPD/$1.headers" \
    || fail "/metrics content type: $(grep -i '^content-type' "$TMPD/$1.headers")"
  t 30 promtool check metrics < "$f" > "$TMPD/$1.promtool" 2>&1 \
    || fail "promtool check metrics rejects scrape $1: $(head -c 2000 "$TMPD/$1.promtool")"
  N=$((N + 1))
}

# rpcs NAME : the non-zero rbdnbd_csi_rpcs_total series of a scrape, "method code value" sorted.
rpcs() {
  sed -nE 's/^rbdnbd_csi_rpcs_total\{method="([^"]*)",code="([^"]*)"\} ([0-9]+)$/\1 \2 \3/p' "$TMPD/$1.prom" \
    | awk '$3 != 0' | sort
}
# sample NAME SERIES : the value of one exact series (name and labels as printed).
sample() { awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print "none" }' "$TMPD/$1.prom"; }

section "/healthz and the first scrape"
[ "$(t 10 curl -fsS "$METRICS/healthz")" = ok ] || fail "/healthz did not answer ok"
[ "$(t 10 curl -s -o /dev/null -w '%{http_code}' "$METRICS/nope")" = 404 ] || fail "an unknown path is not 404"
scrape before
for fam in rbdnbd_csi_rpcs_total:counter rbdnbd_csi_rpc_duration_seconds:histogram rbdnbd_build_info:gauge \
           rbdnbd_uptime_seconds:gauge; do
  grep -qx "# TYPE ${fam%%:*} ${fam#*:}" "$TMPD/before.prom" || fail "no '# TYPE ${fam%%:*} ${fam#*:}' in /metrics"
done
# Every family the contract lists for the CSI plugins, with its type, and no other family.
want=$(awk '/^## CSI plugins/ {on = 1; next} /^## / {on = 0} on && /^\| rbdnbd_/ {gsub(/ /, ""); split($0, c, "|"); print c[2], c[3]}' \
  "$ROOT/gateway/metrics/METRICS.md" | sort)
have=$(sed -nE 's/^# TYPE ([^ ]+) ([^ ]+)$/\1 \2/p' "$TMPD/before.prom" | sort)
[ -n "$want" ] && [ "$want" = "$have" ] || fail "families served: '$have', METRICS.md lists: '$want'"
version=$("$CTL_BIN" --version | awk '{print $2}')
bi=$(grep '^rbdnbd_build_info{' "$TMPD/before.prom")
[[ "$bi" == "rbdnbd_build_info{version=\"$version\",compiler=\""*'"} 1' ]] || fail "build_info: '$bi' (version $version)"
rpcs before > "$TMPD/before.rpcs"
log "before: $(tr '\n' ';' < "$TMPD/before.rpcs")"
count_before=$(sample before 'rbdnbd_csi_rpc_duration_seconds_count{method="CreateVolume"}')
up_before=$(sample before rbdnbd_uptime_seconds)

section "Known calls: CreateVolume OK x3 (one a repeat), INVALID_ARGUMENT x1; DeleteVolume OK x3"
A=pvc-metrics-a-$TAG B=pvc-metrics-b-$TAG
ctl CreateVolume OK "$(vol_req "$A" $((16 * MiB)))" "$K"
AID=$(ctl_resp .volume.volume_id)
ctl CreateVolume OK "$(vol_req "$A" $((16 * MiB)))" "$K"
[ "$(ctl_resp .volume.volume_id)" = "$AID" ] || fail "the repeat of $A gave another id"
ctl CreateVolume OK "$(vol_req "$B" $((16 * MiB)))" "$K"
BID=$(ctl_resp .volume.volume_id)
ctl CreateVolume INVALID_ARGUMENT "$(vol_req "" $((16 * MiB)))" "$K"
details_has "CreateVolume without a name" name
ctl DeleteVolume OK "{\"volume_id\": \"$AID\"}" "$K"
ctl DeleteVolume OK "{\"volume_id\": \"$BID\"}" "$K"
ctl DeleteVolume OK "{\"volume_id\": \"$AID\"}" "$K"   # gone already: still OK

section "The second scrape: exactly those calls"
nap 1
scrape after
rpcs after > "$TMPD/after.rpcs"
log "after: $(tr '\n' ';' < "$TMPD/after.rpcs")"
# before + the calls above = after, series by series (a series absent counts 0).
expected=$( { cat "$TMPD/before.rpcs"; printf '%s\n' "CreateVolume OK 3" "CreateVolume INVALID_ARGUMENT 1" "DeleteVolume OK 3"; } \
  | awk '{ n[$1 " " $2] += $3 } END { for (k in n) print k, n[k] }' | sort)
[ "$expected" = "$(cat "$TMPD/after.rpcs")" ] \
  || fail "rbdnbd_csi_rpcs_total moved otherwise than the calls made: $(diff <(echo "$expected") "$TMPD/after.rpcs" | grep '^[<>]' | tr '\n' ';')"
count_after=$(sample after 'rbdnbd_csi_rpc_duration_seconds_count{method="CreateVolume"}')
[ "$((count_after - count_before))" = 4 ] || fail "CreateVolume latency count moved by $((count_after - count_before)), not 4"
inf=$(sample after 'rbdnbd_csi_rpc_duration_seconds_bucket{method="CreateVolume",le="+Inf"}')
[ "$inf" = "$count_after" ] || fail "CreateVolume: le=+Inf bucket $inf, _count $count_after"
sum=$(sample after 'rbdnbd_csi_rpc_duration_seconds_sum{method="CreateVolume"}')
awk -v s="$sum" 'BEGIN { exit !(s > 0) }' || fail "CreateVolume latency sum is $sum"
up_after=$(sample after rbdnbd_uptime_seconds)
awk -v a="$up_before" -v b="$up_after" 'BEGIN { exit !(b >= a + 1) }' || fail "uptime went from $up_before to $up_after"
log "CreateVolume: $((count_after - count_before)) calls in the histogram, sum ${sum}s; uptime ${up_before}s -> ${up_after}s"

# Label values are the program's own: method and code names, the version and compiler.
for s in "$KUBE_KEY" "$ADMIN_KEY" "$AID" "$BID" "$A" "$B" "$TAG"; do
  ! grep -qF -- "$s" "$TMPD/after.prom" || fail "/metrics holds a value the test chose (a key, an id or a name)"
done
bad=$(sed -nE 's/^rbdnbd_csi_rpcs_total\{method="[^"]*",code="([^"]*)"\}.*/\1/p' "$TMPD/after.prom" \
  | grep -vxE 'OK|CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNAUTHENTICATED' || true)
[ -z "$bad" ] || fail "code labels that are no gRPC code: $bad"

section "SIGTERM closes the endpoint; off by default"
ctl_stop
if t 5 curl -fsS -o /dev/null "$METRICS/metrics" 2>/dev/null; then fail "/metrics still answers after the controller exited"; fi
ctl_start
grep -q "metrics off" "$CTL_LOG" || fail "without --metrics-address the controller's log does not say metrics are off"
if t 5 curl -fsS -o /dev/null "$METRICS/metrics" 2>/dev/null; then fail "something serves $METRICS without --metrics-address"; fi
ctl_stop

ctl_assert_clean
ctl_assert_no_leak "$KUBE_SECRETS"
pass "$N scrapes pass promtool; rbdnbd_csi_rpcs_total moved by exactly the 7 calls (OK, INVALID_ARGUMENT); off by default"
