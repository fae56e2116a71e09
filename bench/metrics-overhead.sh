#!/bin/bash
# bench/metrics-overhead.sh - what `serve --metrics-address` costs: 4k randread QD32 IOPS
# with metrics off vs on (a scrape every second), interleaved rounds, median ratio; and
# the time of a /metrics scrape with 64 exports (256 live connections). Prints a markdown
# table and writes it to bench/results/metrics-overhead-<date>.md, with its PNG plots beside
# it (-iops.png: on vs off per round and the median, on/off labels, the 0.98 target; -cpu.png:
# server CPU per request; -scrape.png: scrape ms against the 50 ms target; via bench/lib_plot.sh,
# never failing the run) and <date>.data.json. Details: bench/metrics_overhead.py (--help).
#
#   bench/metrics-overhead.sh [--rounds N] [--runtime S] [--size 1G] [--workers N]
#                             [--exports 64] [--connections 4] [--scrapes 50] [--rbdnbd PATH]
#
# Environment equivalents: ROUNDS (6), RUNTIME (10 s), SIZE, RBDNBD_WORKERS (1), RBDNBD.
# About 2 x ROUNDS x (RUNTIME + 2) s: 2.5 minutes at the defaults.
# Build first: cmake -S . -B build -G Ninja && ninja -C build rbd-nbdd
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
exec timeout --kill-after=30 "${BENCH_TIMEOUT:-3600}" /usr/bin/python3 \
  "$(dirname "$0")/metrics_overhead.py" "$@"
