#!/bin/bash
# tests/e2e/run-all.sh [PATTERN...] - run the end-to-end scenarios under a real kernel.
#
# Every tests/e2e/scenarios/*.sh (or those whose name contains one of the PATTERNs) runs in
# a guest, as root, with the host's / as a read-only root under a tmpfs overlay: user-mode
# Linux 6.1 (tests/e2e/uml/run.sh, one vCPU), and/or Debian's own 6.12 kernel under qemu TCG
# (tests/e2e/qemu/run.sh, two vCPUs, ublk_drv), as the scenario's header line
#   # e2e-kernel: uml | 6.12 | uml 6.12
# asks (default uml). A scenario run on both is reported twice, as NAME and NAME@6.12, with
# its logs in E2E_LOGS/NAME and E2E_LOGS/NAME@6.12; a PATTERN is matched against those names
# (map_resize runs both, map_resize@6.12 only the 6.12 one). E2E_KERNELS="uml 6.12" (the
# default) limits the kernels run. Scenarios with the same `# e2e-batch: NAME` header share one
# guest and one dev cluster (tests/e2e/batch.sh: a clean slate between them, each under its
# own bound and reported on its own); E2E_NO_BATCH=1 gives each scenario a guest of its own. A scenario exits 0 (pass), 77 (skip) or anything
# else (fail); 124 means it ran out of time, 125 that the guest died. With CI=true a skip
# counts as a failure. The last line is "N passed, N failed" (", N skipped" when any were).
# Exit: 0 all passed (or some skipped), 1 any failed, 77 all skipped.
#
# Settings (environment):
#   CSI_BIN         the CSI plugin for csi_*.sh (default build/csi/rbd-nbdd-csi)
#   RBDNBD_BIN      the daemon under test (default build/gateway/control/rbd-nbdd, relative
#                   to the repository root). When the default is missing it is built:
#                   cmake -S . -B build -G Ninja && ninja -C build rbd-nbdd
#   E2E_LOGS        where each scenario's files go (default build/e2e-logs): SCENARIO/
#                   console.log (the guest console: the scenario's own output), host.log,
#                   dmesg.txt, server.N.log, fio-*.json, timing.
#   E2E_TIMEOUT     default VM_TIMEOUT per scenario (300 s)
#   E2E_JOBS        guests to run at once (default 1). Each UML guest has one vCPU; on an
#                   idle 2-core host E2E_JOBS=2 nearly halves the wall time.
#   E2E_LOG_LEVEL, E2E_NBD_TIMEOUT  passed into the guest (see lib.sh)
#   VM_MEM          default guest RAM (2G)
#   E2E_KERNELS     the guest kinds to run ("uml 6.12"); a scenario asks for its own in its
#                   "# e2e-kernel:" header. The 6.12 kernel is fetched (apt-get download,
#                   never installed) by tests/e2e/qemu/fetch-kernel.sh into build/guest-kernel;
#                   when that or qemu is missing, the @6.12 runs are skipped (failed with CI=true)
# A scenario can ask for other VM settings with header lines such as
#   # e2e-vm: VM_MEM=3G VM_TIMEOUT=600
# (only VM_MEM, VM_TIMEOUT, VM_MODULES and VM_OVERLAY_SIZE are honoured).
# The dev cluster of a guest whose scenarios use one (cluster_up, csi_up) runs on the HOST,
# in a network namespace made for that guest, which reaches it through a tap device
# (tests/e2e/host_cluster.sh): it starts in ~1 s there instead of 12-55 s emulated, and
# serves I/O natively. A scenario that needs the cluster inside its guest (it signals the
# mon or the OSD) says "# e2e-cluster: guest", and its whole guest (batch) then has one
# there. E2E_HOST_CLUSTER=0 puts every guest's cluster inside the guest.
# Scenarios with the same "# e2e-batch: NAME" header line run one after another in ONE
# guest that shares one dev cluster (tests/e2e/batch.sh: a clean slate between them);
# each is still reported on its own. A "# e2e-batch@6.12: NAME" line overrides the batch
# for the 6.12 runs (their guests are per kernel in any case). E2E_NO_BATCH=1 gives every
# scenario its own guest.
set -uo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
. "$HERE/host_cluster.sh"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

case "${1:-}" in
  -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
PATTERNS=("$@")

