#!/bin/bash
# TCP and Unix listeners at once: the same export is reachable over --tcp 127.0.0.1:PORT
# (nbd:// URI) and over the Unix socket, and data written through one is read through the
# other.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdinfo nbdsh
[ "$NBD_SERVER" = nbdkit ] && skip "nbdkit emulation: one listener per nbdkit"

port=$(t 10 python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_server --tcp "127.0.0.1:$port" --export name=disk,backend=memory,size=64M
tcp="nbd://127.0.0.1:$port/disk"

t 30 nbdinfo --size "$tcp" >"$TMPD/size" || fail "nbdinfo over TCP failed"
[ "$(cat "$TMPD/size")" = $((64 << 20)) ] || fail "size over TCP: $(cat "$TMPD/size")"
t 30 nbdsh -u "$tcp" -c 'h.pwrite(b"tcp!" * 1024, 4096); h.flush()' || fail "write over TCP"
t 30 nbdsh -u "$(uri disk)" -c 'assert h.pread(4096, 4096) == b"tcp!" * 1024' \
  || fail "the Unix socket does not see the write made over TCP"

stop_server
# The port is closed after the server exits.
if t 10 nbdinfo --size "$tcp" >/dev/null 2>&1; then fail "TCP port still open after exit"; fi
pass
