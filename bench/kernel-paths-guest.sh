#!/bin/bash
# bench/kernel-paths-guest.sh - the in-guest half of bench/kernel-paths.sh. Runs INSIDE the
# Debian 6.12 qemu guest (tests/e2e/qemu/run.sh, with a NIC on the host's bench namespace);
# never on the host. The cluster and the prefilled image rbd/bench are on the host.
#
# The image is mapped five ways AT ONCE:
#   krbd     `rbd map -o noudev rbd/bench`
#   rbd-nbd  `rbd-nbd --try-netlink map rbd/bench` (Ceph's, one process)
#   nbdd-1c  `rbd-nbdd map rbd/bench` (the daemon, 1 connection)
#   nbdd-2c  `rbd-nbdd map --connections 2 rbd/bench2` (the same daemon; a copy of bench:
#            the daemon maps an image once)
#   ublk     `rbd-nbdd map -t ublk rbd/bench3` when map has it, else
#            `rbd-nbdd serve --ublk --rbd rbd/bench3` (bench3: another copy)
# Only ONE device runs I/O at a time. Before every run one 4 KiB block is read and written
# back (same data) through the device, so the exclusive lock moves to that client before fio
# starts. For each round and workload the paths run in turn, the order rotated.
# CPU: utime+stime of the serving process (/proc/PID/stat) and the guest's busy jiffies
# (/proc/stat), sampled by fio's exec_prerun/exec_postrun around the I/O.
#
# Settings (VM_ENV): RUNTIME ROUNDS KP_RAW RBDNBD KP_HOST_CONF KP_HOST_KEYRING KP_IMAGE_MIB
# KP_ENGINE KP_PATHS KP_WORKLOADS (see bench/kernel-paths.sh).
set -uo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C

RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-1}
IMAGE_MIB=${KP_IMAGE_MIB:-512}
ENGINE=${KP_ENGINE:-io_uring}
RAW=${KP_RAW:?KP_RAW not set}
RBDNBD=${RBDNBD:?RBDNBD not set}
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, _alive, _wait_exit
SOCK=/run/rbdnbdd.sock
STATE=/run/rbdnbdd-state
WORK=/run/kp
SPEC=rbd/bench
mkdir -p "$RAW" "$WORK/run" "$WORK/crash"

