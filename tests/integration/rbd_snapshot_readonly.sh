#!/bin/bash
# Snapshots are served read-only and consistent. Write A through a server on the head,
# `rbd snap create` while that server holds the image (librbd asks the lock owner), write
# B; then a second server on IMAGE@SNAP reads exactly A (NBD and `rbd export` agree),
# nbdinfo says is_read_only, and WRITE, WRITE+FUA, TRIM and WRITE_ZEROES sent anyway fail
# with EPERM and change nothing. The head still reads B.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdinfo nbdsh
rbd_setup
make_scratch
MIB=32

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" "${MIB}M"
start_rbd_server --rbd "$IMG"
HEAD_PID=$SERVER_PID HEAD_URI=$(rbd_uri "$IMG")

random_file "$SCRATCH/a" $MIB; A=$(sha256 "$SCRATCH/a")
random_file "$SCRATCH/b" $MIB; B=$(sha256 "$SCRATCH/b")
t 120 nbdcopy --flush "$SCRATCH/a" "$HEAD_URI" || fail "writing A failed"
t 120 rbd snap create --no-progress "$IMG@s1" || fail "rbd snap create while the image is served failed"
t 120 nbdcopy --flush "$SCRATCH/b" "$HEAD_URI" || fail "writing B after the snapshot failed"

start_rbd_server --rbd "$IMG@s1"
SNAP_URI=$(rbd_uri "$IMG@s1")
t 30 nbdinfo --json "$SNAP_URI" >"$TMPD/info.json" || fail "nbdinfo on the snapshot failed"
/usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
bad = [k for k, v in (("is_read_only", True), ("can_trim", False), ("can_zero", False),
                      ("export-size", int(sys.argv[2]))) if e.get(k) != v]
sys.exit("nbdinfo of the snapshot: " + ", ".join("%s=%s" % (k, e.get(k)) for k in bad) if bad else 0)' \
  "$TMPD/info.json" $((MIB << 20)) || fail "snapshot export flags/size wrong"

t 120 nbdcopy "$SNAP_URI" "$SCRATCH/snap.back" || fail "reading the snapshot over NBD failed"
[ "$(sha256 "$SCRATCH/snap.back")" = "$A" ] || fail "the snapshot does not read A over NBD"
[ "$(rbd_sha256 "$IMG@s1")" = "$A" ] || fail "rbd export of the snapshot is not A"
t 120 nbdcopy "$HEAD_URI" "$SCRATCH/head.back" || fail "reading the head over NBD failed"
[ "$(sha256 "$SCRATCH/head.back")" = "$B" ] || fail "the head does not read B"
[ "$(rbd_sha256 "$IMG")" = "$B" ] || fail "rbd export of the head is not B"

A_FILE=$SCRATCH/a TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$SNAP_URI" -c - <<'PY' || fail "write attempts on the snapshot"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno
a = open(os.environ["A_FILE"], "rb").read(1 << 20)
h.set_strict_mode(0)          # send the requests; the server must refuse them
check(h.is_read_only(), "is_read_only() is false")
expect_errno(nbd, "pwrite", lambda: h.pwrite(b"x" * 4096, 0), errno.EPERM)
expect_errno(nbd, "pwrite+FUA", lambda: h.pwrite(b"x" * 4096, 65536, nbd.CMD_FLAG_FUA), errno.EPERM)
expect_errno(nbd, "trim", lambda: h.trim(1 << 20, 0), errno.EPERM)
expect_errno(nbd, "zero", lambda: h.zero(1 << 20, 0), errno.EPERM)
h.flush()                     # harmless on a read-only export
check(h.pread(1 << 20, 0) == a, "the snapshot's data changed after the refused writes")
h.shutdown()
PY

stop_rbd_server "$SERVER_PID"
stop_rbd_server "$HEAD_PID"
[ "$(rbd_sha256 "$IMG@s1")" = "$A" ] || fail "rbd export of the snapshot is not A after the servers stopped"
pass "snapshot reads A ($A), head reads B, writes to the snapshot get EPERM"