RBDNBD_BIN=${RBDNBD_BIN:-build/gateway/control/rbd-nbdd}
case "$RBDNBD_BIN" in /*) ;; *) RBDNBD_BIN=$ROOT/$RBDNBD_BIN ;; esac
export RBDNBD_BIN
# The CSI plugin for csi_*.sh (tests/e2e/lib_csi.sh), forwarded into the guests.
CSI_BIN=${CSI_BIN:-build/csi/rbd-nbdd-csi}
case "$CSI_BIN" in /*) ;; *) CSI_BIN=$ROOT/$CSI_BIN ;; esac
export CSI_BIN
E2E_LOGS=${E2E_LOGS:-$ROOT/build/e2e-logs}
mkdir -p "$E2E_LOGS"
HC_REGISTRY=$E2E_LOGS/host-clusters   # every host cluster this run made (host_cluster.sh)
: > "$HC_REGISTRY"
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
export E2E_LOG_LEVEL=${E2E_LOG_LEVEL:-debug}
export E2E_NBD_TIMEOUT=${E2E_NBD_TIMEOUT:-60}
export CI=${CI:-false}

PASSED=0 FAILED=0 SKIPPED=0
RESULTS=()
T0=$SECONDS
echo "e2e: $(date -u +%FT%TZ), $(nproc) host cores, CI=$CI, daemon $RBDNBD_BIN"

# ---- prerequisites: a missing one fails (or skips) every scenario, loudly ---------------
PREREQ=
if [ ! -x "$RBDNBD_BIN" ] && [ "$RBDNBD_BIN" = "$ROOT/build/gateway/control/rbd-nbdd" ]; then
  echo "e2e: building rbd-nbdd (not found at $RBDNBD_BIN)"
  mkdir -p "$ROOT/build"
  if ! { [ -f "$ROOT/build/build.ninja" ] || cmake -S "$ROOT" -B "$ROOT/build" -G Ninja; } \
       > "$ROOT/build/e2e-build.log" 2>&1 \
     || ! ninja -C "$ROOT/build" rbd-nbdd >> "$ROOT/build/e2e-build.log" 2>&1; then
    tail -n 30 "$ROOT/build/e2e-build.log"
    PREREQ="the build of rbd-nbdd failed (build/e2e-build.log)"
  fi
fi
[ -n "$PREREQ" ] || [ -x "$RBDNBD_BIN" ] || PREREQ="no rbd-nbdd at $RBDNBD_BIN"
[ -n "$PREREQ" ] || [ -x "${VM_UML:-/usr/bin/linux.uml}" ] \
  || PREREQ="user-mode-linux is not installed (apt-get install user-mode-linux)"
[ "$(id -u)" = 0 ] || PREREQ=${PREREQ:-"must run as root (the guest's root is the host's /)"}
E2E_KERNELS=${E2E_KERNELS:-uml 6.12}

# ---- the scenarios -------------------------------------------------------------------------
# kernels_of FILE : the guest kinds its "# e2e-kernel:" header asks for (default uml).
kernels_of() {
  local k
  k=$(sed -n 's/^# e2e-kernel:[[:space:]]*//p' "$1" | head -n 1)
  echo "${k:-uml}"
}

# A run is "FILE@KERNEL"; its name is NAME for uml and NAME@KERNEL for another kernel.
run_name() {
  local f=${1%@*} k=${1##*@}
  if [ "$k" = uml ]; then basename "$f" .sh; else echo "$(basename "$f" .sh)@$k"; fi
}

SCENARIOS=()
NEED_612=0
for f in "$HERE"/scenarios/*.sh; do
  [ -e "$f" ] || continue
  for k in $(kernels_of "$f"); do
    case " $E2E_KERNELS " in *" $k "*) ;; *) continue ;; esac
    case "$k" in uml|6.12) ;; *) echo "e2e: $(basename "$f"): unknown kernel '$k' in its e2e-kernel header"; continue ;; esac
    n=$(run_name "$f@$k")
    if [ ${#PATTERNS[@]} -gt 0 ]; then
      keep=0
      for p in "${PATTERNS[@]}"; do [[ "$n" == *"$p"* ]] && keep=1; done
      [ "$keep" = 1 ] || continue
    fi
    SCENARIOS+=("$f@$k")
    [ "$k" = uml ] || NEED_612=1
  done
done
[ ${#SCENARIOS[@]} -gt 0 ] || { echo "e2e: no scenario matches: ${PATTERNS[*]}"; echo "0 passed, 1 failed"; exit 1; }

# The 6.12 guest's own prerequisites: qemu, busybox-static and the kernel (fetched once).
# A missing one skips (CI: fails) the @6.12 runs only, loudly.
PREREQ_612=
if [ -z "$PREREQ" ] && [ "$NEED_612" = 1 ]; then
  if ! command -v qemu-system-x86_64 >/dev/null; then
    PREREQ_612="qemu is not installed (apt-get install qemu-system-x86)"
  elif [[ "$(LC_ALL=C ldd /bin/busybox 2>&1)" != *"not a dynamic"* ]]; then
    PREREQ_612="no static busybox (apt-get install busybox-static)"
  elif mkdir -p "$E2E_LOGS" && ! kv=$(bash "$HERE/qemu/fetch-kernel.sh" 2> "$E2E_LOGS/fetch-kernel.log"); then
    tail -n 5 "$E2E_LOGS/fetch-kernel.log"
    PREREQ_612="the 6.12 kernel could not be fetched ($E2E_LOGS/fetch-kernel.log)"
  else
    echo "e2e: 6.12 guest kernel $kv (build/guest-kernel)"
  fi
fi

# vm_settings FILE : the VM_* assignments from its "# e2e-vm:" header lines.
vm_settings() {
  sed -n 's/^# e2e-vm:[[:space:]]*//p' "$1" | tr ' ' '\n' \
    | grep -E '^(VM_MEM|VM_TIMEOUT|VM_MODULES|VM_OVERLAY_SIZE)=[^[:space:]]*$' || true
}