T0=$SECONDS
say() { printf '[kp-guest %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }
[ "${VM_GUEST:-}" = 1 ] || die "runs inside the qemu guest: use bench/kernel-paths.sh"
[ -x "$RBDNBD" ] || die "no rbd-nbdd at $RBDNBD"
CLK_TCK=$(getconf CLK_TCK)
echo "$CLK_TCK" > "$RAW/clk_tck"

# The host's conf, with the run and crash dirs moved into the guest (the host's are read-only
# here); librbd's cache off for every librbd client, as krbd has none.
CONF=$WORK/client.conf
HDIR=$(dirname "$KP_HOST_CONF")
sed "s#$HDIR/run#$WORK/run#g; s#$HDIR/crash#$WORK/crash#g" "$KP_HOST_CONF" > "$CONF"
printf '\n[client]\nrbd_cache = false\nlog_file = /dev/null\n' >> "$CONF"
cp "$KP_HOST_KEYRING" "$WORK/keyring" && chmod 600 "$WORK/keyring"
KEYRING=$WORK/keyring
export CEPH_CONF=$CONF
unset CEPH_ARGS CEPH_KEYRING

DAEMON_PID= SERVE_PID= CEPHNBD_PID=
alive() { _alive "$1"; }
rbd_() { b 120 rbd -c "$CONF" --keyring "$KEYRING" "$@"; }
nbdd() { local sub=$1; shift; b 180 "$RBDNBD" "$sub" --control-socket "$SOCK" "$@"; }
dev_bytes() { echo $(( $(cat "/sys/block/$(basename "$1")/size" 2>/dev/null || echo 0) * 512 )); }
wait_size() {
  local dl=$((SECONDS + $3))
  until [ "$(dev_bytes "$1")" = "$2" ]; do
    [ "$SECONDS" -lt "$dl" ] || return 1
    sleep 0.1
  done
}

cleanup() {
  say "cleanup (exit $EXIT_RC)"
  local d
  for d in /sys/bus/rbd/devices/*; do
    [ -e "$d" ] && b 60 rbd unmap -o noudev "/dev/rbd$(basename "$d")" >&2
  done
  for d in $(b 30 rbd-nbd list-mapped --format json 2>/dev/null | jq -r '.[].device' 2>/dev/null); do
    b 60 rbd-nbd unmap "$d" >&2
  done
  if [ -n "$DAEMON_PID" ] && alive "$DAEMON_PID"; then
    for d in $(nbdd list-mapped --format json 2>/dev/null | jq -r '.[].device' 2>/dev/null); do
      nbdd unmap --force "$d" >&2
    done
    kill -TERM "$DAEMON_PID"; _wait_exit "$DAEMON_PID" 30 || kill -KILL "$DAEMON_PID"
  fi
  if [ -n "$SERVE_PID" ] && alive "$SERVE_PID"; then
    kill -TERM "$SERVE_PID"; _wait_exit "$SERVE_PID" 30 || kill -KILL "$SERVE_PID"
  fi
  cp "$WORK"/*.log "$RAW"/ 2>/dev/null
  dmesg > "$RAW/dmesg.txt" 2>/dev/null
  if grep -nE 'WARNING:|BUG:|Oops|general protection|blocked for more than|I/O error|Dead connection|timed out' "$RAW/dmesg.txt" > "$RAW/dmesg-findings.txt"; then
    say "dmesg findings:"; head -n 10 "$RAW/dmesg-findings.txt" >&2
  fi
  say "done in $((SECONDS - T0)) s"
}
on_exit cleanup
trap 'say "SIGTERM (guest timer?)"; exit 143' TERM

for i in $(seq 1 50); do [ -e /dev/ublk-control ] && break; sleep 0.1; done
BYTES=$((IMAGE_MIB << 20))
rbd_ info "$SPEC" > /dev/null 2> "$WORK/info.err" || { cat "$WORK/info.err" >&2; die "the cluster is not reachable from the guest"; }
say "cluster reachable ($(sed -n 's/^mon_host = //p' "$CONF"))"
{
  echo "kernel=$(uname -r)"
  echo "fio=$(fio --version)"
  echo "ceph=$(rbd --version | awk '{print $3}')"
  echo "rbdnbdd=$("$RBDNBD" version 2>&1 | head -1)"
  echo "vcpus=$(nproc)"
  echo "mem_kib=$(awk '/MemTotal/{print $2}' /proc/meminfo)"
  echo "runtime=$RUNTIME"
  echo "rounds=$ROUNDS"
  echo "engine=$ENGINE"
  echo "image_mib=$IMAGE_MIB"
} > "$RAW/env"

PATHS=(krbd rbd-nbd nbdd-1c nbdd-2c ublk)
if [ -n "${KP_PATHS:-}" ]; then IFS=, read -ra PATHS <<< "$KP_PATHS"; fi
want() { local p; for p in "${PATHS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

# ---- map ------------------------------------------------------------------------------
declare -A DEV PID
if want krbd; then
  out=$(rbd_ map -o noudev "$SPEC" 2>> "$WORK/krbd-map.err") || { cat "$WORK/krbd-map.err" >&2; die "rbd map"; }
  DEV[krbd]=$(sed -n 1p <<< "$out"); PID[krbd]=
  wait_size "${DEV[krbd]}" "$BYTES" 30 || die "krbd: ${DEV[krbd]} not at size"
fi
if want rbd-nbd; then
  out=$(b 120 rbd-nbd --try-netlink map "$SPEC" -c "$CONF" -k "$KEYRING" 2>> "$WORK/rbd-nbd-map.err") \
    || { cat "$WORK/rbd-nbd-map.err" >&2; die "rbd-nbd map"; }
  DEV[rbd-nbd]=$(sed -n 1p <<< "$out")
  wait_size "${DEV[rbd-nbd]}" "$BYTES" 30 || die "rbd-nbd: not at size"
  PID[rbd-nbd]=$(b 30 rbd-nbd list-mapped --format json | jq -r --arg d "${DEV[rbd-nbd]}" '.[] | select(.device == $d) | .id')
  [ -n "${PID[rbd-nbd]}" ] && alive "${PID[rbd-nbd]}" || die "rbd-nbd: no process"
fi
daemon_ready() {
  [ -S "$SOCK" ] || return 1
  [ "$(b 10 "$RBDNBD" status --control-socket "$SOCK" --format json 2>/dev/null | jq -r '.pid // empty' 2>/dev/null)" = "$STARTED_PID" ]
}
MAP_HAS_UBLK=0
"$RBDNBD" map --help 2>&1 | grep -qiE -- '(-t|--type|--device-type)[ ,=].*ublk' && MAP_HAS_UBLK=1
if want nbdd-1c || want nbdd-2c || { want ublk && [ "$MAP_HAS_UBLK" = 1 ]; }; then
  start_ready "the daemon" "$WORK/daemon.log" 90 daemon_ready -- env -u CEPH_CONF \
    "$RBDNBD" daemon --control-socket "$SOCK" --state-dir "$STATE" --log-level info ${KP_DAEMON_ARGS:-}
  DAEMON_PID=$STARTED_PID
  say "rbd-nbdd daemon (pid $DAEMON_PID)"
fi
nbdd_map() {   # nbdd_map NAME SPEC ARGS...
  local name=$1 spec=$2 out; shift 2
  out=$(nbdd map -c "$CONF" -k "$KEYRING" "$@" "$spec" 2>> "$WORK/map.err") || { tail -n 5 "$WORK/map.err" >&2; die "rbd-nbdd map $*"; }
  DEV[$name]=$(sed -n 1p <<< "$out"); PID[$name]=$DAEMON_PID
  wait_size "${DEV[$name]}" "$BYTES" 30 || die "$name: ${DEV[$name]} not at size"
}
want nbdd-1c && nbdd_map nbdd-1c "$SPEC"
want nbdd-2c && nbdd_map nbdd-2c "${SPEC}2" --connections 2
if want ublk; then
  if [ "$MAP_HAS_UBLK" = 1 ]; then
    nbdd_map ublk "${SPEC}3" -t ublk
    echo "ublk_how=\`rbd-nbdd map -t ublk\`, in the same daemon${KP_DAEMON_ARGS:+ (daemon $KP_DAEMON_ARGS)}" >> "$RAW/env"
  else
    "$RBDNBD" serve -s "$WORK/serve.sock" --rbd "${SPEC}3" -c "$CONF" -k "$KEYRING" --ublk \
      > "$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    for i in $(seq 1 600); do
      d=$(ls /sys/block 2>/dev/null | grep -m1 '^ublkb')
      [ -n "$d" ] && [ "$(dev_bytes "/dev/$d")" = "$BYTES" ] && break
      alive "$SERVE_PID" || { cat "$WORK/serve.log" >&2; die "rbd-nbdd serve --ublk exited"; }
      sleep 0.1
    done
    [ -n "$d" ] && [ -b "/dev/$d" ] || { cat "$WORK/serve.log" >&2; die "no /dev/ublkbN from serve --ublk"; }
    DEV[ublk]=/dev/$d; PID[ublk]=$SERVE_PID
    echo "ublk_how=\`rbd-nbdd serve --ublk --rbd rbd/bench3\` (a separate process; map -t ublk not there yet)" >> "$RAW/env"
  fi
fi
# one I/O scheduler for all: none (the kernel gives single-queue devices mq-deadline, and
# nbd's ones here would otherwise differ from krbd's and ublk's)
for p in "${PATHS[@]}"; do
  d=$(basename "${DEV[$p]}"); q=/sys/block/$d/queue
  echo none > "$q/scheduler" 2>/dev/null || say "WARNING: cannot set scheduler none on $d"
  echo "$p $d lbs=$(cat $q/logical_block_size) max_sectors_kb=$(cat $q/max_sectors_kb) nr_requests=$(cat $q/nr_requests) scheduler=$(cat $q/scheduler) wc=$(cat $q/write_cache) hwq=$(ls /sys/block/$d/mq 2>/dev/null | wc -l) pid=${PID[$p]:-kernel}"
done > "$RAW/queues"
cat "$RAW/queues" >&2
want=
for p in "${PATHS[@]}"; do
  got=$(b 60 dd if="${DEV[$p]}" bs=1M skip=1 count=1 iflag=direct status=none | sha256sum | cut -c1-16)
  [ -n "$want" ] || want=$got
  [ "$got" = "$want" ] || die "$p (${DEV[$p]}) reads $got at 1 MiB, ${PATHS[0]} read $want"
done
say "all ${#PATHS[@]} devices read the same data"

SNAP=$WORK/snap.sh
cat > "$SNAP" <<'EOS'
#!/bin/sh
srv=/proc/${KP_SNAP_PID:-none}/stat
[ -n "$KP_SNAP_PID" ] || srv=/dev/null
exec awk -v tag="$1" -v srv="$srv" -v havesrv="${KP_SNAP_PID:+1}" '
  FILENAME == "/proc/stat" && $1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; busy = t - $5 - $6; tot = t }
  FILENAME == srv && havesrv { sub(/.*\) /, ""); p = $12 + $13 }
  END { print tag, (havesrv ? p : "na"), busy, tot >> ENVIRON["KP_SNAP_OUT"] }' /proc/stat "$srv"
EOS
chmod +x "$SNAP"
take_lock() {
  b 60 dd if="$1" of="$WORK/blk0" bs=4k count=1 iflag=direct status=none \
    && b 60 dd if="$WORK/blk0" of="$1" bs=4k count=1 oflag=direct conv=notrunc status=none
}

ALL_WORKLOADS=(
  "4k-randread-QD1    randread   4k  1"
  "4k-randread-QD32   randread   4k  32"
  "4k-randwrite-QD1   randwrite  4k  1"
  "4k-randwrite-QD32  randwrite  4k  32"
  "1M-seqread-QD8     read       1M  8"
  "1M-seqwrite-QD8    write      1M  8"
)
np=${#PATHS[@]}
echo "load0=$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW/env"
T_RUN=$SECONDS
ri=0
for ((round = 1; round <= ROUNDS; round++)); do
  for w in "${ALL_WORKLOADS[@]}"; do
    read -r name rw bs qd <<< "$w"
    if [ -n "${KP_WORKLOADS:-}" ] && [[ ",$KP_WORKLOADS," != *",$name,"* ]]; then continue; fi
    for ((k = 0; k < np; k++)); do
      p=${PATHS[$(( (ri + k) % np ))]}
      dev=${DEV[$p]} pid=${PID[$p]:-}
      json=$RAW/$name.$p.r$round.json
      take_lock "$dev" || say "WARNING: lock pre-write on $dev failed"
      [ -z "$pid" ] || alive "$pid" || die "$p: its process (pid $pid) is gone"
      rc=0
      rm -f "$json.snap"
      (cd "$WORK" && export KP_SNAP_OUT=$json.snap KP_SNAP_PID=$pid &&
        b $((RUNTIME + 120)) fio --name="$name" --filename="$dev" --direct=1 --ioengine="$ENGINE" --rw="$rw" --bs="$bs" \
          --iodepth="$qd" --numjobs=1 --size="$BYTES" --time_based --runtime="$RUNTIME" \
          --norandommap --randrepeat=0 --lat_percentiles=1 --exec_prerun="$SNAP pre" --exec_postrun="$SNAP post" \
          --output-format=json --output="$json" > /dev/null 2> "$json.err") || rc=$?
      if [ "$rc" = 0 ] && [ "$(wc -l < "$json.snap" 2>/dev/null)" = 2 ]; then
        read -r _ c0 s0 a0 < <(sed -n 1p "$json.snap")
        read -r _ c1 s1 a1 < <(sed -n 2p "$json.snap")
        if [ "$c0" = na ]; then gw=na; else gw=$((c1 - c0)); fi
        echo "$gw $((s1 - s0)) $((a1 - a0))" > "$json.cpu"
      elif [ "$rc" = 0 ]; then
        rc=98
      fi
      if [ "$rc" != 0 ]; then
        say "FAILED: r$round $name $p: fio exit $rc: $(head -c 300 "$json.err")"
        echo "r$round $name $p rc=$rc" >> "$RAW/failures"
        rm -f "$json"
      else
        say "$(printf 'r%d %-18s %-8s %7.0f IOPS' "$round" "$name" "$p" "$(jq '.jobs[0] | .read.iops + .write.iops' "$json")")"
      fi
    done
    ri=$((ri + 1))
  done
done
echo "load1=$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW/env"
echo "perf_seconds=$((SECONDS - T_RUN))" >> "$RAW/env"
say "interleaved runs: $((SECONDS - T_RUN)) s"
exit 0
