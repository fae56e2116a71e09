#!/bin/bash
# bench/nbd-peers.sh - rbd-nbdd's memory backend against nbdkit memory and qemu-nbd (raw
# file in /dev/shm) with fio --ioengine=nbd, in one interleaved run. Prints a markdown
# table and writes it to bench/results/nbd-peers-<date>.md (raw numbers in .json beside it,
# plots too: bench/plot.py, -iops.png, -p99.png, .data.json).
#
#   bench/nbd-peers.sh [--tcp] [--servers rbd-nbdd,nbdkit,qemu-nbd] [--runtime S]
#                      [--rounds N] [--numjobs N] [--size 1G] [--workers N]
#                      [--workloads randread,QD32,...] [--rbdnbd PATH]
#
# Environment equivalents: RUNTIME (default 10 s per run), ROUNDS (1), NUMJOBS (1 = one
# connection), SIZE, RBDNBD_WORKERS, WORKLOADS, SERVERS, RBDNBD.
# Workloads: 4k randread QD1/QD32, 4k randwrite QD1/QD32, 1M seq read QD8, 1M seq write QD8
# (6 x 3 servers x RUNTIME: about 3.5 minutes at the defaults, plus the prefill).
# Build first: cmake -S . -B build -G Ninja && ninja -C build
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
exec timeout --kill-after=30 "${BENCH_TIMEOUT:-7200}" /usr/bin/python3 \
  "$(dirname "$0")/nbd_peers.py" "$@"
