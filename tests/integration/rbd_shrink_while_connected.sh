#!/bin/bash
# An RBD image shrunk (`rbd resize --allow-shrink`) under an open connection: the
# connection still has the old size, so it forwards requests past the new end (the
# kernel's writeback of cached pages does this after a shrink). Each such request gets an
# NBD error, the server stays up (with asserts live, a range assert used to abort it),
# requests inside the new size keep working, and a new connection sees the new size.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdsh nbdinfo
rbd_setup

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 16M
start_rbd_server --rbd "$IMG"
U=$(rbd_uri "$IMG")

IMG=$IMG U=$U TESTLIB="$ROOT/tests/lib" t 120 nbdsh -u "$U" -c - <<'PY' || fail "requests past a shrunk end"
import os, subprocess, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, pattern
M = 1 << 20
a = pattern(4096, 1)
h.pwrite(a, 12 * M)
h.pwrite(a, 1 * M)
h.flush()
r = subprocess.run(["rbd", "resize", "--allow-shrink", "--no-progress", "--size", "8M", os.environ["IMG"]],
                   capture_output=True, timeout=120)
check(r.returncode == 0, f"rbd resize failed: {r.stderr.decode()[-300:]}")
# A new connection makes the server re-read the size, as the daemon's resize handling does.
size = subprocess.run(["nbdinfo", "--size", os.environ["U"]], capture_output=True, timeout=60)
check(size.stdout.decode().strip() == str(8 * M), f"a new connection sees {size.stdout!r}, not 8 MiB")
check(h.get_size() == 16 * M, "this connection was told 16 MiB at its start")
for what, op in [("write", lambda: h.pwrite(a, 12 * M)),
                 ("FUA write", lambda: h.pwrite(a, 12 * M, nbd.CMD_FLAG_FUA)),
                 ("zero", lambda: h.zero(4096, 12 * M)),
                 ("trim", lambda: h.trim(4096, 12 * M))]:
    try:
        op()
        failed = False
    except nbd.Error:
        failed = True
    check(h.aio_in_flight() == 0, f"{what} past the new end: still in flight")
    # librbd may clip a trim/zero past the end instead of refusing it: either is fine,
    # what matters is an answer on a live connection.
    if what in ("write", "FUA write"):
        check(failed, f"{what} past the new end succeeded")
check(h.pread(4096, 1 * M) == a, "data inside the new size changed")
h.pwrite(pattern(4096, 2), 2 * M)
check(h.pread(4096, 2 * M) == pattern(4096, 2), "a write inside the new size failed")
h.flush()
h.shutdown()
PY
_alive "$SERVER_PID" || fail "the server died on requests past the shrunk end: $(tail -n 3 "$SERVER_LOG")"
stop_rbd_server
pass "a shrink under an open connection: errors past the new end, the server stays up, data inside intact"
