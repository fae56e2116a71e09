# tests/e2e/lib.sh - helpers for the end-to-end scenarios, sourced INSIDE the UML guest.
#
#   . "$(dirname "$0")/../lib.sh"        (first thing in every tests/e2e/scenarios/*.sh)
#
# The core (fail/skip/pass, t, nap, wait_until, on_exit, _alive, _wait_exit, start_ready,
# stop_checked, ...) is tests/lib/core.sh, shared with the host tests; this file adds the
# guest's: time-stamped log lines, modules, the socket server, nbd-client, filesystems,
# fio and the kernel log check.
#
# Conventions: one behaviour per script; exit 0 = pass, 1 = fail, 77 = skip. Everything a
# scenario sets up is registered with on_exit right after it succeeds, and torn down from the
# EXIT trap in reverse order (umount before disconnect before the server stops). Every
# command that touches a device or the server is bounded (`t SECS cmd`), every wait is a
# bounded poll (`wait_until`), and readiness is read from sysfs, never from udev.
# At exit the kernel log is checked: a WARNING, BUG, Oops, general protection fault, hung
# task, or an unexpected block-layer I/O error fails the scenario even if it passed.
#
# Settings (environment; run-all.sh passes them through VM_ENV):
#   RBDNBD_BIN        the rbd-nbdd binary  (default: build/gateway/control/rbd-nbdd)
#   E2E_LOG_LEVEL     the server's --log-level (default debug: per connection, not per I/O)
#   E2E_NBD_TIMEOUT   the kernel's per-request timeout, nbd-client -t (default 60 s)
#   E2E_ALLOW_IO_ERRORS=1  do not fail on block-layer I/O errors in dmesg (fault scenarios)
#
# Logs (server, fio, dmesg) are kept in $E2E_WORK and copied to $VM_RUN_OUT at exit, which
# run.sh maps to VM_OUT on the host (run-all.sh: build/e2e-logs/SCENARIO/).