# batch_of FILE KERNEL : its batch for that kernel ("# e2e-batch@KERNEL:", else
# "# e2e-batch:"), empty for a scenario with a guest of its own.
batch_of() {
  [ "${E2E_NO_BATCH:-0}" = 1 ] && return 0
  local b=
  [ "$2" = uml ] || b=$(sed -n "s/^# e2e-batch@$2:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p" "$1" | head -n 1)
  [ -n "$b" ] || b=$(sed -n 's/^# e2e-batch:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' "$1" | head -n 1)
  echo "$b"
}

# The units of work, one guest each: a run "FILE@KERNEL", or "batch:NAME@KERNEL" for the
# runs of a batch on that kernel (in name order, in BATCH_FILES[NAME@KERNEL]).
UNITS=()
declare -A BATCH_FILES=()
for r in "${SCENARIOS[@]}"; do
  b=$(batch_of "${r%@*}" "${r##*@}")
  if [ -z "$b" ]; then UNITS+=("$r"); continue; fi
  b=$b@${r##*@}
  [ -n "${BATCH_FILES[$b]:-}" ] || UNITS+=("batch:$b")
  BATCH_FILES[$b]="${BATCH_FILES[$b]:-} $r"
done
# The 6.12 guests first: each is one long unit (its cluster runs emulated), so with
# E2E_JOBS=2 the UML batches fill the other slot meanwhile.
mapfile -t UNITS < <(printf '%s\n' "${UNITS[@]}" | awk '/@6\.12$/ {print; next} {rest[n++]=$0} END {for (i = 0; i < n; i++) print rest[i]}')

# cluster_of UNIT : "host" when its guest gets a host cluster (host_cluster.sh): some
# scenario of it uses a cluster and none asks for it inside the guest; else empty.
cluster_of() {
  local files
  [ "${E2E_HOST_CLUSTER:-1}" = 0 ] && return 0
  mapfile -t files < <(unit_files "$1" | sed 's/@[^@]*$//')
  grep -q '^# e2e-cluster:[[:space:]]*guest' "${files[@]}" && return 0
  grep -qE '^[[:space:]]*(cluster_up|csi_up)\b' "${files[@]}" && echo host
  return 0
}

# with_cluster UNIT ID OUT CMD... : CMD (a boot_guest) with the unit's host cluster, when it
# gets one: up before, its settings in CMD's environment, down after (also when CMD failed).
# A host cluster that cannot be made leaves the cluster to the guest, with a warning.
with_cluster() {
  local unit=$1 id=$2 out=$3 rc
  shift 3
  if [ "$(cluster_of "$unit")" != host ]; then "$@"; return; fi
  if ! host_cluster_up "$id" "$out"; then
    echo "e2e: WARNING: no host cluster for $unit (its guest starts its own): $(tail -n 3 "$out/host-cluster.log" | tr '\n' ' ')"
    "$@"; return
  fi
  VM_NETNS=$HC_NETNS VM_TAP=$HC_TAP VM_GUEST_ADDR=$HC_GUEST_ADDR E2E_HOST_CLUSTER_DIR=$HC_DIR "$@"
  rc=$?
  host_cluster_down "$out"
  return "$rc"
}

# unit_files UNIT : the runs ("FILE@KERNEL") of a unit, one per line.
unit_files() {
  case $1 in
    batch:*) printf '%s\n' ${BATCH_FILES[${1#batch:}]} ;;
    *) echo "$1" ;;
  esac
}

# log_dir RUN : where a run's logs go (E2E_LOGS/NAME or E2E_LOGS/NAME@KERNEL).
log_dir() { echo "$E2E_LOGS/$(run_name "$1")"; }

record() {  # record VERDICT NAME SECS DETAIL
  RESULTS+=("$(printf '%-5s %-34s %6ss  %s' "$1" "$2" "$3" "$4")")
}

# run_unit UNIT N : a scenario's own guest (run_one), or one guest for a batch (run_batch);
# N (its place in the list) names its host cluster's namespace.
run_unit() {
  UNIT_ID=$$u$2
  case $1 in
    batch:*) run_batch "${1#batch:}" ;;
    *) run_one "$1" ;;
  esac
}

