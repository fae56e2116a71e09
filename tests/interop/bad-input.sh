#!/bin/bash
# Bad input over a raw socket (tests/interop/bad_input.py lists the ~30 cases): garbage in
# the handshake, bad request magic, unknown command, zero lengths, > 32 MiB, past the end,
# clients that vanish mid-payload. Each gets an error reply or a clean close of its own
# connection; the server stays up, a concurrent connection on the same worker keeps
# working, and nbdinfo succeeds after every case. Finally SIGTERM must still exit 0.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdinfo python3

start_server --workers 1 --export name=disk,backend=memory,size=256M
ref=(); [ "$NBD_SERVER" = nbdkit ] && ref=(REFERENCE=1 MAX_REQUEST=$((64 << 20)))
t 600 env "${ref[@]}" python3 "$ROOT/tests/interop/bad_input.py" "$SERVER_SOCK" disk "$SERVER_PID" \
  || fail "bad-input cases failed (above)"
server_alive || fail "server died"
stop_server
pass
