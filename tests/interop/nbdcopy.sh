#!/bin/bash
# nbdcopy round trip of 256 MiB of random data: tmpfs file -> memory export -> tmpfs file
# (multi-conn: nbdcopy opens up to 4 connections when CAN_MULTI_CONN is advertised), and
# the SHA-256 must match both ways.
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdcopy
MIB=${NBDCOPY_MIB:-256}

make_scratch
random_file "$SCRATCH/src" "$MIB"
start_server --export "name=disk,backend=memory,size=${MIB}M"

t 300 nbdcopy "$SCRATCH/src" "$(uri disk)" || fail "nbdcopy file -> server failed"
t 300 nbdcopy "$(uri disk)" "$SCRATCH/dst" || fail "nbdcopy server -> file failed"
a=$(sha256 "$SCRATCH/src"); b=$(sha256 "$SCRATCH/dst")
[ "$a" = "$b" ] || fail "sha256 differs: sent $a, read back $b"
# Once more over a single connection with synchronous requests (a different client path).
t 300 nbdcopy --connections=1 --synchronous "$(uri disk)" "$SCRATCH/dst1" || fail "nbdcopy -C1 --synchronous failed"
c=$(sha256 "$SCRATCH/dst1")
[ "$a" = "$c" ] || fail "sha256 differs on the single-connection read: $c"

stop_server
pass "$MIB MiB, sha256 $a"
