#!/bin/bash
# SIGTERM while fio writes to a file-backed export (with a 200 ms write delay, so writes
# are in flight): the server drains, flushes and exits 0 within T_STOP; the 32 writes it
# had received before the signal are all acknowledged (drain); and every write it
# acknowledged - a synchronous 8 MiB marker and those 32 - is in the backing file after. (Durability across a power cut can't be observed here; what
# is checked is that no acknowledged write is lost by the shutdown.)
. "$(dirname "$0")/../lib/common.sh"
require_cmd fio python3

disk=$(mktemp -d /var/tmp/rbdnbd-sigterm.XXXXXX)
on_exit "rm -rf '$disk'"
truncate -s 256M "$disk/backing"
# delay-write keeps writes in flight in the backend when SIGTERM arrives.
start_server --export "name=file,backend=file,path=$disk/backing,delay-write=200ms"

# The load: 2 connections of random 64k writes over [64 MiB, 256 MiB), until the server
# goes away (fio then fails, which is expected).
bg t 300 fio --name=load --ioengine=nbd --uri="$(uri file)" --rw=randwrite --bs=64k \
  --iodepth=16 --numjobs=2 --offset=64m --size=192m --time_based --runtime=240 \
  --output="$TMPD/fio.out" 2>"$TMPD/fio.err"
fio_pid=$BG_PID

# nbdkit (the reference) closes connections on SIGTERM without draining: only rbd-nbdd
# is held to the drain promise.
drain=(--require-drain); [ "$NBD_SERVER" = nbdkit ] && drain=()
t 180 python3 "$ROOT/tests/interop/sigterm_writer.py" "$(uri file)" "$SERVER_PID" \
  "$disk/backing" "$TMPD/acked.json" "${drain[@]}" || fail "sigterm_writer failed"
wait_server_exit

# fio must notice and exit on its own (bounded by its timeout wrapper).
_wait_exit "$fio_pid" 60 || fail "fio still running 60 s after the server exited"
rc=0; wait "$fio_pid" || rc=$?
log "fio exited $rc after the server went away (non-zero is expected)"

t 60 python3 - "$disk/backing" "$TMPD/acked.json" <<'PY' || fail "acknowledged data missing from the backing file"
import json, sys
MiB = 1 << 20
f = open(sys.argv[1], "rb")
if f.read(8 * MiB) != b"A" * (8 * MiB):
    sys.exit("marker A ([0, 8 MiB), acknowledged before SIGTERM) is not in the file")
KiB64 = 64 << 10
for i in json.load(open(sys.argv[2]))["acked"]:
    f.seek(8 * MiB + i * KiB64)
    if f.read(KiB64) != b"B" * KiB64:
        sys.exit(f"write {i} was acknowledged but its data is not in the file")
PY
pass
