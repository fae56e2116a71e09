#!/bin/bash
# nbdinfo --list --json on a server with two exports of different sizes: both names are
# listed, each with its own size, and each can be opened by name.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdinfo

start_server --export name=alpha,backend=memory,size=64M \
             --export name=beta,backend=memory,size=1G

t 30 nbdinfo --list --json "$(uri)" >"$TMPD/list.json" || fail "nbdinfo --list failed"
t 30 python3 - "$TMPD/list.json" <<'PY' || fail "export list"
import json, sys
info = json.load(open(sys.argv[1]))
got = {e["export-name"]: e.get("export-size") for e in info["exports"]}
want = {"alpha": 64 << 20, "beta": 1 << 30}
ok = True
for name, size in want.items():
    if got.get(name) != size:
        print(f"  export {name!r}: size {got.get(name)!r}, expected {size}")
        ok = False
extra = set(got) - set(want)
if extra:
    print(f"  unexpected exports listed: {sorted(extra)}")
    ok = False
sys.exit(0 if ok else 1)
PY

for name in alpha beta; do
  t 30 nbdinfo --size "$(uri "$name")" >/dev/null || fail "cannot open export $name by name"
done
if t 30 nbdinfo --size "$(uri no-such-export)" >/dev/null 2>&1; then
  [ "$NBD_SERVER" = nbdkit ] || fail "opening an unknown export name succeeded"
fi

stop_server
pass
