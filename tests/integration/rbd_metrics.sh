#!/bin/bash
# serve --metrics-address with RBD exports: the per-export series carry pool, namespace
# and image from the image spec (an --rbd image in a RADOS namespace, and a decorated
# backend=rbd export whose backend is no RbdBackend), a memory export beside them has
# them empty, each export counts its own requests, promtool accepts the live scrape, and
# no series names a key, keyring or monitor address.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdsh curl
command -v promtool >/dev/null 2>&1 || rbd_skip "missing command: promtool"
rbd_setup

TAG=$$${RANDOM}
NS=metrics$TAG
rbd_cli namespace create "rbd/$NS" || fail "rbd namespace create rbd/$NS"
on_exit "t 60 rbd namespace remove 'rbd/$NS' >/dev/null 2>&1"
IMG1=$(unique_image_name)
IMG2=$(unique_image_name)
rbd_create "rbd/$NS/$IMG1" 16M
rbd_create "rbd/$IMG2" 16M

start_rbd_server -c "$CEPH_CONF" --metrics-address 127.0.0.1:0 \
  --rbd "rbd/$NS/$IMG1" --export "name=decorated,backend=rbd,image=rbd/$IMG2,delay=1ms" \
  --export name=mem,backend=memory,size=16M
MPORT=$(sed -n 's|.*metrics: serving http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$SERVER_LOG" | head -1)
[ -n "$MPORT" ] && [ "$MPORT" != 0 ] || fail "no metrics line with the bound port in the log"

# n writes + n reads of 4 KiB on an export
io() {  # io EXPORT N
  TESTLIB="$ROOT/tests/lib" N=$2 t 120 nbdsh -u "$(rbd_uri "$1")" -c - <<'PY' || fail "I/O on $1"
import os
n = int(os.environ["N"])
for i in range(n):
    h.pwrite(bytes([i % 256]) * 4096, i * 4096)
for i in range(n):
    assert h.pread(4096, i * 4096) == bytes([i % 256]) * 4096
h.flush()
h.shutdown()
PY
}
io "rbd/$NS/$IMG1" 5
io decorated 7
io mem 3

t 10 curl -sf "http://127.0.0.1:$MPORT/metrics" > "$TMPD/m.txt" || fail "scrape failed"
out=$(t 30 promtool check metrics < "$TMPD/m.txt" 2>&1) && [ -z "$out" ] || { echo "$out" >&2; fail "promtool"; }
expect() {  # expect LABELS OP N
  grep -qxF "rbdnbd_device_ops_total{$1,op=\"$2\"} $3" "$TMPD/m.txt" || {
    grep "^rbdnbd_device_ops_total" "$TMPD/m.txt" >&2
    fail "no rbdnbd_device_ops_total{$1,op=\"$2\"} $3"
  }
}
L1="device=\"rbd/$NS/$IMG1\",pool=\"rbd\",rados_namespace=\"$NS\",image=\"$IMG1\""
L2="device=\"decorated\",pool=\"rbd\",rados_namespace=\"\",image=\"$IMG2\""
L3='device="mem",pool="",rados_namespace="",image=""'
expect "$L1" write 5; expect "$L1" read 5; expect "$L1" flush 1
expect "$L2" write 7; expect "$L2" read 7
expect "$L3" write 3; expect "$L3" read 3
[ "$(grep -c '^rbdnbd_device_errors_total{' "$TMPD/m.txt")" = 0 ] || fail "errors counted"
# Nothing secret in any label: no keyring path, no key, no monitor address.
key=$(ceph_key admin)
[ -n "$key" ] || fail "no admin key to look for"
pats=(-e "$key" -e "$CEPH_KEYRING" -e "$CEPH_CONF")
for mon in $(sed -n 's/^[[:space:]]*mon[ _]host[[:space:]]*=[[:space:]]*//p' "$CEPH_CONF" | tr ',[]' '   '); do
  mon=${mon#v1:}; mon=${mon#v2:}; [ -n "$mon" ] && pats+=(-e "$mon")
done
if grep -F "${pats[@]}" "$TMPD/m.txt"; then fail "a secret, a keyring path or a monitor address in /metrics"; fi
log "labels: $(grep -c "$IMG1" "$TMPD/m.txt") series for the namespaced image, $(grep -c "$IMG2" "$TMPD/m.txt") for the decorated one"
stop_rbd_server
pass
