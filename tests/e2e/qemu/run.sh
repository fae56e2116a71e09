#!/bin/bash
# tests/e2e/qemu/run.sh SCRIPT [ARGS...] - run SCRIPT as root inside a fresh qemu guest
# (TCG, q35, 2 vCPUs) booting Debian 12's own Linux 6.12 kernel (fetch-kernel.sh; never
# installed on the host), and exit with its exit code. The same interface as
# tests/e2e/uml/run.sh; this guest has what UML lacks: ublk_drv, and nbd with one
# blk-mq hardware queue per vCPU (2).
#
# The guest's root is the host's / over virtio-9p, read-only, under a tmpfs overlay: every
# host binary (rbd-nbdd, nbd-client, fio, ceph) is there, and nothing the guest writes
# reaches the host except in the directories listed in VM_RW_DIRS and the control dir.
#
# Exit codes: SCRIPT's own; 124 when VM_TIMEOUT ran out (the in-guest timer fires first,
# so the guest still saves dmesg and a blocked-task dump); 125 when the guest died without
# reporting one (a panic, qemu killed, a broken init); 2 on a usage or setup error (no
# kernel and no way to fetch it).
#
# Settings (environment):
#   VM_MEM=2G        guest RAM.
#   VM_SMP=2         vCPUs (TCG threads: at most the host's cores is sensible).
#   VM_CPU=max       qemu's -cpu model.
#   VM_TIMEOUT=600   seconds for the whole run, boot and shutdown included.
#   VM_MODULES=""    modules to modprobe before SCRIPT starts, space or comma separated.
#   VM_RW_DIRS=""    host directories, colon separated, mounted read-write at the same path.
#   VM_ENV=""        variables to pass into the guest, space separated: NAME or NAME=VALUE.
#   VM_OUT=""        host directory to keep the run's files in (created; else a temp dir,
#                    removed at exit): console.log, dmesg.log, rc, timing, job.sh, and
#                    whatever the script copies to $VM_RUN_OUT inside the guest.
#   VM_OVERLAY_SIZE=1g  size limit of the tmpfs under the overlay (guest RAM, not host).
#   VM_KERNEL_DIR=build/guest-kernel  the unpacked kernel (fetch-kernel.sh fills it when
#                    it is missing).
#   VM_QUIET=1       do not echo the guest console to stdout (it still goes to console.log).
#   VM_BOOT_TRIES    boots of a guest that dies before its job starts (default 3; see below).
#   VM_NETNS, VM_TAP, VM_GUEST_ADDR  give the guest a virtio-net NIC on tap device VM_TAP
#                    of network namespace VM_NETNS (both made by the caller; qemu runs in
#                    that namespace), configured as VM_GUEST_ADDR (ADDR/PREFIX) on eth0.
#                    Without them the guest has loopback only.
#
# Inside the guest SCRIPT sees: cwd = the caller's cwd, PATH with /usr/sbin first,
# VM_GUEST=1, VM_KERNEL=6.12, VM_RUN_OUT = the control dir (read-write, ends up in VM_OUT).
set -uo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$HERE/../vm_host.sh"   # vm_follow, vm_result
ROOT=$(cd "$HERE/../../.." && pwd)
die() { echo "qemu/run.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 SCRIPT [ARGS...]"
SCRIPT=$(readlink -f "$1") || die "no such script: $1"
shift
[ -f "$SCRIPT" ] || die "no such script: $SCRIPT"

QEMU=${VM_QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || die "$QEMU is missing (apt-get install qemu-system-x86)"
BUSYBOX=${VM_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] && [[ "$(LC_ALL=C ldd "$BUSYBOX" 2>&1)" == *"not a dynamic"* ]] \
  || die "$BUSYBOX is missing or not static (apt-get install busybox-static)"
MEM=${VM_MEM:-2G}
SMP=${VM_SMP:-2}
# "max": every feature TCG emulates. The default qemu64 model lacks some the host's
# binaries probe for at run time (Ceph's jerasure crashes in gf_init_hard on it).
CPU=${VM_CPU:-max}
TMO=${VM_TIMEOUT:-600}
OVL=${VM_OVERLAY_SIZE:-1g}
KDIR=${VM_KERNEL_DIR:-$ROOT/build/guest-kernel}
MSIZE=512000
[[ "$TMO" =~ ^[0-9]+$ ]] && [ "$TMO" -ge 10 ] || die "VM_TIMEOUT must be a number of seconds >= 10"
[[ "$SMP" =~ ^[1-9][0-9]*$ ]] || die "VM_SMP must be a positive number"

# The kernel, fetched once (cached in KDIR).
KVER=$(bash "$HERE/fetch-kernel.sh" "$KDIR") || die "no guest kernel (tests/e2e/qemu/fetch-kernel.sh failed)"
KDIR=$(readlink -f "$KDIR")
for p in "$HERE" "$SCRIPT" "$KDIR"; do
  case "$p" in *[[:space:]]*) die "path with whitespace not supported: $p" ;; esac
done

# The initramfs: busybox-static, the init, the 9p and overlay modules. Built once per
# (kernel, init script, busybox) and cached beside the kernel. Guests start side by side
# (run-all's E2E_JOBS), so the build holds a lock and writes a file of its own that is
# renamed into place whole; a cached file that fails `gzip -t` is built again.
key=$(cat "$HERE/initramfs-init.sh" "$KDIR/version" "$BUSYBOX" | sha256sum | cut -c1-16)
INITRD=$KDIR/initramfs-$key.cpio.gz
build_initrd() {
  local tmp part=$INITRD.$$.tmp
  [ -s "$INITRD" ] && gzip -tq "$INITRD" 2>/dev/null && return 0
  tmp=$(mktemp -d "$KDIR/.initrd.XXXXXX") || return 1
  mkdir -p "$tmp/bin" "$tmp/mods" "$tmp/dev"
  cp "$BUSYBOX" "$tmp/bin/busybox"
  cp "$HERE/initramfs-init.sh" "$tmp/init"
  cp "$KDIR"/initrd-mods/*.ko "$tmp/mods/"
  mknod -m 600 "$tmp/dev/console" c 5 1 2>/dev/null
  mknod -m 666 "$tmp/dev/null" c 1 3 2>/dev/null
  if (cd "$tmp" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) > "$part" \
     && gzip -tq "$part"; then
    mv -f "$part" "$INITRD"
  else
    rm -f "$part"
  fi
  rm -rf "$tmp"
  [ -s "$INITRD" ]
}
exec {lockfd}> "$KDIR/.initrd.lock" || die "cannot open $KDIR/.initrd.lock"
flock -w 120 "$lockfd" || die "another run.sh held $KDIR/.initrd.lock for 120 s"
build_initrd || die "could not build the initramfs"
exec {lockfd}>&-

if [ -n "${VM_OUT:-}" ]; then
  mkdir -p "$VM_OUT" || die "cannot create VM_OUT=$VM_OUT"
  OUT=$(readlink -f "$VM_OUT")
  rm -f "$OUT"/{rc,rc.tmp,console.log,dmesg.log,ps.log,timing,job.sh,rwdirs,modules,timeout}
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/e2e-qemu.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi
case "$OUT" in *[[:space:]]*) die "path with whitespace not supported: $OUT" ;; esac

# ---- the job the guest runs ---------------------------------------------------------------
{
  echo '# written by tests/e2e/qemu/run.sh'
  echo 'export VM_GUEST=1 VM_KERNEL=6.12 VM_RUN_OUT=/run/vm'
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
# The guest's own timer fires first, so that a hang still yields dmesg and a task dump. It
# starts once the guest has booted: 20-45 s after qemu on a loaded host, hence the margin.
GUEST_TMO=$(( TMO - 60 > TMO / 2 ? TMO - 60 : TMO / 2 ))
echo "$GUEST_TMO" > "$OUT/timeout"
: > "$OUT/rwdirs"
P9=(-virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$OUT,mount_tag=ctl,security_model=none,multidevs=remap")
if [ -n "${VM_RW_DIRS:-}" ]; then
  IFS=: read -ra dirs <<< "$VM_RW_DIRS"
  i=0
  for d in "${dirs[@]}"; do
    [ -n "$d" ] || continue
    [ -d "$d" ] || die "VM_RW_DIRS: not a directory: $d"
    d=$(readlink -f "$d")
    case "$d" in *[[:space:]]*|*,*) die "VM_RW_DIRS: whitespace or comma in $d" ;; esac
    echo "$d" >> "$OUT/rwdirs"
    P9+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
    i=$((i + 1))
  done
fi

NETARGS=() NETNS=() APPEND_NET=
if [ -n "${VM_TAP:-}" ]; then
  [ -n "${VM_NETNS:-}" ] && [ -n "${VM_GUEST_ADDR:-}" ] || die "VM_TAP needs VM_NETNS and VM_GUEST_ADDR"
  NETARGS=(-netdev "tap,id=n0,ifname=$VM_TAP,script=no,downscript=no" -device virtio-net-pci,netdev=n0)
  NETNS=(ip netns exec "$VM_NETNS")
  APPEND_NET=" e2e_net=$VM_GUEST_ADDR"
fi

# The decompressed kernel when fetch-kernel.sh could make one (PVH entry: no decompressor
# run under TCG), else the bzImage.
KERNEL=$KDIR/vmlinuz
[ -s "$KDIR/vmlinux" ] && [ "${VM_BZIMAGE:-0}" != 1 ] && KERNEL=$KDIR/vmlinux
# qboot (a minimal firmware) boots a -kernel faster than SeaBIOS under TCG.
BIOS=()
[ -f /usr/share/qemu/qboot.rom ] && [ "${VM_SEABIOS:-0}" != 1 ] && BIOS=(-bios /usr/share/qemu/qboot.rom)

ulimit -c 0

# ---- boot ---------------------------------------------------------------------------------
# timeout(1) makes itself a process-group leader and signals the whole group (qemu), at
# VM_TIMEOUT or when we are told to stop; qemu is killed at the end whatever happens.
#
# A guest that dies before its job starts (no timing file yet) is booted again, up to
# VM_BOOT_TRIES times (default 3): multi-threaded TCG now and then lets a vCPU run a
# stale int3 that the kernel's live code patching (static keys, alternatives) has already
# removed, and the kernel oopses in early boot ("Oops: int3" in sched_clock_cpu, seen
# once on a loaded host). That is the emulator's, not the scenario's: the console of the
# failed boot is kept as console.boot-fail-N.log and the retry is logged.
TRIES=${VM_BOOT_TRIES:-3}
[[ "$TRIES" =~ ^[1-9][0-9]*$ ]] || die "VM_BOOT_TRIES must be a positive number"
cleanup() {
  [ -n "${tpid:-}" ] || return 0
  kill -TERM -- -"$tpid" 2>/dev/null || kill -TERM "$tpid" 2>/dev/null
  sleep 1
  kill -KILL -- -"$tpid" 2>/dev/null
}
STOPPED=0
trap 'STOPPED=1; cleanup' TERM INT HUP
t0=$(date +%s.%N)
for ((try = 1; ; try++)); do
  : > "$OUT/console.log"
  rm -f "$OUT/timing" "$OUT/rc" "$OUT/rc.tmp"
  "${NETNS[@]}" timeout -k 10 "$TMO" "$QEMU" -M q35 -accel tcg,thread=multi -cpu "$CPU" -smp "$SMP" -m "$MEM" \
    "${BIOS[@]}" -nodefaults -no-user-config -display none -no-reboot \
    -serial stdio -monitor none \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off 8250.nr_uarts=1 e2e_stage2=$HERE/init-stage2.sh e2e_ovl=$OVL e2e_kmods=$KDIR/lib/modules e2e_msize=$MSIZE$APPEND_NET" \
    "${P9[@]}" "${NETARGS[@]}" \
    < /dev/null > "$OUT/console.log" 2>&1 &
  tpid=$!
  vm_follow "$tpid" "$OUT"; urc=$VM_RC
  tpid=
  # booted (the job started), told to stop, timed out, or out of tries: done
  if [ -s "$OUT/timing" ] || [ -s "$OUT/rc" ] || [ "$STOPPED" = 1 ] || [ "$urc" = 124 ] ||
     [ "$urc" = 137 ] || [ "$try" -ge "$TRIES" ]; then
    break
  fi
  cp "$OUT/console.log" "$OUT/console.boot-fail-$try.log"
  echo "qemu/run.sh: the guest died while booting (attempt $try of $TRIES, qemu rc=$urc;" \
       "console kept in $OUT/console.boot-fail-$try.log): booting again" >&2
  grep -m 3 -E 'Oops|panic|BUG' "$OUT/console.log" | sed 's/^/qemu\/run.sh:   /' >&2
done
VM_KVER=$KVER vm_result qemu/run.sh "$OUT" "$t0" "$TMO"
