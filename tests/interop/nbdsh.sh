#!/bin/bash
# nbdsh (libnbd's Python shell) drives every data command against a memory export and
# checks the results byte for byte: write/read, trim (aligned: zeroes on the memory
# backend; unaligned: each byte zero or old, per the spec), write-zeroes with and without
# NO_HOLE (aligned and unaligned), flush, FUA write and FUA zero, cache, a write seen on a
# second connection, and errors for requests past the end (libnbd's client-side checks
# off so the server sees them): read -> EINVAL, write -> ENOSPC or EINVAL.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdsh

start_server --export name=disk,backend=memory,size=64M

URI="$(uri disk)" TESTLIB="$ROOT/tests/lib" t 120 nbdsh -u "$(uri disk)" -c - <<'PY' || fail "nbdsh checks"
import errno, os, sys
sys.path.insert(0, os.environ["TESTLIB"])
from nbdtest import check, expect_errno, pattern

size = h.get_size()
check(size == 64 << 20, f"size {size}")
check(h.can_trim() and h.can_zero() and h.can_flush() and h.can_fua() and h.can_cache(),
      "a capability is missing")
MiB = 1 << 20

# Never-written areas of a memory export read as zeroes.
check(h.pread(MiB, 32 * MiB) == bytes(MiB), "fresh area is not zero")

# Write / read back.
data = pattern(4 * MiB, 1)
h.pwrite(data, 0)
check(h.pread(4 * MiB, 0) == data, "read-back after write differs")
model = bytearray(data)

def verify(what):
    got = h.pread(4 * MiB, 0)
    if got != bytes(model):
        first = next(i for i in range(len(got)) if got[i] != model[i])
        check(False, f"{what}: first difference at byte {first}")

# Aligned trim: the memory backend drops the pages, so they read as zeroes.
h.trim(256 * 1024, 128 * 1024)
model[128 * 1024:384 * 1024] = bytes(256 * 1024)
verify("aligned trim")

# Unaligned trim: the spec allows zeroes or the old data in the range; outside it nothing
# may change.
off, ln = 1 * MiB + 1000, 10000
old = bytes(model[off:off + ln])
h.trim(ln, off)
got = h.pread(4 * MiB, 0)
for i in range(ln):
    if got[off + i] not in (0, old[i]):
        check(False, f"unaligned trim: byte {off + i} is {got[off + i]}, neither 0 nor old")
model[off:off + ln] = got[off:off + ln]
verify("unaligned trim (outside the range)")

# Write-zeroes, plain and with NO_HOLE, aligned and not.
for off, ln, flags in ((512 * 1024, 64 * 1024, 0),
                       (640 * 1024, 64 * 1024, nbd.CMD_FLAG_NO_HOLE),
                       (2 * MiB + 123, 5000, 0),
                       (2 * MiB + 70000, 4097, nbd.CMD_FLAG_NO_HOLE),
                       (3 * MiB, 4096, nbd.CMD_FLAG_FUA)):
    h.zero(ln, off, flags)
    model[off:off + ln] = bytes(ln)
    verify(f"zero off={off} len={ln} flags={flags}")

# FUA write, flush, cache.
fua = pattern(64 * 1024, 2)
h.pwrite(fua, 3 * MiB + 8192, nbd.CMD_FLAG_FUA)
model[3 * MiB + 8192:3 * MiB + 8192 + len(fua)] = fua
verify("FUA write")
h.flush()
h.cache(MiB, 0)
verify("after flush and cache")

# A second connection (multi-conn) sees the first connection's flushed write.
h2 = nbd.NBD()
h2.connect_uri(os.environ["URI"])
check(h2.pread(4 * MiB, 0) == bytes(model), "second connection sees different data")
h2.pwrite(b"\xab" * 4096, 8 * MiB)
h2.flush()
h2.shutdown()
check(h.pread(4096, 8 * MiB) == b"\xab" * 4096, "first connection misses the second's write")

# Requests past the end, sent to the server anyway.
h.set_strict_mode(0)
expect_errno(nbd, "pread past the end", lambda: h.pread(8192, size - 4096), errno.EINVAL)
expect_errno(nbd, "pread at the end", lambda: h.pread(4096, size), errno.EINVAL)
expect_errno(nbd, "pwrite past the end", lambda: h.pwrite(b"y" * 8192, size - 4096),
             errno.ENOSPC, errno.EINVAL)
expect_errno(nbd, "zero past the end", lambda: h.zero(8192, size - 4096),
             errno.ENOSPC, errno.EINVAL)
expect_errno(nbd, "trim past the end", lambda: h.trim(8192, size - 4096),
             errno.ENOSPC, errno.EINVAL)
# ... and the connection is still in sync afterwards, with nothing changed.
verify("after the rejected requests")
check(h.pread(4096, size - 4096) == bytes(4096), "a rejected write changed the last block")
h.shutdown()
PY

stop_server
pass
