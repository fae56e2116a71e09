"""SIGTERM during writes (driven by sigterm-flush.sh).

usage: sigterm_writer.py URI SERVER_PID BACKING_FILE OUT.json [--require-drain]

1. Writes marker A over [0, 8 MiB) and waits for the replies (no flush).
2. Waits (bounded) until the background fio load has written at least 16 MiB into the
   backing file, so SIGTERM lands on a busy server.
3. Queues 32 x 64 KiB writes of marker B over [8, 10) MiB on a second connection, then one
   small READ, and waits for the READ's reply. The server parses a connection's requests in
   order, so once the READ is answered all 32 writes have been received: with the export's
   write delay they are still in flight in the backend. Then SIGTERM.
4. Collects the outcome of each queued write until all are answered or the connection is
   gone. With --require-drain every one of them must be acknowledged (SIGTERM drains
   in-flight I/O); OUT.json lists the acknowledged ones for the data check.
"""
import json
import os
import signal
import sys
import time

import nbd

uri, pid, backing, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
require_drain = "--require-drain" in sys.argv[5:]
MiB = 1 << 20

h1 = nbd.NBD()
h1.connect_uri(uri)
h1.pwrite(b"A" * (8 * MiB), 0)

deadline = time.monotonic() + 60
while os.stat(backing).st_blocks * 512 < 24 * MiB:
    if time.monotonic() > deadline:
        sys.exit("fio wrote less than 16 MiB in 60 s: no load to interrupt")
    time.sleep(0.05)

h2 = nbd.NBD()
h2.connect_uri(uri)
buf = nbd.Buffer.from_bytearray(bytearray(b"B" * (64 << 10)))
cookies = {h2.aio_pwrite(buf, 8 * MiB + i * (64 << 10)): i for i in range(32)}
rbuf = nbd.Buffer(4096)
rc = h2.aio_pread(rbuf, 40 * MiB)
deadline = time.monotonic() + 60
while True:
    try:
        if h2.aio_command_completed(rc):
            break
    except nbd.Error as e:
        sys.exit(f"the READ after the 32 writes failed: {e}")
    if time.monotonic() > deadline:
        sys.exit("the READ after the 32 writes got no reply in 60 s")
    h2.poll(1)
os.kill(pid, signal.SIGTERM)

acked, failed = [], []
deadline = time.monotonic() + 60
while cookies and time.monotonic() < deadline:
    for c, i in list(cookies.items()):
        try:
            if h2.aio_command_completed(c):
                acked.append(i)
                del cookies[c]
        except nbd.Error:
            failed.append(i)
            del cookies[c]
    if not cookies:
        break
    if h2.aio_is_dead() or h2.aio_is_closed():
        failed.extend(cookies.values())
        break
    try:
        h2.poll(1)
    except nbd.Error:
        pass
if cookies and not (h2.aio_is_dead() or h2.aio_is_closed()):
    sys.exit(f"{len(cookies)} writes neither answered nor failed 60 s after SIGTERM")

json.dump({"acked": sorted(acked), "failed": sorted(set(failed))}, open(out, "w"))
print(f"32 writes in flight at SIGTERM: {len(acked)} acknowledged, "
      f"{len(set(failed))} failed (connection closed)")
if require_drain and failed:
    sys.exit(f"SIGTERM did not drain: writes {sorted(set(failed))} were received by the "
             "server before SIGTERM but never acknowledged")
