#!/usr/bin/env python3
"""Writes the hand-made seed corpus into tests/fuzz/corpus/<target>/.

The seeds are committed; rerun this only to change them. Each seed is a
well-formed message the fuzzer can mutate from, so it does not have to
discover the 64-bit magics on its own.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
IHAVEOPT = 0x49484156454F5054


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def request(flags, typ, cookie, offset, length):
    return struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, offset, length)


def view(size, tflags, max_length=32 << 20, err=5):
    return struct.pack(">QHIi", size, tflags, max_length, err)


def option(opt, data=b""):
    return struct.pack(">QII", IHAVEOPT, opt, len(data)) + data


def go_data(name, infos=()):
    b = name.encode()
    return (struct.pack(">I", len(b)) + b + struct.pack(">H", len(infos)) +
            b"".join(struct.pack(">H", i) for i in infos))


ALL_CAPS = 0x1 | 0x4 | 0x8 | 0x20 | 0x40 | 0x400
write("fuzz_request", "read", request(0, 0, 1, 0, 4096) + view(1 << 20, ALL_CAPS))
write("fuzz_request", "write_fua", request(1, 1, 2, 4096, 512) + view(1 << 20, ALL_CAPS))
write("fuzz_request", "write_ro", request(0, 1, 3, 0, 512) + view(1 << 20, 0x3))
write("fuzz_request", "flush", request(0, 3, 4, 0, 0) + view(1 << 20, ALL_CAPS))
write("fuzz_request", "trim_big", request(0, 4, 5, 0, 0xFFFFFFFF) + view(1 << 40, ALL_CAPS))
write("fuzz_request", "zeroes_nohole", request(2, 6, 6, 512, 512) + view(1 << 20, ALL_CAPS, err=28))
write("fuzz_request", "disc", request(0, 2, 7, 0, 0))
write("fuzz_request", "wrap", request(0, 0, 8, 0xFFFFFFFFFFFFFFFF, 1) + view(0xFFFFFFFFFFFFFFFF, 1))
write("fuzz_request", "bad_magic", b"\x67\x44\x66\x98" + bytes(24))

flags = struct.pack(">I", 3)
write("fuzz_handshake", "export_name", struct.pack(">I", 1) + option(1, b"disk0"))
write("fuzz_handshake", "export_name_default", flags + option(1))
write("fuzz_handshake", "go", flags + option(7, go_data("ro", (1, 2))))
write("fuzz_handshake", "info_then_go", flags + option(6, go_data("disk0", (3,))) + option(7, go_data("")))
write("fuzz_handshake", "list_abort", flags + option(3) + option(2))
write("fuzz_handshake", "unsupported", flags + option(8) + option(5) + option(10, go_data("base:allocation")) + option(1, b"ro"))
write("fuzz_handshake", "go_malformed", flags + option(7, b"\x00\x00\x00\x09x") + option(7, go_data("nope")))
