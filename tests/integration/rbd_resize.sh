#!/bin/bash
# A resize made by another client while rbd-nbdd serves the image is picked up (update
# watch): `rbd resize` grows the image 64 -> 128 MiB and a NEW nbdinfo connection sees
# 128 MiB within a bound; the new tail is writable over NBD and `rbd export` reads it
# back. A shrink (--allow-shrink) to 96 MiB shows too. A connection opened before the
# resize keeps working.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdinfo nbdsh
rbd_setup
BOUND=${RBD_RESIZE_BOUND:-15}

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 64M
start_rbd_server --rbd "$IMG"
U=$(rbd_uri "$IMG")
[ "$(nbdinfo --size "$U")" = $((64 << 20)) ] || fail "initial size is not 64 MiB"

# An old connection, open across the resize (nbdsh in the background, fed by a fifo).
mkfifo "$TMPD/old.in"
nbdsh -u "$U" -c - <"$TMPD/old.in" >"$TMPD/old.out" 2>&1 &
OLD=$!; on_exit "term_wait $OLD 5"
exec 7>"$TMPD/old.in"
echo 'h.pwrite(b"o" * 4096, 0)' >&7

# wait_size BYTES : poll fresh nbdinfo connections until the export has BYTES (<= BOUND s).
wait_size() {
  local want=$1 got='' deadline=$((SECONDS + BOUND)) t0=$EPOCHREALTIME
  while :; do
    got=$(t 30 nbdinfo --size "$U" 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    [ "$SECONDS" -ge "$deadline" ] && fail "a new connection still sees size ${got:-?} ${BOUND}s after the resize, expected $want"
    sleep 0.2
  done
  log "new connections see $((want >> 20)) MiB after $(/usr/bin/python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')") s"
}

t 60 rbd resize --no-progress --size 128M "$IMG" || fail "rbd resize (grow) failed"
wait_size $((128 << 20))

# The new tail is real: write its last MiB over NBD, read it with rbd export.
TESTLIB="$ROOT/tests/lib" t 60 nbdsh -u "$U" -c - <<'PY' || fail "I/O past the old end failed"
import os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, pattern
check(h.get_size() == 128 << 20, "size is not 128 MiB")
p = pattern(1 << 20, 7)
h.pwrite(p, (127 << 20), nbd.CMD_FLAG_FUA)
check(h.pread(1 << 20, 127 << 20) == p, "tail read-back differs")
h.shutdown()
PY
want=$(/usr/bin/python3 -c '
import sys, hashlib; sys.path.insert(0, sys.argv[1])
from nbdtest import pattern
print(hashlib.sha256(pattern(1 << 20, 7)).hexdigest())' "$ROOT/tests/lib")
got=$(set -o pipefail; t 120 rbd export --no-progress "$IMG" - 2>/dev/null | tail -c $((1 << 20)) | sha256sum) \
  || fail "rbd export failed"
[ "${got%% *}" = "$want" ] || fail "rbd export does not hold the data written past the old end"

t 60 rbd resize --no-progress --allow-shrink --size 96M "$IMG" || fail "rbd resize (shrink) failed"
wait_size $((96 << 20))

# The connection from before the resizes still works.
echo 'assert h.pread(4096, 0) == b"o" * 4096; print("old-ok"); h.shutdown()' >&7
exec 7>&-
_wait_exit "$OLD" 30 || fail "the old connection's nbdsh did not finish"
grep -q old-ok "$TMPD/old.out" || fail "the connection opened before the resize failed: $(cat "$TMPD/old.out")"

stop_rbd_server
[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "errors in the server log"; }
pass "64 -> 128 -> 96 MiB seen by new connections; tail I/O ok"
