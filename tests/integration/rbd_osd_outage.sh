#!/bin/bash
# An OSD stopped for ~10 s in the middle of I/O: the I/O waits, then completes, and with
# default settings the client sees no error. Two outages, each under its own fio run
# (ioengine=nbd against rbd-nbdd, 4k randwrite, iodepth 8, crc32c verify, 64 MiB paced at
# 800 IOPS: a ~20 s write phase), starting 3 s into it:
#   freeze  osd.0 gets SIGSTOP, and SIGCONT OUTAGE (10) s later: it stays "up" in the map
#   stop    a real clean stop of osd.0 (deploy/dev-cluster.sh stop-osd: the mon marks it
#           down, memstore keeps its data), restarted (`start`) OUTAGE s after the stop
#           began; PGs go inactive and come back
# Each time fio must finish with no error, every block written and verified, and a write
# latency maximum showing that it really waited through the outage; the server logs no
# error and every connection closes with 0 errors. RBD_OUTAGE_MODES picks the outages.
#
# The cluster is shared with every rbd_*.sh after this one: ceph.sh's ceph_heal (an on_exit
# hook from the first fault on) thaws and restarts osd.0 and checks that the cluster
# serves I/O on every way out, and this test checks that too before it passes. The bounds
# below add up to well under run-all's 900 s per script, so that a hang ends in a failure
# with the hooks run, not in run-all's SIGKILL, which would skip them.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd fio
rbd_setup
OUTAGE=${RBD_OUTAGE_SECS:-10}
# a phase is ~20 s of writes and ~20 s of verifying reads plus the outage (40-60 s on an idle
# machine, up to ~130 s seen with the 2 cores saturated)
FIO_T=${RBD_OUTAGE_FIO_SECS:-200}

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 128M
start_rbd_server --rbd "$IMG" --log-level debug
U=$(rbd_uri "$IMG")

outage() {   # outage freeze|stop
  local mode=$1 json="$TMPD/fio-$1.json" t0 rc=0
  # timeout itself, not the function t: then BG_PID is timeout, which leads its own process
  # group, and the hook below ends fio with it at exit. With `bg t ...` BG_PID was a
  # subshell, and a test that failed left fio behind, spinning on "nbd_poll: nothing to
  # poll for in state DEAD" (ignoring SIGTERM) into the step log once the server was gone.
  bg timeout --kill-after=5 "$FIO_T" fio --name="outage-$mode" --ioengine=nbd --uri="$U" --rw=randwrite --bs=4k --size=64M \
    --iodepth=8 --rate_iops=800 --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --output-format=json --output="$json"
  local fio=$BG_PID
  on_exit "kill -KILL -- -$fio 2>/dev/null || true"
  sleep 3
  _alive "$fio" || fail "$mode: fio ended before the outage: $(cat "$json")"
  t0=$EPOCHREALTIME
  case $mode in
    freeze)
      log "freeze: SIGSTOP osd.0 for ${OUTAGE}s with fio running"
      ceph_osd_freeze "$OUTAGE"
      wait "$CEPH_FREEZE_PID"
      ;;
    stop)
      log "stop: stopping osd.0 (clean stop) with fio running"
      ceph_osd_stop || fail "dev-cluster.sh stop-osd failed"
      local left; left=$(/usr/bin/python3 -c "print(max(0.0, $OUTAGE - ($EPOCHREALTIME - $t0)))")
      _alive "$fio" || fail "stop: fio ended while the OSD was down: $(cat "$json")"
      sleep "$left"
      ceph_osd_start || { ceph_diagnose; fail "restarting osd.0 failed"; }
      ;;
  esac
  log "$mode: osd.0 back after $(/usr/bin/python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')") s"
  wait "$fio" || rc=$?
  [ "$rc" = 0 ] || { cat "$json" >&2; ceph_diagnose; fail "$mode: fio exited $rc"; }
  /usr/bin/python3 -c '
import json, sys
mode, outage = sys.argv[2], float(sys.argv[3])
j = json.load(open(sys.argv[1]))["jobs"][0]
w, r = j["write"], j["read"]
maxlat = w["clat_ns"]["max"] / 1e9
print("%s: fio error=%d, wrote %d MiB, verified %d MiB, %.0f write IOPS, max write latency %.1f s"
      % (mode, j["error"], w["io_bytes"] >> 20, r["io_bytes"] >> 20, w["iops"], maxlat), file=sys.stderr)
if j["error"] or j.get("total_err", 0):
    sys.exit("fio reported an error")
if w["io_bytes"] != 64 << 20 or r["io_bytes"] != 64 << 20:
    sys.exit("not every block was written and verified")
if maxlat < outage * 0.5:
    sys.exit("max write latency %.1f s: the I/O did not wait through the outage" % maxlat)' \
    "$json" "$mode" "$OUTAGE" || fail "$mode: fio results"
  ceph_probe 30 || { ceph_diagnose; fail "$mode: the cluster does not serve I/O after the outage"; }
  server_alive || fail "$mode: the server died"
}

for m in ${RBD_OUTAGE_MODES:-freeze stop}; do outage "$m"; done

[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "the server logged errors"; }
if grep -E 'closed after [0-9]+ requests' "$SERVER_LOG" | grep -vq '(0 errors)'; then
  fail "a connection closed with errors: $(grep -E 'closed after' "$SERVER_LOG" | grep -v '(0 errors)')"
fi
stop_rbd_server
ceph_heal || fail "the cluster is not healthy after the outages"
pass "osd.0 out for ${OUTAGE}s under fio (${RBD_OUTAGE_MODES:-freeze stop}): no error, 64 MiB written and verified each time"
