#!/bin/bash
# `serve --read-only` on an image's head: nbdinfo says is_read_only (no trim, no zero),
# reads return the image's data, and WRITE, WRITE+FUA, TRIM and WRITE_ZEROES sent anyway
# fail with EPERM; `rbd export` is unchanged afterwards. A read-only server takes no
# exclusive lock: a writer (rbd bench) can still write the image while it serves.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdinfo nbdsh
rbd_setup
make_scratch
MIB=16

IMG=rbd/$(unique_image_name)
random_file "$SCRATCH/data" $MIB
D=$(sha256 "$SCRATCH/data")
t 120 rbd import --no-progress "$SCRATCH/data" "$IMG" || fail "rbd import failed"
on_exit "rbd_remove '$IMG'"

start_rbd_server --rbd "$IMG" --read-only
U=$(rbd_uri "$IMG")
t 30 nbdinfo --json "$U" >"$TMPD/info.json" || fail "nbdinfo failed"
/usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
bad = [k for k, v in (("is_read_only", True), ("can_trim", False), ("can_zero", False),
                      ("export-size", int(sys.argv[2]))) if e.get(k) != v]
sys.exit("nbdinfo --read-only: " + ", ".join("%s=%s" % (k, e.get(k)) for k in bad) if bad else 0)' \
  "$TMPD/info.json" $((MIB << 20)) || fail "read-only export flags/size wrong"

t 120 nbdcopy "$U" "$SCRATCH/back" || fail "reading over NBD failed"
[ "$(sha256 "$SCRATCH/back")" = "$D" ] || fail "NBD reads differ from the imported data"

D_FILE=$SCRATCH/data TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$U" -c - <<'PY' || fail "write attempts on the read-only head"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno
d = open(os.environ["D_FILE"], "rb").read(1 << 20)
h.set_strict_mode(0)
check(h.is_read_only(), "is_read_only() is false")
expect_errno(nbd, "pwrite", lambda: h.pwrite(b"x" * 4096, 0), errno.EPERM)
expect_errno(nbd, "pwrite+FUA", lambda: h.pwrite(b"x" * 4096, 8192, nbd.CMD_FLAG_FUA), errno.EPERM)
expect_errno(nbd, "trim", lambda: h.trim(1 << 20, 0), errno.EPERM)
expect_errno(nbd, "zero", lambda: h.zero(1 << 20, 0), errno.EPERM)
check(h.pread(1 << 20, 0) == d, "data changed after the refused writes")
h.shutdown()
PY
[ "$(rbd_sha256 "$IMG")" = "$D" ] || fail "rbd export changed while served read-only"

# No exclusive lock held: another client writes while the read-only server still serves.
t 120 rbd bench --io-type write --io-size 4K --io-total 1M --io-pattern rand "$IMG" >/dev/null 2>&1 \
  || fail "a writer could not write while the image is served --read-only (lock held?)"
[ "$(rbd_sha256 "$IMG")" != "$D" ] || fail "rbd bench wrote nothing?"
server_alive || fail "the read-only server died while another client wrote"

stop_rbd_server
pass "--read-only: is_read_only, reads == image ($D), writes/trim/zero EPERM, no lock taken"
