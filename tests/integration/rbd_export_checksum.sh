#!/bin/bash
# Data written through rbd-nbdd is what another librbd client reads. 128 MiB of random data,
# written (1) with nbdcopy over one connection, (2) round robin over four connections with
# a single FLUSH on one of them (multi-conn flush semantics), and (3) by fio with four
# jobs and a crc32c verify pass: `rbd export`, run while the server still serves and
# right after the client's flush, must give the sha256 of what was written (and of what
# NBD reads back), and so must it after the server stopped.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdinfo
MIB=${RBD_CHECKSUM_MIB:-128}
rbd_setup
make_scratch

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" "${MIB}M"
RBD_LOG_LEVEL=debug start_rbd_server --rbd "$IMG"
U=$(rbd_uri "$IMG")
[ "$(nbdinfo_json "$U" can_multi_conn)" = true ] || fail "multi_conn is not advertised"
[ "$(nbdinfo_json "$U" export-size)" = $((MIB << 20)) ] || fail "export size is not ${MIB} MiB"

# 1. One connection.
random_file "$SCRATCH/a" "$MIB"
A=$(sha256 "$SCRATCH/a")
t 300 nbdcopy --connections=1 --flush "$SCRATCH/a" "$U" || fail "nbdcopy -C1 file -> rbd failed"
E=$(rbd_sha256 "$IMG")
[ "$E" = "$A" ] || fail "1 connection: rbd export (server running) $E != written $A"
t 300 nbdcopy "$U" "$SCRATCH/a.back" || fail "nbdcopy rbd -> file failed"
[ "$(sha256 "$SCRATCH/a.back")" = "$A" ] || fail "1 connection: NBD read-back differs from what was written"
rm -f "$SCRATCH/a.back"
log "1 connection: $MIB MiB, rbd export matches ($A)"

# 2. Four connections, CAN_MULTI_CONN: 1 MiB chunks go round robin to four libnbd handles,
# one writer thread each; then a FLUSH on the first handle only, while the others stay
# connected. `rbd export` right after that flush must already see every chunk of every
# connection (the flush covers writes made on the other connections).
random_file "$SCRATCH/b" "$MIB"
B=$(sha256 "$SCRATCH/b")
t 300 /usr/bin/python3 - "$U" "$SCRATCH/b" "$IMG" "$SCRATCH/b.export" <<'PY' || fail "4-connection write + single flush: see above"
import hashlib, subprocess, sys, threading
import nbd
uri, src, img, out = sys.argv[1:5]
data = open(src, "rb").read()
CH = 1 << 20
hs = []
for i in range(4):
    h = nbd.NBD()
    h.connect_uri(uri)
    assert h.can_multi_conn(), "multi_conn not advertised"
    hs.append(h)
errors = []
def writer(k):
    try:
        for off in range(k * CH, len(data), 4 * CH):
            hs[k].pwrite(data[off:off + CH], off)
    except Exception as e:
        errors.append(f"connection {k}: {e}")
ts = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
if errors:
    sys.exit("; ".join(errors))
hs[0].flush()          # one flush, on one connection only
subprocess.run(["rbd", "export", "--no-progress", img, out], check=True,
               stdout=subprocess.DEVNULL, timeout=240)
got = hashlib.sha256(open(out, "rb").read()).hexdigest()
want = hashlib.sha256(data).hexdigest()
for h in hs:
    h.shutdown()
if got != want:
    sys.exit(f"rbd export after a flush on connection 0 only: {got} != written {want}")
PY
rm -f "$SCRATCH/b.export"
t 300 nbdcopy --connections=4 "$U" "$SCRATCH/b.back" || fail "nbdcopy -C4 rbd -> file failed"
[ "$(sha256 "$SCRATCH/b.back")" = "$B" ] || fail "4 connections: NBD read-back differs from what was written"
rm -f "$SCRATCH/b.back"
log "4 connections, one flush: rbd export matches ($B)"

# 3. fio, 4 jobs = 4 connections, each on its own quarter with random 4k-64k writes and a
# crc32c verify pass; then rbd export must equal what NBD reads.
q=$((MIB / 4))
t 300 fio --name=mc --ioengine=nbd --uri="$U" --numjobs=4 --size="${q}M" --offset_increment="${q}M" \
  --rw=randwrite --bsrange=4k-64k --iodepth=8 --verify=crc32c --verify_fatal=1 --end_fsync=1 \
  --group_reporting --output-format=json --output="$TMPD/fio.json" >/dev/null \
  || { cat "$TMPD/fio.json" >&2; fail "fio 4 jobs with verify failed"; }
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
if j["error"] or w < int(sys.argv[2]) or r < w:
    sys.exit("fio: error=%s wrote %d verified %d" % (j["error"], w, r))' "$TMPD/fio.json" $((MIB << 20)) \
  || fail "fio numjobs=4: errors, or not everything written and verified"
t 300 nbdcopy "$U" "$SCRATCH/c.back" || fail "nbdcopy rbd -> file failed"
C=$(sha256 "$SCRATCH/c.back")
E=$(rbd_sha256 "$IMG")
[ "$E" = "$C" ] || fail "after fio numjobs=4: rbd export $E != NBD read $C"
log "fio numjobs=4 verify passed; rbd export == NBD read ($C)"

stop_rbd_server
[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "errors in the server log"; }
E=$(rbd_sha256 "$IMG")
[ "$E" = "$C" ] || fail "after the server stopped: rbd export $E != $C"
pass "$MIB MiB: rbd export == NBD writes over 1 connection, 4 connections + one flush, fio numjobs=4"
