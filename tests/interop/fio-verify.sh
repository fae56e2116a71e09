#!/bin/bash
# fio --ioengine=nbd, 4 jobs = 4 connections, iodepth 16, random writes of mixed sizes
# (4k-1M) with verify=crc32c and verify_fatal: fio writes each job's 64 MiB region and then
# reads it back and checks every block. A second run with --verify_only re-reads and checks
# everything over new connections. fio must exit 0 and report no errors, and every byte
# must have been written and verified.
. "$(dirname "$0")/../lib/common.sh"
require_cmd fio

start_server --export name=disk,backend=memory,size=1G

JOBS=4 REGION_MIB=64
fio_run() {  # fio_run OUT.json [extra fio options]
  local out=$1; shift
  t 600 fio --name=verify --ioengine=nbd --uri="$(uri disk)" \
    --rw=randwrite --bssplit=4k/60:64k/30:1m/10 --iodepth=16 \
    --numjobs=$JOBS --size=${REGION_MIB}m --offset_increment=${REGION_MIB}m \
    --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
    --output-format=json --output="$out" "$@" 2>"$out.stderr"
}
# fio_errors OUT.json : fail on any error or verify message fio printed.
fio_errors() {
  if grep -iE 'error|verify|fail|bad' "$1.stderr" | head -20 >&2; then
    fail "fio reported errors (above)"
  fi
}
check_json() {  # check_json OUT.json KIND(write|read) BYTES_PER_JOB
  t 30 python3 - "$@" <<'PY'
import json, sys
out, kind, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
jobs = json.load(open(out))["jobs"]
bad = []
if len(jobs) != 4:
    bad.append(f"{len(jobs)} jobs reported, expected 4")
for j in jobs:
    if j["error"] != 0:
        bad.append(f"job {j['jobname']}: error {j['error']}")
    got = j[kind]["io_bytes"]
    if got < want:
        bad.append(f"job {j['jobname']}: {kind} {got} bytes, expected >= {want}")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}

rc=0; fio_run "$TMPD/write.json" || rc=$?
[ "$rc" = 0 ] || { head -c 4000 "$TMPD/write.json.stderr" >&2; fail "fio write+verify exited $rc"; }
fio_errors "$TMPD/write.json"
# Both phases are in the one job: the writes, then the verifying reads.
check_json "$TMPD/write.json" write $((REGION_MIB << 20)) || fail "fio write+verify report"
check_json "$TMPD/write.json" read $((REGION_MIB << 20)) || fail "fio verify-read report"

rc=0; fio_run "$TMPD/verify.json" --verify_only || rc=$?
[ "$rc" = 0 ] || { head -c 4000 "$TMPD/verify.json.stderr" >&2; fail "fio --verify_only exited $rc"; }
fio_errors "$TMPD/verify.json"
check_json "$TMPD/verify.json" read $((REGION_MIB << 20)) || fail "fio --verify_only report"

stop_server
pass
