#!/bin/bash
# An image with every feature, journaling included (what krbd cannot map), served by
# rbd-nbdd: fio (4k-128k random writes, crc32c verify) and a 128 MiB nbdcopy round trip
# work, `rbd export` equals what NBD wrote, the journal recorded the writes (the commit
# position in `rbd journal status` reaches at least one entry per fio write; entries
# still in the journal, per `rbd journal inspect`, are logged - committed sets get
# trimmed, so that count is not asserted), and afterwards the object map is valid
# (`rbd object-map check`, no "invalid" flag).
. "$(dirname "$0")/lib_rbd.sh"
require_cmd fio nbdcopy nbdinfo
rbd_setup
make_scratch

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 128M all
feat=$(rbd_features "$IMG")
for f in ${RBD_FEATURES_ALL//,/ }; do
  [[ ",$feat," == *",$f,"* ]] || fail "image lacks feature $f (has $feat)"
done
log "features: $feat"

# journal_entries : the number of entries `rbd journal inspect` finds in the journal.
journal_entries() {
  t 120 rbd journal inspect --pool "${IMG%%/*}" --image "${IMG#*/}" 2>/dev/null |
    sed -n 's/^ *\([0-9][0-9]*\) entries inspected.*/\1/p'
}
before=$(journal_entries)
[ -n "$before" ] || fail "rbd journal inspect gave no summary"

start_rbd_server --rbd "$IMG"
U=$(rbd_uri "$IMG")

# 1. fio: random writes of mixed sizes, then read back and verify every block.
t 300 fio --name=journal --ioengine=nbd --uri="$U" --size=64M --rw=randwrite --bsrange=4k-128k \
  --iodepth=16 --verify=crc32c --verify_fatal=1 --end_fsync=1 \
  --output-format=json --output="$TMPD/fio.json" >/dev/null \
  || { cat "$TMPD/fio.json" >&2; fail "fio randwrite+verify on the journaling image failed"; }
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
if j["error"] or w < (64 << 20) or r < w:
    sys.exit("fio: error=%s wrote %d verified %d" % (j["error"], w, r))
print("fio: wrote %d MiB, verified %d MiB, %d write IOPS" % (w >> 20, r >> 20, j["write"]["iops"]), file=sys.stderr)
print(j["write"]["total_ios"])' "$TMPD/fio.json" >"$TMPD/fio.ios" || fail "fio: errors, or not everything written and verified"
FIO_WRITES=$(cat "$TMPD/fio.ios")

# 2. A full overwrite with random data; `rbd export` (another client, server still
# serving) must read exactly that, and so must NBD.
random_file "$SCRATCH/data" 128
D=$(sha256 "$SCRATCH/data")
t 300 nbdcopy --flush "$SCRATCH/data" "$U" || fail "nbdcopy file -> journaling image failed"
E=$(rbd_sha256 "$IMG")
[ "$E" = "$D" ] || fail "rbd export (server running) $E != written $D"
t 300 nbdcopy "$U" "$SCRATCH/back" || fail "nbdcopy journaling image -> file failed"
[ "$(sha256 "$SCRATCH/back")" = "$D" ] || fail "NBD read-back differs from what was written"

after=$(journal_entries)
log "journal entries present: $before before the I/O, ${after:-?} after (committed sets are trimmed)"

stop_rbd_server
[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "errors in the server log"; }
t 60 rbd journal status --pool "${IMG%%/*}" --image "${IMG#*/}" --format json >"$TMPD/jstatus.json" \
  || fail "rbd journal status failed"
tid=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(max([p["entry_tid"] for c in d["registered_clients"]
           for p in c["commit_position"]["object_positions"]] or [0]))' "$TMPD/jstatus.json")
log "journal commit position: entry_tid $tid (fio alone made $FIO_WRITES writes)"
[ "$tid" -ge "$FIO_WRITES" ] || fail "the journal's commit position ($tid) is below the number of fio writes ($FIO_WRITES): $(cat "$TMPD/jstatus.json")"

# 4. The data is still there once the server is gone (journal committed, nothing to
# replay), and the object map that the writes maintained is consistent.
E=$(rbd_sha256 "$IMG")
[ "$E" = "$D" ] || fail "rbd export after the server stopped $E != written $D"
t 120 rbd object-map check --no-progress "$IMG" >"$TMPD/omcheck" 2>&1 || { cat "$TMPD/omcheck" >&2; fail "rbd object-map check failed"; }
flags=$(t 60 rbd info --format json "$IMG" | /usr/bin/python3 -c 'import json,sys; print(",".join(json.load(sys.stdin).get("flags", [])))')
[ -z "$flags" ] || fail "image flags after the run: $flags (object map / fast diff invalid?)"
pass "all features + journaling: fio verify, sha256 $D, journal committed $tid entries, object map valid"
