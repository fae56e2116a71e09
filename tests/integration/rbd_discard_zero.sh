#!/bin/bash
# TRIM and WRITE_ZEROES on an RBD image (4 MiB objects, fast-diff): after filling 64 MiB
# with random data,
#   TRIM          of objects 2-5            -> reads zeroes, the objects are gone
#   WRITE_ZEROES  of objects 8-9            -> reads zeroes, the objects are gone (may trim)
#   WRITE_ZEROES  NO_HOLE, objects 12-13    -> reads zeroes, the objects stay allocated
#   WRITE_ZEROES  of 5000 unaligned bytes   -> reads zeroes, the neighbours are intact
# `rbd du` drops by exactly the 6 deallocated objects, `rbd export` equals the expected
# image (data with those ranges zeroed), and NBD reads agree.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdsh rados
rbd_setup
make_scratch
MIB=64 OBJ=$((4 << 20))

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" "${MIB}M" default --object-size 4M
start_rbd_server --rbd "$IMG"
U=$(rbd_uri "$IMG")

random_file "$SCRATCH/data" $MIB
t 120 nbdcopy --flush "$SCRATCH/data" "$U" || fail "filling the image failed"
used0=$(rbd_used "$IMG")
[ "$used0" = $((MIB << 20)) ] || fail "rbd du after a full write: $used0, expected $((MIB << 20))"

DATA=$SCRATCH/data EXPECT=$SCRATCH/expect TESTLIB="$ROOT/tests/lib" t 120 nbdsh -u "$U" -c - <<'PY' || fail "trim/zero checks over NBD"
import os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check
M = 1 << 20
OBJ = 4 * M
data = bytearray(open(os.environ["DATA"], "rb").read())
check(h.can_trim() and h.can_zero(), "trim/zero not advertised")
ops = [("trim objects 2-5", lambda: h.trim(4 * OBJ, 2 * OBJ), 2 * OBJ, 4 * OBJ),
       ("zero objects 8-9", lambda: h.zero(2 * OBJ, 8 * OBJ), 8 * OBJ, 2 * OBJ),
       ("zero NO_HOLE objects 12-13",
        lambda: h.zero(2 * OBJ, 12 * OBJ, nbd.CMD_FLAG_NO_HOLE), 12 * OBJ, 2 * OBJ),
       ("zero 5000 unaligned bytes", lambda: h.zero(5000, 15 * OBJ + 12345), 15 * OBJ + 12345, 5000)]
for what, op, off, n in ops:
    op()
    data[off:off + n] = bytes(n)
h.flush()
for what, op, off, n in ops:
    lo, hi = max(0, off - 8192), min(len(data), off + n + 8192)
    got = h.pread(hi - lo, lo)
    check(got[off - lo:off - lo + n] == bytes(n), f"{what}: does not read zeroes")
    check(got == bytes(data[lo:hi]), f"{what}: the bytes next to the range changed")
open(os.environ["EXPECT"], "wb").write(data)
h.shutdown()
PY
X=$(sha256 "$SCRATCH/expect")

used1=$(rbd_used "$IMG")
log "rbd du: $((used0 >> 20)) MiB before, $((used1 >> 20)) MiB after trim/zero"
[ "$used1" = $((used0 - 6 * OBJ)) ] || fail "rbd du after trim/zero: $used1, expected $((used0 - 6 * OBJ)) (6 objects freed; NO_HOLE keeps 2)"

# Per object, in RADOS: the trimmed/zeroed ones are gone, the NO_HOLE ones hold 4 MiB.
prefix=$(t 60 rbd info --format json "$IMG" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["block_name_prefix"])') \
  || fail "rbd info gave no block_name_prefix"
obj_size() { t 60 rados -p "${IMG%%/*}" stat "$(printf '%s.%016x' "$prefix" "$1")" 2>/dev/null | sed -n 's/.* size \([0-9]*\).*/\1/p'; }
for o in 2 3 4 5 8 9; do [ -z "$(obj_size $o)" ] || fail "object $o still exists after trim/zero"; done
for o in 12 13; do [ "$(obj_size $o)" = "$OBJ" ] || fail "object $o (zeroed with NO_HOLE) is not 4 MiB in RADOS: '$(obj_size $o)'"; done
for o in 0 15; do [ "$(obj_size $o)" = "$OBJ" ] || fail "untouched object $o is not 4 MiB: '$(obj_size $o)'"; done

[ "$(rbd_sha256 "$IMG")" = "$X" ] || fail "rbd export differs from the expected content"
t 120 nbdcopy "$U" "$SCRATCH/back" || fail "NBD read-back failed"
[ "$(sha256 "$SCRATCH/back")" = "$X" ] || fail "NBD read-back differs from the expected content"
stop_rbd_server
[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "errors in the server log"; }
pass "trim/zero read back as zeroes; rbd du $((used0 >> 20)) -> $((used1 >> 20)) MiB; NO_HOLE kept its objects"