# run_batch NAME : boot one guest for the batch's scenarios (tests/e2e/batch.sh), then give
# each scenario its own log directory and result, as run_one would.
run_batch() {
  local b=$1 bout f name out rc t secs=120 k=${1##*@}
  local -a runs bounded=() extra=()
  bout=$E2E_LOGS/batch-$b
  [ "$k" != uml ] || bout=$E2E_LOGS/batch-${b%@*}
  mapfile -t runs < <(unit_files "batch:$b")
  rm -rf "$bout"
  mkdir -p "$bout"
  for r in "${runs[@]}"; do   # each scenario's own bound; the guest's is their sum
    local s
    f=${r%@*}
    s=$(vm_settings "$f" | sed -n 's/^VM_TIMEOUT=//p')
    s=${s:-$E2E_TIMEOUT}
    secs=$((secs + s))
    bounded+=("$s:$f")
    mapfile -t -O "${#extra[@]}" extra < <(vm_settings "$f" | grep -v '^VM_TIMEOUT=')
  done
  t=$SECONDS
  with_cluster "batch:$b" "$UNIT_ID" "$bout" \
    boot_guest "$k" "$bout" "${extra[@]}" VM_TIMEOUT="$secs" -- "$HERE/batch.sh" "${bounded[@]}"
  rc=$?
  for r in "${runs[@]}"; do
    f=${r%@*}
    name=$(basename "$f" .sh)
    out=$(log_dir "$r")
    rm -rf "$out"
    if [ -d "$bout/$name" ]; then mv "$bout/$name" "$out"; else mkdir -p "$out"; fi
    cp "$bout/timing" "$out/timing" 2>/dev/null
    cp "$bout/host.log" "$out/host.log"
    # A scenario the guest never finished: the guest's own verdict (124 timeout, 125 died).
    [ -s "$out/result" ] || echo "$([ "$rc" = 0 ] && echo 125 || echo "$rc") $((SECONDS - t))" > "$out/result"
    [ -s "$out/console.log" ] || cp "$bout/console.log" "$out/console.log" 2>/dev/null
  done
}

# run_one FILE@KERNEL : boot a guest for one scenario; leaves "RC SECONDS" in its result file.
run_one() {
  local f=${1%@*} k=${1##*@} out t rc
  out=$(log_dir "$1")
  rm -rf "$out"
  mkdir -p "$out"
  local -a extra
  mapfile -t extra < <(vm_settings "$f")
  t=$SECONDS
  with_cluster "$1" "$UNIT_ID" "$out" boot_guest "$k" "$out" "${extra[@]}" -- "$f"
  rc=$?
  echo "$rc $((SECONDS - t))" > "$out/result"
}

# boot_guest KERNEL OUT [VM_X=V...] -- SCRIPT [ARGS...] : one guest (uml/run.sh, or
# qemu/run.sh for 6.12) running SCRIPT, its files in OUT; the settings override the defaults
# (later ones win). Waits for the guest and returns its exit code; a TERM to this subshell
# ends the guest.
boot_guest() {
  local runner=$HERE/uml/run.sh out=$2 rp rc
  [ "$1" = uml ] || runner=$HERE/qemu/run.sh
  shift 2
  local -a settings=()
  while [ "$1" != -- ]; do settings+=("$1"); shift; done
  shift
  env VM_MEM="${VM_MEM:-2G}" VM_TIMEOUT="$E2E_TIMEOUT" "${settings[@]}" VM_OUT="$out" VM_QUIET=1 \
      VM_ENV="RBDNBD_BIN CSI_BIN E2E_LOG_LEVEL E2E_NBD_TIMEOUT CI E2E_HOST_CLUSTER_DIR" \
      "$runner" "$@" > "$out/host.log" 2>&1 < /dev/null &
  rp=$!
  trap 'kill -TERM $rp 2>/dev/null' TERM   # run.sh ends its guest on TERM
  while :; do
    wait "$rp"; rc=$?
    kill -0 "$rp" 2>/dev/null || break
  done
  return "$rc"
}

# prereq_of RUN : why RUN cannot run at all (empty when it can).
prereq_of() {
  if [ -n "$PREREQ" ]; then echo "$PREREQ"
  elif [ "${1##*@}" != uml ]; then echo "$PREREQ_612"
  fi
}

# report RUN : print and count the verdict of a finished run (FILE@KERNEL).
report() {
  local name out rc dt boot detail verdict pre
  name=$(run_name "$1")
  out=$(log_dir "$1")
  pre=$(prereq_of "$1")
  if [ -n "$pre" ]; then
    rc=77 dt=0
  else
    read -r rc dt < "$out/result" || { rc=125; dt=0; }
    boot=$(sed -n 's/^boot=//p' "$out/timing" 2>/dev/null)
  fi
  detail="boot ${boot:-?}s"
  if [ "$rc" = 0 ]; then
    verdict=PASS; PASSED=$((PASSED + 1))
  elif [ "$rc" = 77 ] && [ "$CI" != true ]; then
    verdict=SKIP; SKIPPED=$((SKIPPED + 1))
  else
    verdict=FAIL; FAILED=$((FAILED + 1))
  fi
  case "$rc" in
    0) ;;
    77) detail="skipped${pre:+: $pre}"
        [ "$CI" = true ] && detail="$detail (a skip fails when CI=true)" ;;
    124) detail="timed out" ;;
    125) detail="the guest died" ;;
    *) detail="exit $rc" ;;
  esac
  printf '=== %-34s %s (%ss; %s)\n' "$name" "$verdict" "$dt" "$detail"
  if [ "$verdict" != PASS ] && [ -z "$pre" ]; then
    echo "--- last 40 lines of $out/console.log"
    grep -vE '^(SELinux:|mmapper_init|Failed to initialize ubd)' "$out/console.log" 2>/dev/null \
      | tail -n 40 | sed 's/^/    /'
    tail -n 5 "$out/host.log" 2>/dev/null | sed 's/^/    host: /'
    echo "--- logs: $out"
  fi
  record "$verdict" "$name" "$dt" "$detail"
}

