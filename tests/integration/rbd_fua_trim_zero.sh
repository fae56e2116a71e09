#!/bin/bash
# FUA on TRIM and WRITE_ZEROES (backend.h: a FUA request is durable when it completes;
# librbd has no FUA, so rbd/rbd_op_plan.h adds an rbd_aio_flush after the op). Over one
# nbdsh connection to an RBD image filled with random data:
#   TRIM FUA, WRITE_ZEROES FUA, WRITE_ZEROES NO_HOLE|FUA, WRITE FUA  -> each completes OK
#   and, with that connection still open and no FLUSH sent, `rbd export` (another librbd
#   client) already reads the new contents;
#   the server's trace log shows exactly one flush per FUA request, naming its type, and
#   none for the same requests without FUA.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdsh nbdcopy
rbd_setup
make_scratch
MIB=16

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" "${MIB}M"
random_file "$SCRATCH/data" $MIB
start_rbd_server --rbd "$IMG" --log-level trace
U=$(rbd_uri "$IMG")
t 120 nbdcopy --flush "$SCRATCH/data" "$U" || fail "filling the image failed"

IMG=$IMG DATA=$SCRATCH/data TESTLIB="$ROOT/tests/lib" t 300 nbdsh -u "$U" -c - <<'PY' || fail "FUA trim/zero checks"
import hashlib, os, subprocess, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check
M = 1 << 20
data = bytearray(open(os.environ["DATA"], "rb").read())
check(h.can_fua() and h.can_trim() and h.can_zero(), "FUA/trim/zero not advertised")

def exported():
    # Another librbd client, while this connection stays open and has sent no FLUSH.
    out = subprocess.run(["rbd", "export", "--no-progress", os.environ["IMG"], "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(out.returncode == 0, f"rbd export failed: {out.stderr.decode()[-300:]}")
    return out.stdout

fua = nbd.CMD_FLAG_FUA
ops = [("trim FUA", lambda: h.trim(M, 1 * M, fua), 1 * M, M, None),
       ("zero FUA", lambda: h.zero(M, 3 * M, fua), 3 * M, M, None),
       ("zero NO_HOLE FUA", lambda: h.zero(M, 5 * M, fua | nbd.CMD_FLAG_NO_HOLE), 5 * M, M, None),
       ("write FUA", lambda: h.pwrite(b"\xa5" * 65536, 7 * M, fua), 7 * M, 65536, b"\xa5" * 65536)]
for what, op, off, n, new in ops:
    op()
    data[off:off + n] = new if new is not None else bytes(n)
    got = exported()
    check(got[off:off + n] == bytes(data[off:off + n]), f"{what}: rbd export does not see it")
    check(hashlib.sha256(got).digest() == hashlib.sha256(data).digest(),
          f"{what}: rbd export differs from the expected image elsewhere")
# The same requests without FUA: no flush for them (the log is counted afterwards).
h.trim(M, 9 * M)
h.zero(M, 11 * M)
h.pwrite(b"\x5a" * 4096, 13 * M)
h.shutdown()
PY

stop_rbd_server
flushes=$(grep -c "with FUA: flushing" "$SERVER_LOG" || true)
log "FUA flushes in the server's trace log: $flushes"
grep "with FUA: flushing" "$SERVER_LOG" | sed 's/^/    /' >&2
[ "$flushes" = 4 ] || fail "expected 4 FUA flushes in the trace log (trim, zero, zero NO_HOLE, write), saw $flushes"
for what in "trim $((1 << 20))+$((1 << 20))" "write_zeroes $((3 << 20))+$((1 << 20))" \
            "write_zeroes $((5 << 20))+$((1 << 20))" "write $((7 << 20))+65536"; do
  grep -q "$IMG: $what with FUA: flushing" "$SERVER_LOG" || fail "no FUA flush logged for $what"
done
pass "TRIM, WRITE_ZEROES (also NO_HOLE) and WRITE with FUA flushed; rbd export saw each before any FLUSH"
