#!/bin/bash
# tests/e2e/batch.sh SECS:SCENARIO... - run several scenarios one after another in ONE guest,
# sharing one dev cluster, each bounded by its SECS (run-all.sh passes each scenario's
# "# e2e-vm: VM_TIMEOUT" header, else E2E_TIMEOUT). Runs INSIDE the guest, as its job
# (run-all.sh starts it for the scenarios with the same "# e2e-batch: NAME" header line).
#
# Why: in the 1-vCPU UML guest a boot costs ~12-20 s and the memstore dev cluster
# ~20-55 s (every exec is slow there); paying them once per batch instead of once per
# scenario is most of the e2e wall time saved.
#
# Isolation: before each scenario the guest is put back to a clean slate: the per-scenario
# paths (guest_paths.sh: E2E_SCENARIO_PATHS) are removed, every process a scenario left
# behind is killed, the kernel log is cleared (each scenario checks its own dmesg) and the
# nbd module (and ublk_drv in the 6.12 guest) is unloaded (each scenario loads it as it
# needs). Only the cluster and the
# private binary copies stay: lib_map.sh's cluster_up reuses the cluster when E2E_BATCH is
# set (images are named per scenario), lib.sh's private_copy an unchanged binary.
#
# Output: for each scenario, $VM_RUN_OUT/NAME/ holds what a single-scenario guest's
# VM_RUN_OUT would (console.log, the scenario's logs) plus `result` ("RC SECONDS").
set -uo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export E2E_BATCH=1
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
OUT=${VM_RUN_OUT:?batch.sh runs inside the guest (VM_RUN_OUT is not set)}
. "$HERE/guest_paths.sh"

say() { echo "[batch] $*"; }
uptime_s() { local u _; read -r u _ < /proc/uptime; echo "${u%.*}"; }

# clean_slate : what one scenario left must not decide the next one's result.
clean_slate() {
  local p m
  for p in $(pgrep -f -d ' ' "$E2E_BIN_DIR/|nbd-client|fio |csi_client.py" 2>/dev/null); do
    [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
  done
  # mounts under any per-scenario path, deepest first
  for m in $(awk '{print $2}' /proc/mounts | sort -r); do
    for p in "${E2E_SCENARIO_PATHS[@]}"; do
      [[ "$m" == "$p" || "$m" == "$p"/* ]] && { umount -l "$m" 2>/dev/null; break; }
    done
  done
  rm -rf "${E2E_SCENARIO_PATHS[@]}"
  dmesg -C
  rmmod nbd 2>/dev/null
  [ -d /sys/module/ublk_drv ] && rmmod ublk_drv 2>/dev/null
  return 0
}

say "$# scenario(s) in one guest: ${*#*:}"
for arg in "$@"; do
  limit=${arg%%:*} f=${arg#*:}
  name=$(basename "$f" .sh)
  mkdir -p "$OUT/$name"
  clean_slate
  t0=$(uptime_s)
  say "--- $name (bound ${limit}s)"
  VM_RUN_OUT=$OUT/$name timeout -k 15 "$limit" bash "$f" > "$OUT/$name/console.log" 2>&1 < /dev/null
  rc=$?
  dt=$(( $(uptime_s) - t0 ))
  [ "$rc" = 137 ] && [ "$dt" -ge "$limit" ] && rc=124
  echo "$rc $dt" > "$OUT/$name/result"
  say "$name: exit $rc after ${dt}s"
done
clean_slate
cluster_teardown "$OUT"   # the shared cluster: the end of its logs kept with the batch's
exit 0
