#!/bin/bash
# The fault decorator through the CLI (fault-errno, fault-ops, fault-trigger): while the
# trigger file exists, writes fail with EIO and reads still work; the connection survives
# every error; once the trigger is gone, writes succeed again and a failed write changed
# nothing.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdsh

trigger="$TMPD/fail-writes"
start_server --export "name=disk,backend=memory,size=64M,fault-errno=EIO,fault-ops=write,fault-trigger=$trigger"

TRIGGER=$trigger TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$(uri disk)" -c - <<'PY' || fail "nbdsh fault checks"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno, pattern

trigger = os.environ["TRIGGER"]
a, b = pattern(65536, 1), pattern(65536, 2)
h.pwrite(a, 0)                                   # no trigger: works
open(trigger, "w").close()
for _ in range(3):
    expect_errno(nbd, "write with the trigger set", lambda: h.pwrite(b, 0), errno.EIO)
    expect_errno(nbd, "FUA write with the trigger set",
                 lambda: h.pwrite(b, 0, nbd.CMD_FLAG_FUA), errno.EIO)
    check(h.pread(65536, 0) == a, "read while writes fail: wrong data")
h.zero(4096, 1 << 20)                            # only writes are faulted
h.flush()
os.unlink(trigger)
h.pwrite(b, 0)
check(h.pread(65536, 0) == b, "write after the trigger was removed")
h.shutdown()
PY

stop_server
pass
