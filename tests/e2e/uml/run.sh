#!/bin/bash
# tests/e2e/uml/run.sh SCRIPT [ARGS...] - run SCRIPT as root inside a fresh user-mode Linux
# guest (Debian's user-mode-linux package, kernel 6.1) and exit with its exit code.
#
# The guest's root is the host's / through hostfs, read-only, under a tmpfs overlay: every
# host binary (rbd-nbdd, nbd-client, fio, ceph) is there, and nothing the guest writes
# reaches the host except in the directories listed in VM_RW_DIRS and the control dir.
#
# Exit codes: SCRIPT's own; 124 when VM_TIMEOUT ran out (the in-guest timer fires first,
# so the guest still saves dmesg and a blocked-task dump); 125 when the guest died without
# reporting one (a panic, UML killed on the host side, a broken init).
#
# Settings (environment):
#   VM_MEM=2G        guest RAM. UML backs it with a sparse file in VM_TMPDIR.
#   VM_TIMEOUT=600   seconds for the whole run, boot and shutdown included.
#   VM_MODULES=""    modules to modprobe before SCRIPT starts, space or comma separated.
#                    (Modules that need parameters, e.g. nbd nbds_max=16, are better loaded
#                    by the script: tests/e2e/lib.sh has helpers.)
#   VM_RW_DIRS=""    host directories, colon separated, mounted read-write at the same path.
#   VM_ENV=""        variables to pass into the guest, space separated: NAME (its current
#                    value here) or NAME=VALUE.
#   VM_OUT=""        host directory to keep the run's files in (created; else a temp dir,
#                    removed at exit): console.log, dmesg.log, rc, timing, job.sh, and
#                    whatever the script copies to $VM_RUN_OUT inside the guest.
#   VM_OVERLAY_SIZE=1g  size limit of the tmpfs under the overlay (guest RAM, not host).
#   VM_TMPDIR=/dev/shm  where UML keeps its RAM file (must be tmpfs: on disk it crawls).
#   VM_UML=/usr/bin/linux.uml
#   VM_QUIET=1       do not echo the guest console to stdout (it still goes to console.log).
#   VM_NETNS, VM_TAP, VM_GUEST_ADDR  give the guest a NIC (eth0, UML's tuntap transport) on
#                    tap device VM_TAP of network namespace VM_NETNS (both made by the
#                    caller; UML runs in that namespace), configured as VM_GUEST_ADDR
#                    (ADDR/PREFIX). Without them the guest has loopback only.
#
# Inside the guest SCRIPT sees: cwd = the caller's cwd, PATH with /usr/sbin first,
# VM_GUEST=1, VM_RUN_OUT = the control dir (read-write, ends up in VM_OUT).
set -uo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$HERE/../vm_host.sh"   # vm_follow, vm_result
die() { echo "uml/run.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 SCRIPT [ARGS...]"
SCRIPT=$(readlink -f "$1") || die "no such script: $1"
shift
[ -f "$SCRIPT" ] || die "no such script: $SCRIPT"

UML=${VM_UML:-/usr/bin/linux.uml}
[ -x "$UML" ] || die "$UML is missing (apt-get install user-mode-linux)"
MEM=${VM_MEM:-2G}
TMO=${VM_TIMEOUT:-600}
OVL=${VM_OVERLAY_SIZE:-1g}
RAMDIR=${VM_TMPDIR:-/dev/shm}
[[ "$TMO" =~ ^[0-9]+$ ]] && [ "$TMO" -ge 10 ] || die "VM_TIMEOUT must be a number of seconds >= 10"

# The kernel command line is split on spaces: paths with spaces cannot be passed.
for p in "$HERE" "$SCRIPT"; do
  case "$p" in *[[:space:]]*) die "path with whitespace not supported: $p" ;; esac
done

if [ -n "${VM_OUT:-}" ]; then
  mkdir -p "$VM_OUT" || die "cannot create VM_OUT=$VM_OUT"
  OUT=$(readlink -f "$VM_OUT")
  rm -f "$OUT"/{rc,rc.tmp,console.log,dmesg.log,ps.log,timing,job.sh,rwdirs,modules,timeout}
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/e2e-uml.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi
case "$OUT" in *[[:space:]]*) die "path with whitespace not supported: $OUT" ;; esac

