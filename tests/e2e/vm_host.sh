# shellcheck shell=bash
# tests/e2e/vm_host.sh - sourced on the HOST by uml/run.sh and qemu/run.sh: the part of
# running a guest that does not depend on the emulator. One copy of it for both kinds.
#
#   vm_follow PID OUT      echo OUT/console.log as it grows (unless VM_QUIET=1) and wait
#                          until PID, the emulator under timeout(1), has exited; its exit
#                          status is left in VM_RC.
#   vm_result NAME OUT T0 TMO  add wall=SECONDS (since T0, a `date +%s.%N`) to OUT/timing, log
#                          the wall and boot times, then exit as the guest's job did: its
#                          OUT/rc, or 124 when the emulator timed out (after TMO s), or 125 (guest died;
#                          with VM_QUIET=1 the console's last 30 lines go to stderr).
#                          VM_RC is the emulator's exit status; VM_KVER, when set, is logged.

vm_follow() {
  local pid=$1 out=$2 tailpid=
  if [ "${VM_QUIET:-0}" != 1 ]; then
    tail -n +1 -f --pid="$pid" "$out/console.log" &
    tailpid=$!
  fi
  VM_RC=0
  while :; do
    wait "$pid"; VM_RC=$?
    # wait returns >128 when a trapped signal interrupted it; the child may still be alive.
    kill -0 "$pid" 2>/dev/null || break
  done
  [ -n "$tailpid" ] && wait "$tailpid" 2>/dev/null
  return 0
}

vm_result() {
  local name=$1 out=$2 t0=$3 tmo=$4 total boot rc
  total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  boot=$(sed -n 's/^boot=//p' "$out/timing" 2>/dev/null)
  echo "$name: wall ${total}s, guest boot ${boot:-?}s (uptime at script start)${VM_KVER:+, kernel $VM_KVER}" >&2
  echo "wall=$total" >> "$out/timing"
  if [ -s "$out/rc" ]; then
    rc=$(cat "$out/rc")
    [[ "$rc" =~ ^[0-9]+$ ]] || { echo "$name: garbage rc file: $rc" >&2; exit 125; }
    exit "$rc"
  fi
  if [ "$VM_RC" = 124 ] || [ "$VM_RC" = 137 ]; then
    echo "$name: timed out after ${tmo}s (the guest did not report an exit code)" >&2
    exit 124
  fi
  echo "$name: guest died (emulator rc=$VM_RC) without reporting an exit code" >&2
  if [ "${VM_QUIET:-0}" = 1 ]; then
    echo "$name: ---- last 30 lines of the guest console ----" >&2
    tail -n 30 "$out/console.log" >&2
  fi
  exit 125
}
