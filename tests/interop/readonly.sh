#!/bin/bash
# A read-only export: nbdinfo reports is_read_only, reads work, and write, trim and
# write-zeroes sent anyway (libnbd's client-side checks off) fail with EPERM.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdinfo nbdsh

start_server --export name=ro,backend=memory,size=64M,read-only

t 30 nbdinfo --json "$(uri ro)" >"$TMPD/info.json" || fail "nbdinfo failed"
t 30 python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
sys.exit(0 if e["is_read_only"] is True and e["export-size"] == 64 << 20 else 1)' \
  "$TMPD/info.json" || fail "nbdinfo: is_read_only/size wrong: $(cat "$TMPD/info.json")"

TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$(uri ro)" -c - <<'PY' || fail "nbdsh checks on the read-only export"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno

h.set_strict_mode(0)          # send the requests; let the server reject them
check(h.is_read_only(), "is_read_only() is false")
check(h.pread(4096, 0) == bytes(4096), "a fresh memory export does not read zeroes")
expect_errno(nbd, "pwrite", lambda: h.pwrite(b"x" * 4096, 0), errno.EPERM)
expect_errno(nbd, "pwrite+FUA", lambda: h.pwrite(b"x" * 4096, 0, nbd.CMD_FLAG_FUA), errno.EPERM)
expect_errno(nbd, "trim", lambda: h.trim(4096, 0), errno.EPERM)
expect_errno(nbd, "zero", lambda: h.zero(4096, 0), errno.EPERM)
# The connection stays usable after the errors, and nothing was written.
check(h.pread(8192, 0) == bytes(8192), "data changed on a read-only export")
h.shutdown()
PY

stop_server
pass