# ---- the job the guest runs ---------------------------------------------------------------
{
  echo '# written by tests/e2e/uml/run.sh'
  echo 'export VM_GUEST=1 VM_RUN_OUT=/run/vm'
  for v in ${VM_ENV:-}; do
    case "$v" in
      *=*) printf 'export %s=%q\n' "${v%%=*}" "${v#*=}" ;;
      *)   [[ "$v" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad VM_ENV name: $v"
           [ -n "${!v+set}" ] && printf 'export %s=%q\n' "$v" "${!v}" ;;
    esac
  done
  printf 'cd %q || exit 2\n' "$PWD"
  if [ -x "$SCRIPT" ]; then printf 'exec %q' "$SCRIPT"; else printf 'exec bash %q' "$SCRIPT"; fi
  for a in "$@"; do printf ' %q' "$a"; done
  echo
} > "$OUT/job.sh"

echo "${VM_MODULES:-}" | tr ',' ' ' > "$OUT/modules"
# The guest's own timer fires first, so that a hang still yields dmesg and a task dump.
GUEST_TMO=$(( TMO - 20 > TMO / 2 ? TMO - 20 : TMO / 2 ))
echo "$GUEST_TMO" > "$OUT/timeout"
: > "$OUT/rwdirs"
if [ -n "${VM_RW_DIRS:-}" ]; then
  IFS=: read -ra dirs <<< "$VM_RW_DIRS"
  for d in "${dirs[@]}"; do
    [ -n "$d" ] || continue
    [ -d "$d" ] || die "VM_RW_DIRS: not a directory: $d"
    d=$(readlink -f "$d")
    case "$d" in *[[:space:]]*) die "VM_RW_DIRS: whitespace in $d" ;; esac
    echo "$d" >> "$OUT/rwdirs"
  done
fi

# ---- host preparation ---------------------------------------------------------------------
# UML maps guest memory into its host processes page range by page range: with the default
# vm.max_map_count (65530) it dies under I/O load ("ran out of memory on the host side")
# and guest I/O hangs. This is a host-wide knob; raising it is harmless.
want=1048576
cur=$(cat /proc/sys/vm/max_map_count)
if [ "$cur" -lt "$want" ]; then
  if echo "$want" > /proc/sys/vm/max_map_count 2>/dev/null; then
    echo "uml/run.sh: raised host vm.max_map_count $cur -> $want" >&2
  else
    echo "uml/run.sh: WARNING: vm.max_map_count=$cur and cannot raise it; UML may die under load" >&2
  fi
fi
[ -d "$RAMDIR" ] && [ -w "$RAMDIR" ] || die "VM_TMPDIR=$RAMDIR is not a writable directory"
ulimit -c 0        # a guest panic makes linux.uml abort(): no core files
NETARGS=() NETNS=()
if [ -n "${VM_TAP:-}" ]; then
  [ -n "${VM_NETNS:-}" ] && [ -n "${VM_GUEST_ADDR:-}" ] || die "VM_TAP needs VM_NETNS and VM_GUEST_ADDR"
  NETARGS=("eth0=tuntap,$VM_TAP" "e2e_net=$VM_GUEST_ADDR")
  NETNS=(ip netns exec "$VM_NETNS")
fi
mkdir -p "$OUT/uml"
: > "$OUT/console.log"

# ---- boot ---------------------------------------------------------------------------------
# timeout(1) makes itself a process-group leader and signals the whole group, which holds
# every host process UML forks. On our own TERM/INT the group is ended the same way.
t0=$(date +%s.%N)
TMPDIR=$RAMDIR timeout -k 10 "$TMO" "${NETNS[@]}" "$UML" \
  mem="$MEM" root=/dev/root rootfstype=hostfs rootflags=/ ro \
  init="$HERE/init-stage1.sh" \
  e2e_stage2="$HERE/init-stage2.sh" e2e_ctl="$OUT" e2e_ovl="$OVL" \
  con=null con0=null,fd:1 ssl=null umid="e2e-$$" uml_dir="$OUT/uml" quiet "${NETARGS[@]}" \
  < /dev/null > "$OUT/console.log" 2>&1 &
tpid=$!
trap 'kill -TERM -- -"$tpid" 2>/dev/null' TERM INT HUP
vm_follow "$tpid" "$OUT"
vm_result uml/run.sh "$OUT" "$t0" "$TMO"
