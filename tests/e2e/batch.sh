#!/bin/bash
# tests/e2e/batch.sh SCENARIO... - run several scenarios one after another in ONE guest,
# sharing one dev cluster. Runs INSIDE the guest, as its job (run-all.sh starts it for the
# scenarios with the same "# e2e-batch: NAME" header line).
#
# Why: in the 1-vCPU UML guest a boot costs ~12-20 s and the memstore dev cluster
# ~20-55 s (every exec is slow there); paying them once per batch instead of once per
# scenario is most of the e2e wall time saved.
#
# Isolation: before each scenario the guest is put back to a clean slate: the per-scenario
# paths (daemon socket and state, CSI dirs, /run/e2e) are removed, every process a
# scenario left behind is killed, the kernel log is cleared (each scenario checks its own
# dmesg) and the nbd module is unloaded (each scenario loads it as it needs). Only the
# cluster stays: lib_map.sh's cluster_up reuses it when E2E_BATCH is set, and images are
# named per scenario. Each scenario runs in its own bash, bounded by its own VM_TIMEOUT
# header (default 300 s).
#
# Output: for each scenario, $VM_RUN_OUT/NAME/ holds what a single-scenario guest's
# VM_RUN_OUT would (console.log, the scenario's logs) plus `result` ("RC SECONDS").
set -uo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export E2E_BATCH=1
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
OUT=${VM_RUN_OUT:?batch.sh runs inside the guest (VM_RUN_OUT is not set)}

say() { echo "[batch] $*"; }
uptime_s() { local u _; read -r u _ < /proc/uptime; echo "${u%.*}"; }

# clean_slate : what one scenario left must not decide the next one's result.
clean_slate() {
  local p
  for p in $(pgrep -f -d ' ' '/run/e2e-bin/|nbd-client|fio |csi_client.py' 2>/dev/null); do
    [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
  done
  grep -E ' (/var/lib/kubelet|/run/e2e|/mnt/e2e)[^ ]* ' /proc/mounts | awk '{print $2}' | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf /run/e2e /run/rbdnbdd.sock /run/rbdnbdd-state /run/csi /run/csi-state /var/lib/kubelet \
    /run/nbd.sock /var/tmp/e2e-disk.img
  dmesg -C
  rmmod nbd 2>/dev/null
  return 0
}

# the scenario's own bound: its "# e2e-vm: VM_TIMEOUT=N" header, else 300 s
timeout_of() {
  local t
  t=$(sed -n 's/^# e2e-vm:.*VM_TIMEOUT=\([0-9]*\).*/\1/p' "$1" | head -n 1)
  echo "${t:-300}"
}

say "$# scenario(s) in one guest: $*"
for f in "$@"; do
  name=$(basename "$f" .sh)
  mkdir -p "$OUT/$name"
  clean_slate
  t0=$(uptime_s)
  limit=$(timeout_of "$f")
  say "--- $name (bound ${limit}s)"
  VM_RUN_OUT=$OUT/$name timeout -k 15 "$limit" bash "$f" > "$OUT/$name/console.log" 2>&1 < /dev/null
  rc=$?
  dt=$(( $(uptime_s) - t0 ))
  [ "$rc" = 137 ] && [ "$dt" -ge "$limit" ] && rc=124
  echo "$rc $dt" > "$OUT/$name/result"
  say "$name: exit $rc after ${dt}s"
done
clean_slate

# The shared cluster: keep the end of its logs, then take it down.
if [ -d /run/cluster ]; then
  mkdir -p "$OUT/ceph-log"
  for l in /run/cluster/log/*; do [ -f "$l" ] && tail -n 2000 "$l" > "$OUT/ceph-log/$(basename "$l")"; done
  timeout 60 bash "$HERE/../../deploy/dev-cluster.sh" wipe /run/cluster > /dev/null 2>&1
fi
exit 0
