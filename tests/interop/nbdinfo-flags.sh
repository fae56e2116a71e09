#!/bin/bash
# nbdinfo --json on a writable memory export: the size and every capability flag that
# rbd-nbdd advertises for memory/file backends (FLUSH, FUA, TRIM, WRITE_ZEROES, CACHE,
# CAN_MULTI_CONN), and not read-only. Checks both the named and the default export.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdinfo

start_server --export name=disk,backend=memory,size=1G

for name in disk ""; do
  t 30 nbdinfo --json "$(uri "$name")" >"$TMPD/info.json" || fail "nbdinfo on export '$name' failed"
  t 30 python3 - "$TMPD/info.json" "$name" <<'PY' || fail "flags of export '$name'"
import json, sys
info = json.load(open(sys.argv[1]))
e = info["exports"][0]
want = {"export-size": 1 << 30, "is_read_only": False, "can_flush": True, "can_fua": True,
        "can_trim": True, "can_zero": True, "can_cache": True, "can_multi_conn": True}
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
for k, (got, exp) in bad.items():
    print(f"  export '{sys.argv[2]}': {k} = {got!r}, expected {exp!r}")
sys.exit(1 if bad else 0)
PY
done

stop_server
pass