JOBS=${E2E_JOBS:-1}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || JOBS=1
declare -A PID_OF=()
# On TERM/INT, tell every running uml/run.sh to stop: each ends its own guest.
stop_all() {
  trap - TERM INT
  echo "e2e: interrupted, stopping ${#PID_OF[@]} guest(s)"
  for f in "${!PID_OF[@]}"; do kill -TERM "${PID_OF[$f]}" 2>/dev/null; done
  wait
  host_cluster_sweep
  exit 130
}
if [ -n "$PREREQ" ]; then
  for f in "${SCENARIOS[@]}"; do report "$f"; done
else
  if [ -n "$PREREQ_612" ]; then   # reported at once; the other units still run
    echo "e2e: the 6.12 runs cannot run: $PREREQ_612"
    keep=()
    for u in "${UNITS[@]}"; do
      case $u in
        *@uml) keep+=("$u") ;;
        *) while read -r f; do report "$f"; done < <(unit_files "$u") ;;
      esac
    done
    UNITS=("${keep[@]}")
  fi
  trap stop_all TERM INT
  # Up to JOBS guests at once (in the background even when JOBS=1, so that a signal is
  # handled at once); each unit's scenarios are reported as soon as its guest finishes.
  pending=("${UNITS[@]}")
  n_started=0
  while [ ${#pending[@]} -gt 0 ] || [ ${#PID_OF[@]} -gt 0 ]; do
    while [ ${#pending[@]} -gt 0 ] && [ ${#PID_OF[@]} -lt "$JOBS" ]; do
      n_started=$((n_started + 1))
      run_unit "${pending[0]}" "$n_started" &
      PID_OF[${pending[0]}]=$!
      pending=("${pending[@]:1}")
    done
    wait -n
    for u in "${!PID_OF[@]}"; do
      if ! kill -0 "${PID_OF[$u]}" 2>/dev/null; then
        wait "${PID_OF[$u]}"
        unset "PID_OF[$u]"
        while read -r f; do report "$f"; done < <(unit_files "$u")
      fi
    done
  done
  trap - TERM INT
  host_cluster_sweep   # nothing is left unless a unit's subshell was killed
fi

echo
echo "=== e2e summary ($((SECONDS - T0))s; logs in $E2E_LOGS)"
printf '  %s\n' "${RESULTS[@]}"
if [ "$SKIPPED" -gt 0 ]; then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ] || exit 1
[ "$PASSED" -gt 0 ] || exit 77   # everything skipped (only possible when CI is not true)
