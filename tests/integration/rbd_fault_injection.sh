#!/bin/bash
# The fault decorator on an RBD export (`--export backend=rbd,image=...,fault-*`; the
# factory in gateway/exports/ wraps RBD images like any backend): while the trigger file
# exists, writes (plain and FUA) fail with EIO and reads keep working; the connection
# survives every error; once the trigger is gone, writes succeed again. Nothing a failed
# write carried reached the image: `rbd export` (another librbd client) equals exactly
# what the successful writes wrote. A delay key and read-only work on RBD exports too.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdsh nbdinfo
rbd_setup
make_scratch

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 16M
trigger="$TMPD/fail-writes"
start_rbd_server --export "name=faulty,backend=rbd,image=$IMG,fault-errno=EIO,fault-ops=write,fault-trigger=$trigger" \
  --export "name=slow-ro,backend=rbd,image=$IMG,read-only,delay-read=20ms"
grep -q "export 'faulty': rbd $IMG +fault(EIO on write while $trigger exists)" "$SERVER_LOG" \
  || { cat "$SERVER_LOG" >&2; fail "the server does not describe the RBD export as fault-wrapped"; }

TRIGGER=$trigger EXPECT=$SCRATCH/expect TESTLIB="$ROOT/tests/lib" t 120 \
  nbdsh -u "nbd+unix:///faulty?socket=$SERVER_SOCK" -c - <<'PY' || fail "nbdsh fault checks on the RBD export"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno, pattern

trigger = os.environ["TRIGGER"]
size = h.get_size()
a, b, c = pattern(65536, 1), pattern(65536, 2), pattern(65536, 3)
h.pwrite(a, 0)                                   # no trigger: works
h.flush()
open(trigger, "w").close()
for i in range(3):
    expect_errno(nbd, "write with the trigger set", lambda: h.pwrite(b, 0), errno.EIO)
    expect_errno(nbd, "FUA write with the trigger set",
                 lambda: h.pwrite(b, 0, nbd.CMD_FLAG_FUA), errno.EIO)
    expect_errno(nbd, "write elsewhere with the trigger set",
                 lambda: h.pwrite(c, 1 << 20), errno.EIO)
    check(h.pread(65536, 0) == a, "read while writes fail: wrong data")
h.flush()                                        # only writes are faulted
os.unlink(trigger)
h.pwrite(c, 2 << 20)
h.flush()
check(h.pread(65536, 0) == a, "a failed write changed the data")
check(h.pread(65536, 1 << 20) == bytes(65536), "a failed write reached an unwritten range")
check(h.pread(65536, 2 << 20) == c, "write after the trigger was removed")
expect = bytearray(size)
expect[0:65536] = a
expect[2 << 20:(2 << 20) + 65536] = c
open(os.environ["EXPECT"], "wb").write(expect)
h.shutdown()
PY

# The read-only, delayed export of the same image: reads work (slowly), writes are EPERM.
TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "nbd+unix:///slow-ro?socket=$SERVER_SOCK" -c - <<'PY' || fail "read-only + delay on the RBD export"
import errno, os, sys, time
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno, pattern
check(h.is_read_only(), "read-only RBD export not advertised read-only")
t0 = time.monotonic()
check(h.pread(65536, 0) == pattern(65536, 1), "read of the read-only export: wrong data")
check(time.monotonic() - t0 >= 0.018, "delay-read=20ms did not delay the read")
expect_errno(nbd, "write to the read-only export", lambda: h.pwrite(b"x" * 4096, 0), errno.EPERM)
h.shutdown()
PY

stop_rbd_server
want=$(sha256 "$SCRATCH/expect")
got=$(rbd_sha256_head "$IMG" $((16 << 20)))
[ "$got" = "$want" ] || fail "rbd export differs from what the successful writes wrote (a failed write reached the image?)"
pass "fault-injection on an RBD export: EIO only while the trigger exists, reads unaffected, rbd export exact"
