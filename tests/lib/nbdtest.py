"""Helpers for nbdsh scripts in tests/interop (import after sys.path has tests/lib)."""
import errno
import sys


def errname(e):
    """The errno name of an nbd.Error, whichever form this libnbd gives it in."""
    v = e.errno
    if isinstance(v, int):
        return errno.errorcode.get(v, str(v))
    return v or "?"


def expect_errno(nbd, what, fn, *wanted):
    """Run fn(); it must raise nbd.Error with one of the errno values in `wanted`."""
    names = [errno.errorcode[w] for w in wanted]
    try:
        fn()
    except nbd.Error as e:
        got = errname(e)
        if got not in names:
            die(f"{what}: errno {got} ({e.string}), expected {' or '.join(names)}")
        return got
    die(f"{what}: succeeded, expected {' or '.join(names)}")


def die(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        die(msg)


def pattern(size, seed):
    """Deterministic non-zero bytes, different for each seed."""
    block = bytes(((i * 131 + seed * 17) % 251) + 1 for i in range(4096))
    return (block * (size // 4096 + 1))[:size]
