#!/bin/bash
# bench/lib_plot.sh - sourced by the bench scripts: bench_plot RESULT draws the PNG plots
# beside a result (bench/plot.py: RESULT-iops.png, -p99.png, ... and RESULT.data.json).
# When the script wrote RESULT.data.json itself (full precision), that is what gets plotted.
# It never fails and never changes the caller's exit status: a missing matplotlib or a
# plotting error prints a warning, and the markdown table stays as it was written.
bench_plot() {
  local result=$1 rc=0 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [ ! -s "$result" ]; then
    printf '[bench] WARNING: no %s to plot\n' "$result" >&2
    return 0
  fi
  local input=$result   # the full-precision rows, when the script wrote them beside its table
  [ "${result%.md}" != "$result" ] && [ -s "${result%.md}.data.json" ] && input=${result%.md}.data.json
  timeout --kill-after=10 "${BENCH_PLOT_TIMEOUT:-120}" /usr/bin/python3 "$here/plot.py" "$input" || rc=$?
  case $rc in
    0) ;;
    3) printf '[bench] WARNING: no plots: matplotlib is missing (apt-get install python3-matplotlib); the table is in %s\n' "$result" >&2 ;;
    *) printf '[bench] WARNING: plotting %s failed (exit %s); the table is intact\n' "$result" "$rc" >&2 ;;
  esac
  return 0
}