set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_KILL_AFTER=10
# shellcheck source=../lib/core.sh
. "$E2E_ROOT/tests/lib/core.sh"
E2E_NAME=$TEST_NAME
. "$E2E_ROOT/tests/e2e/guest_paths.sh"   # E2E_WORK, E2E_SOCK, MAP_*, CSI_* paths
E2E_T0=$SECONDS
# /proc/uptime in centiseconds, read with builtins only (log runs for every line)
_uptime_cs() { local u _; read -r u _ < /proc/uptime; u=${u/./}; _UPTIME_CS=$((10#$u)); }
_uptime_cs
E2E_UP0_CS=$_UPTIME_CS

if [ "${VM_GUEST:-}" != 1 ]; then
  echo "$E2E_NAME: this runs inside an e2e guest: use tests/e2e/run-all.sh, or" \
       "tests/e2e/uml/run.sh $0 (tests/e2e/qemu/run.sh $0 for 6.12)" >&2
  exit 2
fi

# The guest kind: uml (user-mode Linux 6.1, one vCPU) or 6.12 (Debian's kernel under qemu
# TCG, two vCPUs; qemu/run.sh sets VM_KERNEL). Scenarios branch on it where they differ.
E2E_KERNEL=${VM_KERNEL:-uml}
RBDNBD_BIN=${RBDNBD_BIN:-build/gateway/control/rbd-nbdd}
case "$RBDNBD_BIN" in /*) ;; *) RBDNBD_BIN=$E2E_ROOT/$RBDNBD_BIN ;; esac
E2E_LOG_LEVEL=${E2E_LOG_LEVEL:-debug}
E2E_NBD_TIMEOUT=${E2E_NBD_TIMEOUT:-60}

mkdir -p "$E2E_WORK"

# ---------------------------------------------------------------------------------------
# Reporting (the rest is core.sh's)
# ---------------------------------------------------------------------------------------
# log MSG... : with the seconds since the scenario started (builtins only: per line).
log() {
  _uptime_cs
  local d=$((_UPTIME_CS - E2E_UP0_CS))
  printf '[%s %3d.%ds] %s\n' "$E2E_NAME" $((d / 100)) $((d % 100 / 10)) "$*" >&2
}

# step WHAT : a visible milestone in the console log.
step() { log "--- $*"; }

# ---------------------------------------------------------------------------------------
# The last teardown step
# ---------------------------------------------------------------------------------------
# Registered first, so it runs after every other hook: a server still running, the
# kernel log check (it fails even a passed scenario), the logs kept, the verdict.
_e2e_finish() {
  if server_alive; then
    log "cleanup: server (pid $SERVER_PID) still running, stopping it"
    term_wait "$SERVER_PID" 20
  fi
  if ! check_dmesg; then
    [ "$EXIT_RC" = 0 ] || [ "$EXIT_RC" = 77 ] && EXIT_RC=1
  fi
  if [ "$EXIT_RC" != 0 ] && [ "$EXIT_RC" != 77 ]; then show_log_tail "${SERVER_LOG:-}"; fi
  if [ -n "${VM_RUN_OUT:-}" ] && [ -d "$VM_RUN_OUT" ]; then
    cp -a "$E2E_WORK"/. "$VM_RUN_OUT"/ 2>/dev/null
  fi
  case "$EXIT_RC" in
    0) log "scenario passed in $((SECONDS - E2E_T0))s" ;;
    77) log "scenario skipped" ;;
    *) log "scenario FAILED (exit $EXIT_RC) after $((SECONDS - E2E_T0))s; logs: ${VM_RUN_OUT:-$E2E_WORK}" ;;
  esac
  return 0
}
on_exit _e2e_finish
trap 'log "interrupted (SIGTERM: the guest timer ran out?)"; exit 143' TERM

# private_copy SRC NAME VERSION_ARG : a private copy of the binary SRC at $E2E_BIN_DIR/NAME
# (set in PRIVATE_COPY) that runs (`NAME VERSION_ARG` answers). Scenarios run copies because
# other work on the host may relink the build's binaries while a guest runs: an exec would
# then fail with EACCES/ETXTBSY, or the daemon and the CLI would be different versions.
# In a batch, an earlier scenario's copy is reused while SRC keeps its mtime (cp -p copies
# it; a relink changes it): copying and checking a 30 MB binary costs 2-8 s in the guest.
private_copy() {
  local src=$1 name=$2 arg=$3 dst=$E2E_BIN_DIR/$2 v
  [ -x "$src" ] || fail "$name not found at $src"
  if [ -x "$dst" ] && ! [ "$src" -nt "$dst" ] && ! [ "$dst" -nt "$src" ]; then
    log "$name: this batch's copy of $src"
    PRIVATE_COPY=$dst
    return 0
  fi
  mkdir -p "$E2E_BIN_DIR"
  for _ in 1 2 3 4 5 6; do
    if cp -p "$src" "$dst.tmp" 2>/dev/null && v=$(timeout 20 "$dst.tmp" "$arg" 2>&1); then
      mv "$dst.tmp" "$dst"
      log "$name ${v%%$'\n'*} (copied from $src)"
      PRIVATE_COPY=$dst
      return 0
    fi
    nap 5   # a relink in progress
  done
  fail "cannot copy a working $name from $src"
}

# ---------------------------------------------------------------------------------------
# Kernel modules
# ---------------------------------------------------------------------------------------
# load_nbd [NBDS_MAX] : load nbd with NBDS_MAX (16) devices and wait for their nodes.
load_nbd() {
  local n=${1:-16}
  if [ ! -d /sys/module/nbd ]; then
    t 30 modprobe nbd nbds_max="$n" max_part=0 || fail "modprobe nbd failed"
  fi
  wait_until 10 "/dev/nbd$((n - 1))" test -b "/dev/nbd$((n - 1))"
}

# load_ublk : ublk_drv (the 6.12 guest has it; UML and 6.1 do not: the scenario is skipped,
# which fails it with CI=true), ready once /dev/ublk-control exists.
load_ublk() {
  if [ ! -d /sys/module/ublk_drv ]; then
    t 30 modprobe ublk_drv 2>/dev/null || skip "no ublk_drv module for $(uname -r)"
  fi
  wait_until 10 /dev/ublk-control test -c /dev/ublk-control
}

load_rbd() { [ -d /sys/module/rbd ] || t 30 modprobe rbd || fail "modprobe rbd failed"; }

# load_brd SIZE_MIB [COUNT] : RAM disks /dev/ram0.. of SIZE_MIB each.
load_brd() {
  local mib=$1 count=${2:-1}
  [ -d /sys/module/brd ] || t 30 modprobe brd rd_size=$((mib * 1024)) rd_nr="$count" \
    || fail "modprobe brd failed"
  wait_until 10 /dev/ram0 test -b /dev/ram0
}

# ---------------------------------------------------------------------------------------
# The rbd-nbdd server (the socket server, until `rbd-nbdd map` exists)
# ---------------------------------------------------------------------------------------
SERVER_PID=
SERVER_LOG=
_SERVER_N=0

# start_server SERVE_ARGS... : `rbd-nbdd serve --socket $E2E_SOCK SERVE_ARGS...` in the
# background, log in $E2E_WORK/server.N.log (SERVER_LOG), ready once the socket exists.
start_server() {
  [ -x "$RBDNBD_BIN" ] || fail "rbd-nbdd not found at $RBDNBD_BIN"
  [ -z "$SERVER_PID" ] || fail "start_server: a server is already running (pid $SERVER_PID)"
  _SERVER_N=$((_SERVER_N + 1))
  local slog=$E2E_WORK/server.$_SERVER_N.log
  rm -f "$E2E_SOCK"
  log "starting: rbd-nbdd serve --socket $E2E_SOCK $*"
  start_ready server "$slog" 30 test -S "$E2E_SOCK" -- "$RBDNBD_BIN" serve --socket "$E2E_SOCK" \
    --log-level "$E2E_LOG_LEVEL" --pid-file "$E2E_WORK/server.pid" "$@"
  SERVER_PID=$STARTED_PID SERVER_LOG=$slog
  log "server ready (pid $SERVER_PID)"
}

# stop_server : SIGTERM; it must exit 0 within 60 s with no crash trace in its log.
stop_server() {
  [ -n "$SERVER_PID" ] || fail "stop_server: no server running"
  _alive "$SERVER_PID" || fail "server (pid $SERVER_PID) died before stop_server$(_server_death)"
  log "server peak RSS $(awk '/^VmHWM/ {printf "%d MiB", $2 / 1024}' "/proc/$SERVER_PID/status")"
  local pid=$SERVER_PID
  SERVER_PID=
  stop_checked server "$pid" "$SERVER_LOG" 60
}

server_alive() { [ -n "$SERVER_PID" ] && _alive "$SERVER_PID"; }

# _server_death : ": OOM-killed (...)" when the kernel log says so, else nothing.
_server_death() {
  local l
  l=$(dmesg 2>/dev/null | grep -E "Killed process $SERVER_PID " | tail -n 1) || true
  [ -z "$l" ] || echo ": OOM-killed (${l#*Killed process })"
}

# ---------------------------------------------------------------------------------------
# /dev/nbdN through Debian's nbd-client (netlink by default)
# ---------------------------------------------------------------------------------------
# sysfs_read FILE : the first line of FILE in _SYSFS (empty if unreadable). Builtins only:
# these are polled, and an exec costs up to a second in a loaded guest.
sysfs_read() {
  _SYSFS=''
  { read -r _SYSFS < "$1"; } 2>/dev/null
  return 0
}

# nbd_size DEV : the device's size in bytes, from sysfs (0 when not connected).
nbd_size() {
  sysfs_read "/sys/block/${1##*/}/size"
  echo $((${_SYSFS:-0} * 512))
}

_size_is() { [ "$(nbd_size "$1")" = "$2" ]; }

# wait_nbd_size DEV BYTES [SECS] : poll /sys/block/nbdN/size until it is BYTES.
wait_nbd_size() {
  wait_until "${3:-30}" "$1 to have size $2 (now $(nbd_size "$1"))" _size_is "$1" "$2"
}

# nbd_connect DEV EXPORT SIZE_BYTES [NBD_CLIENT_ARGS...] : connect DEV to EXPORT on the
# server's socket with 4 KiB blocks, wait until sysfs shows SIZE_BYTES, disconnect at exit.
nbd_connect() {
  local dev=$1 export=$2 size=$3
  shift 3
  log "nbd-client -unix $E2E_SOCK $dev -N $export -b 4096 -t $E2E_NBD_TIMEOUT $*"
  t 60 nbd-client -unix "$E2E_SOCK" "$dev" -N "$export" -b 4096 -t "$E2E_NBD_TIMEOUT" "$@" \
    >> "$E2E_WORK/nbd-client.log" 2>&1 \
    || { cat "$E2E_WORK/nbd-client.log" >&2; fail "nbd-client could not connect $dev"; }
  on_exit "_nbd_disconnect_quiet $dev"
  wait_nbd_size "$dev" "$size" 30
  log "$dev connected: $(nbd_size "$dev") bytes, $(_nbd_queue_summary "$dev")"
}

_nbd_queue_summary() {
  local q=/sys/block/${1##*/}/queue f out=''
  for f in logical_block_size:lbs max_sectors_kb:max_sectors_kb discard_max_bytes:discard_max write_cache:wc; do
    sysfs_read "$q/${f%%:*}"
    out+="${f#*:} $_SYSFS "
  done
  local mq=("/sys/block/${1##*/}/mq/"*)
  [ -e "${mq[0]}" ] || mq=()
  echo "${out}hw queues ${#mq[@]}"
}

# nbd_disconnect DEV : nbd-client -d, then wait until the kernel dropped the size.
nbd_disconnect() {
  t 30 nbd-client -d "$1" >> "$E2E_WORK/nbd-client.log" 2>&1 \
    || fail "nbd-client -d $1 failed"
  wait_nbd_size "$1" 0 30
  log "$1 disconnected"
}

_nbd_disconnect_quiet() {
  [ "$(nbd_size "$1")" != 0 ] || return 0
  t 30 nbd-client -d "$1" >> "$E2E_WORK/nbd-client.log" 2>&1
}

# ---------------------------------------------------------------------------------------
# Filesystems and data
# ---------------------------------------------------------------------------------------
# mount_dev DEV DIR [MOUNT_ARGS...] : mount, and unmount at exit.
mount_dev() {
  local dev=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  t 60 mount "$@" "$dev" "$dir" || fail "mount $dev $dir failed"
  on_exit "_umount_quiet $dir"
}

umount_dir() { t 120 umount "$1" || fail "umount $1 failed"; }
_umount_quiet() { mountpoint -q "$1" || return 0; t 120 umount "$1" || t 30 umount -l "$1"; }

# make_files DIR MANIFEST : a spread of random files (4 KiB to 32 MiB, about 70 MiB in all,
# some sparse-ish, one directory deep), their sha256 sums written to MANIFEST.
make_files() {
  local dir=$1 manifest=$2 i
  mkdir -p "$dir/a/b"
  t 60 dd if=/dev/urandom of="$dir/big" bs=1M count=32 status=none
  t 60 dd if=/dev/urandom of="$dir/a/mid" bs=1M count=16 status=none
  for i in $(seq 1 40); do
    t 30 dd if=/dev/urandom of="$dir/a/b/small.$i" bs=4k count=$((i % 7 + 1)) status=none
  done
  t 30 dd if=/dev/urandom of="$dir/a/holes" bs=1M count=1 seek=20 status=none
  head -c 3333 /dev/urandom > "$dir/odd-size"
  (cd "$dir" && find . -type f -print0 | sort -z \
     | xargs -0 sha256sum) > "$manifest"
  log "wrote $(wc -l < "$manifest") files ($(du -sh "$dir" | cut -f1)) in $dir"
}

# verify_files DIR MANIFEST : every file's sha256 matches.
verify_files() {
  (cd "$1" && t 300 sha256sum --quiet -c "$2") || fail "checksum mismatch in $1"
  log "verified $(wc -l < "$2") files in $1"
}

# drop_caches : forget clean page cache, so that reads go to the device.
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# dev_range_is DEV FILE SKIP_MIB COUNT_MIB : whether DEV's MiB range SKIP..SKIP+COUNT (read
# with O_DIRECT) holds the same bytes as that range of FILE (/dev/zero: reads as zeroes).
dev_range_is() {
  t 120 dd if="$1" bs=1M skip="$3" count="$4" iflag=direct status=none \
    | cmp -s - <(dd if="$2" bs=1M skip="$3" count="$4" status=none)
}

# ---------------------------------------------------------------------------------------
# fio
# ---------------------------------------------------------------------------------------
# run_fio NAME FIO_ARGS... : run fio bounded (E2E_FIO_TIMEOUT, 600 s), json in
# $E2E_WORK/fio-NAME.json; fail unless it exits 0 with no job error. Prints a summary.
# FIO_ARGS belong to job NAME; more jobs may follow, each starting with --name=OTHER and
# repeating every option it needs (fio has no global section here).
run_fio() {
  local name=$1
  shift
  local out=$E2E_WORK/fio-$name.json rc=0
  log "fio $name: $*"
  # In $E2E_WORK: verify_dump files land there, and so are kept with the logs.
  (cd "$E2E_WORK" && t "${E2E_FIO_TIMEOUT:-600}" fio --name="$name" --eta=never --output-format=json+ \
     --output="$out" "$@") 2> "$E2E_WORK/fio-$name.err" || rc=$?
  if [ "$rc" != 0 ]; then
    head -n 20 "$E2E_WORK/fio-$name.err" >&2
    [ -s "$out" ] && { jq -M -c '.jobs[] | {jobname, error}' "$out" >&2 2>/dev/null || true; }
    [ -z "$SERVER_PID" ] || server_alive || log "the server (pid $SERVER_PID) is gone$(_server_death)"
    fail "fio $name exited $rc"
  fi
  local errs
  errs=$(jq '[.jobs[].error] | add' "$out") || fail "fio $name: unreadable json"
  [ "$errs" = 0 ] || fail "fio $name: job error $errs"
  jq -M -r '.jobs[] | "\(.jobname): write \(.write.iops|floor) IOPS \(.write.io_bytes/1048576|floor) MiB, " +
         "read(verify) \(.read.iops|floor) IOPS \(.read.io_bytes/1048576|floor) MiB, " +
         "\(.job_runtime/1000) s, error \(.error)"' "$out" | while read -r l; do log "  $l"; done
}

# ---------------------------------------------------------------------------------------
# The kernel log
# ---------------------------------------------------------------------------------------
# Kernel bugs, and the OOM killer (in a test it means something grew without bound): any of
# these fails every scenario.
E2E_DMESG_BUGS='WARNING:|BUG:|kernel BUG at|Oops|general protection|INFO: task .* blocked|Kernel panic|UBSAN:|list_(add|del) corruption|refcount_t:|Out of memory|oom-kill'
# Block and filesystem errors: a scenario that injects faults sets E2E_ALLOW_IO_ERRORS=1.
E2E_DMESG_IOERRS='I/O error|Other side returned error|Receive control failed|Send control failed|Connection timed out|Dead connection|EXT4-fs error|EXT4-fs warning|XFS .*(corrupt|error)|Buffer I/O error'

# check_dmesg : 0 if the kernel log is clean; else prints the offending lines, returns 1.
check_dmesg() {
  local pat=$E2E_DMESG_BUGS
  [ "${E2E_ALLOW_IO_ERRORS:-0}" = 1 ] || pat="$pat|$E2E_DMESG_IOERRS"
  timeout 10 dmesg > "$E2E_WORK/dmesg.txt" 2>&1
  if grep -En "$pat" "$E2E_WORK/dmesg.txt" > "$E2E_WORK/dmesg-bad.txt"; then
    log "dmesg is not clean:"
    head -n 40 "$E2E_WORK/dmesg-bad.txt" >&2
    return 1
  fi
  rm -f "$E2E_WORK/dmesg-bad.txt"
  log "dmesg clean"
}
