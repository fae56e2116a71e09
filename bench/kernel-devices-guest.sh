#!/bin/bash
# bench/kernel-devices-guest.sh - the in-guest half of bench/kernel-devices.sh. Runs INSIDE
# the user-mode Linux guest (tests/e2e/uml/run.sh); never on the host. It writes raw results
# (fio JSON, CPU ticks, RSS figures) to $KD_RAW; the host side makes the tables.
#
# 1. A memstore dev cluster in /run/cluster; image rbd/bench (KD_IMAGE_MIB, default 512 MiB,
#    default features: layering,exclusive-lock,object-map,fast-diff,deep-flatten, which krbd
#    in 6.1 maps), prefilled by one full sequential write (fio --ioengine=rbd, 4 MiB, QD16).
# 2. The same image mapped three ways AT ONCE, plus a RAM disk:
#      rbd-nbdd  `rbd-nbdd map --control-socket ... rbd/bench` (one daemon, 1 connection)
#      rbd-nbd   `rbd-nbd --try-netlink map rbd/bench` (Ceph's, one process per image)
#      krbd      `rbd map -o noudev rbd/bench`
#      brd       /dev/ram0 of the same size, filled by one sequential write
#    Only ONE device runs I/O at a time. The image's exclusive lock moves to whichever client
#    writes: before every run on an RBD device one 4 KiB block is read and written back (same
#    data) through that device, so the lock hand-over happens before fio starts, not inside
#    the measured run. Reads need no lock. librbd's cache is off for both librbd clients
#    (rbd_cache = false in their conf), as krbd has none.
# 3. The interleaved run: for every workload and engine the four devices run in turn, in an
#    order rotated from one (workload, engine) to the next.
# 4. Memory: a fresh daemon; its VmRSS idle, with 1 and with 16 images mapped (each image
#    64 MiB with 4 MiB written through its device); then the same 16 images through 16
#    rbd-nbd processes, and the sum of their VmRSS.
#
# Settings (environment, passed by the host side through VM_ENV):
#   RUNTIME (10) seconds per fio run   KD_IMAGE_MIB (512)   KD_RAW (output dir, required)
#   RBDNBD (the rbd-nbdd binary)       KD_WORKLOADS / KD_ENGINES / KD_DEVICES (comma lists)
#   KD_SKIP_MEM=1 skip the memory part; KD_SKIP_PERF=1 skip the fio part
set -uo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C

RUNTIME=${RUNTIME:-10}
IMAGE_MIB=${KD_IMAGE_MIB:-512}
RAW=${KD_RAW:?KD_RAW not set}
RBDNBD=${RBDNBD:?RBDNBD not set}
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, _alive, term_wait (builtins: execs cost here)
DEV_CLUSTER=$ROOT/deploy/dev-cluster.sh
CL=/run/cluster
SOCK=/run/rbdnbdd.sock
STATE=/run/rbdnbdd-state
WORK=/run/kd
POOL=rbd IMAGE=bench
NMEM=16
mkdir -p "$RAW" "$WORK"

T0=$SECONDS
say() { printf '[kd-guest %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# b SECS CMD... : CMD bounded by SECS (TERM, KILL 10 s later)
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }
[ "${VM_GUEST:-}" = 1 ] || die "runs inside the UML guest: use bench/kernel-devices.sh"
[ -x "$RBDNBD" ] || die "no rbd-nbdd at $RBDNBD"
CLK_TCK=$(getconf CLK_TCK)
echo "$CLK_TCK" > "$RAW/clk_tck"

DAEMON_PID=
CEPHNBD_DEV= KRBD_DEV= BRD_DEV=
declare -a NBDD_MEM_DEVS=() RBDNBD_MEM_DEVS=()

rbd_() { b 120 rbd -c "$CONF" --keyring "$CEPH_KEYRING" "$@"; }
nbdd() { local sub=$1; shift; b 180 "$RBDNBD" "$sub" --control-socket "$SOCK" "$@"; }
alive() { _alive "$1"; }
# sys_ticks : "busy total" jiffies of the whole (1-vCPU) guest, from /proc/stat
sys_ticks() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
dev_bytes() { echo $(( $(cat "/sys/block/$(basename "$1")/size" 2>/dev/null || echo 0) * 512 )); }
wait_size() {   # wait_size DEV BYTES SECS
  local dl=$((SECONDS + $3))
  until [ "$(dev_bytes "$1")" = "$2" ]; do
    [ "$SECONDS" -lt "$dl" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------------------
# Teardown: every mapping, bounded; the daemon; the cluster
# ---------------------------------------------------------------------------------------
rbdnbd_unmap_all() {
  local d
  for d in $(b 30 rbd-nbd list-mapped --format json 2>/dev/null | jq -r '.[].device' 2>/dev/null); do
    b 60 rbd-nbd unmap "$d" >&2 || say "rbd-nbd unmap $d failed"
  done
}
nbdd_unmap_all() {
  local d
  [ -n "$DAEMON_PID" ] && alive "$DAEMON_PID" || return 0
  for d in $(nbdd list-mapped --format json 2>/dev/null | jq -r '.[].device' 2>/dev/null); do
    nbdd unmap --force "$d" >&2 || say "rbd-nbdd unmap $d failed"
  done
}
krbd_unmap_all() {
  local d
  for d in /sys/bus/rbd/devices/*; do
    [ -e "$d" ] || continue
    b 60 rbd unmap -o noudev "/dev/rbd$(basename "$d")" >&2 || say "rbd unmap rbd$(basename "$d") failed"
  done
}
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  if alive "$DAEMON_PID"; then
    kill -TERM "$DAEMON_PID"
    _wait_exit "$DAEMON_PID" 30 || { say "daemon did not exit in 30 s of SIGTERM: SIGKILL"; kill -KILL "$DAEMON_PID"; }
  fi
  local rc=0
  wait "$DAEMON_PID" 2>/dev/null || rc=$?
  [ "$rc" = 0 ] || say "daemon (pid $DAEMON_PID) exited $rc"
  echo "$rc" >> "$RAW/daemon-exit-codes"
  DAEMON_PID=
}
cleanup() {
  say "cleanup (exit $EXIT_RC)"
  krbd_unmap_all
  rbdnbd_unmap_all
  nbdd_unmap_all
  stop_daemon
  local d
  for d in /sys/block/nbd*; do   # anything the kernel still holds
    [ -e "$d/pid" ] && { say "$(basename "$d") still connected: nbd-client -d"; b 30 nbd-client -d "/dev/$(basename "$d")" >&2; }
  done
  [ -d "$CL" ] && b 60 bash "$DEV_CLUSTER" wipe "$CL" >/dev/null 2>&1
  cp "$WORK"/*.log "$RAW"/ 2>/dev/null
  dmesg > "$RAW/dmesg.txt" 2>/dev/null
  if grep -nE 'WARNING:|BUG:|Oops|general protection|blocked for more than|I/O error|Dead connection|timed out' "$RAW/dmesg.txt" > "$RAW/dmesg-findings.txt"; then
    say "dmesg findings (also in dmesg-findings.txt):"; head -n 20 "$RAW/dmesg-findings.txt" >&2
  fi
  say "done in $((SECONDS - T0)) s"
}
on_exit cleanup
trap 'say "SIGTERM (guest timer?)"; exit 143' TERM

# ---------------------------------------------------------------------------------------
# Modules, cluster, image
# ---------------------------------------------------------------------------------------
b 30 modprobe nbd nbds_max=40 max_part=0 || die "modprobe nbd"
b 30 modprobe rbd || die "modprobe rbd"
b 30 modprobe brd rd_nr=1 rd_size=$((IMAGE_MIB * 1024)) || die "modprobe brd"
for i in $(seq 1 100); do [ -b /dev/nbd39 ] && [ -b /dev/ram0 ] && break; sleep 0.1; done

say "dev cluster (memstore) in $CL"
RBDNBD_CLUSTER_DIR=$CL DEV_CLUSTER_PORT=14200 DEV_CLUSTER_TIMEOUT=120 \
  b 240 bash "$DEV_CLUSTER" start "$CL" > "$WORK/cluster-start.log" 2>&1 \
  || { tail -n 30 "$WORK/cluster-start.log" >&2; die "the dev cluster did not start"; }
eval "$(bash "$DEV_CLUSTER" env "$CL")"
unset CEPH_ARGS
# every librbd client (rbd-nbdd, rbd-nbd, fio's prefill) reads this conf: cache off
CONF=$WORK/client.conf
cp "$CEPH_CONF" "$CONF"
printf '\n[client]\nrbd_cache = false\n' >> "$CONF"
export CEPH_CONF=$CONF
say "cluster up (mon $CEPH_MON_HOST)"

OSD_PID=$(cat "$CL/run/osd.0.pid" 2>/dev/null || pgrep -x ceph-osd | head -1)
rbd_ create --size "${IMAGE_MIB}M" "$POOL/$IMAGE" || die "rbd create"
rbd_ info --format json "$POOL/$IMAGE" | jq -r '.features | join(",")' > "$RAW/features"
say "image $POOL/$IMAGE ${IMAGE_MIB} MiB, features $(cat "$RAW/features")"

{
  echo "kernel=$(uname -r)"
  echo "fio=$(fio --version)"
  echo "ceph=$(rbd --version | awk '{print $3}')"
  echo "rbdnbdd=$("$RBDNBD" version 2>&1 | head -1)"
  echo "vcpus=$(nproc)"
  echo "mem_kib=$(awk '/MemTotal/{print $2}' /proc/meminfo)"
  echo "runtime=$RUNTIME"
  echo "image_mib=$IMAGE_MIB"
} > "$RAW/env"

daemon_ready() {   # status answers with the pid of the daemon being started
  [ -S "$SOCK" ] || return 1
  [ "$(b 10 "$RBDNBD" status --control-socket "$SOCK" --format json 2>/dev/null | jq -r '.pid // empty' 2>/dev/null)" = "$STARTED_PID" ]
}
start_daemon() {
  DAEMON_LOG=$WORK/daemon.$1.log
  start_ready "the daemon" "$DAEMON_LOG" 60 daemon_ready -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_MON_HOST \
    "$RBDNBD" daemon --control-socket "$SOCK" --state-dir "$STATE" --log-level info
  DAEMON_PID=$STARTED_PID
  say "rbd-nbdd daemon ready (pid $DAEMON_PID)"
}

# nbdd_map SPEC BYTES -> prints the device
nbdd_map() {
  local out
  out=$(nbdd map -c "$CONF" -k "$CEPH_KEYRING" "$1" 2>> "$WORK/map.err") \
    || { tail -n 5 "$WORK/map.err" >&2; die "rbd-nbdd map $1 failed"; }
  out=$(sed -n 1p <<< "$out")
  [[ "$out" =~ ^/dev/nbd[0-9]+$ ]] || die "rbd-nbdd map printed '$out'"
  wait_size "$out" "$2" 30 || die "rbd-nbdd: $out not at size $2 (sysfs says $(dev_bytes "$out"))"
  echo "$out"
}
# rbdnbd_map SPEC BYTES -> prints "device pid"
rbdnbd_map() {
  local out pid
  out=$(b 120 rbd-nbd --try-netlink map "$1" -c "$CONF" -k "$CEPH_KEYRING" 2>> "$WORK/rbd-nbd-map.err") \
    || { tail -n 5 "$WORK/rbd-nbd-map.err" >&2; die "rbd-nbd map $1 failed"; }
  out=$(sed -n 1p <<< "$out")
  [[ "$out" =~ ^/dev/nbd[0-9]+$ ]] || die "rbd-nbd map printed '$out'"
  wait_size "$out" "$2" 30 || die "rbd-nbd: $out not at size $2"
  pid=$(b 30 rbd-nbd list-mapped --format json | jq -r --arg d "$out" '.[] | select(.device == $d) | .id')
  [ -n "$pid" ] && alive "$pid" || die "rbd-nbd: no process for $out (list-mapped: $(rbd-nbd list-mapped 2>&1))"
  echo "$out $pid"
}
krbd_map() {
  local out
  out=$(rbd_ map -o noudev "$1" 2>> "$WORK/krbd-map.err") || { tail -n 5 "$WORK/krbd-map.err" >&2; die "rbd map $1 failed"; }
  out=$(sed -n 1p <<< "$out")
  [ -b "$out" ] || die "rbd map printed '$out'"
  wait_size "$out" "$2" 30 || die "krbd: $out not at size $2"
  echo "$out"
}

BYTES=$((IMAGE_MIB << 20))
if [ "${KD_SKIP_PERF:-0}" != 1 ]; then
  say "prefill: ${IMAGE_MIB} MiB sequential 4 MiB writes through librbd (fio --ioengine=rbd)"
  t0=$SECONDS
  b 600 fio --name=prefill --ioengine=rbd --clientname=admin --pool="$POOL" --rbdname="$IMAGE" \
    --rw=write --bs=4M --iodepth=16 --size="${IMAGE_MIB}M" --output-format=json \
    --output="$RAW/prefill-rbd.json" > /dev/null 2> "$WORK/prefill.err" \
    || { cat "$WORK/prefill.err" >&2; die "prefill failed"; }
  say "prefilled in $((SECONDS - t0)) s"
  t0=$SECONDS
  BRD_DEV=/dev/ram0
  b 300 dd if=/dev/urandom of="$BRD_DEV" bs=1M count="$IMAGE_MIB" oflag=direct status=none || die "brd fill"
  say "brd filled in $((SECONDS - t0)) s"

  # -------------------------------------------------------------------------------------
  # Map the image three ways, all at once
  # -------------------------------------------------------------------------------------
  start_daemon perf
  NBDD_DEV=$(nbdd_map "$POOL/$IMAGE" "$BYTES") || die "rbd-nbdd map"
  say "rbd-nbdd: $NBDD_DEV"
  read -r CEPHNBD_DEV CEPHNBD_PID < <(rbdnbd_map "$POOL/$IMAGE" "$BYTES") || die "rbd-nbd map"
  say "rbd-nbd: $CEPHNBD_DEV (pid $CEPHNBD_PID)"
  KRBD_DEV=$(krbd_map "$POOL/$IMAGE" "$BYTES") || die "krbd map"
  say "krbd: $KRBD_DEV"
  for d in "$NBDD_DEV" "$CEPHNBD_DEV" "$KRBD_DEV" "$BRD_DEV"; do
    q=/sys/block/$(basename "$d")/queue
    echo "$(basename "$d") lbs=$(cat $q/logical_block_size) max_sectors_kb=$(cat $q/max_sectors_kb) nr_requests=$(cat $q/nr_requests) scheduler=$(cat $q/scheduler) wc=$(cat $q/write_cache) hwq=$(ls /sys/block/$(basename "$d")/mq 2>/dev/null | wc -l)"
  done > "$RAW/queues"
  cat "$RAW/queues" >&2
  rbd_ status "$POOL/$IMAGE" > "$RAW/watchers" 2>&1

  # all three RBD devices read the same 1 MiB at offset 1 MiB (they serve one image)
  want=
  for d in "$NBDD_DEV" "$CEPHNBD_DEV" "$KRBD_DEV"; do
    got=$(b 30 dd if="$d" bs=1M skip=1 count=1 iflag=direct status=none | sha256sum | cut -c1-16)
    [ -n "$want" ] || want=$got
    [ "$got" = "$want" ] || die "$d reads $got at 1 MiB, $NBDD_DEV read $want"
  done
  say "all three RBD devices read the same data"

  # the CPU sampler fio runs before and after the I/O: "TAG server-ticks osd-ticks busy total"
  SNAP=$WORK/snap.sh
  cat > "$SNAP" <<'EOS'
#!/bin/sh
srv=/proc/${KD_SNAP_PID:-none}/stat
[ -n "$KD_SNAP_PID" ] || srv=/dev/null
osd=/proc/$KD_SNAP_OSD/stat
exec awk -v tag="$1" -v srv="$srv" -v osd="$osd" -v havesrv="${KD_SNAP_PID:+1}" '
  FILENAME == "/proc/stat" && $1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; busy = t - $5 - $6; tot = t }
  # /proc/PID/stat: fields counted after the comm, which ends at the LAST ")" (it may hold
  # spaces): utime and stime, fields 14 and 15, are then $12 and $13
  FILENAME == osd { sub(/.*\) /, ""); o = $12 + $13 }
  FILENAME == srv && havesrv { sub(/.*\) /, ""); p = $12 + $13 }
  END { print tag, (havesrv ? p : "na"), o, busy, tot >> ENVIRON["KD_SNAP_OUT"] }' /proc/stat "$osd" "$srv"
EOS
  chmod +x "$SNAP"
  dev_of() { case $1 in rbd-nbdd) echo "$NBDD_DEV" ;; rbd-nbd) echo "$CEPHNBD_DEV" ;; krbd) echo "$KRBD_DEV" ;; brd) echo "$BRD_DEV" ;; esac; }
  pid_of() { case $1 in rbd-nbdd) echo "$DAEMON_PID" ;; rbd-nbd) echo "$CEPHNBD_PID" ;; *) echo ;; esac; }
  # take_lock DEV : read block 0 and write it back through DEV (same data), so that the
  # image's exclusive lock is on this client before the measured run starts
  take_lock() {
    b 60 dd if="$1" of="$WORK/blk0" bs=4k count=1 iflag=direct status=none \
      && b 60 dd if="$WORK/blk0" of="$1" bs=4k count=1 oflag=direct conv=notrunc status=none
  }

  #          name               rw         bs  iodepth
  ALL_WORKLOADS=(
    "4k-randread-QD1    randread   4k  1"
    "4k-randread-QD32   randread   4k  32"
    "4k-randwrite-QD1   randwrite  4k  1"
    "4k-randwrite-QD32  randwrite  4k  32"
    "1M-seqread-QD8     read       1M  8"
    "1M-seqwrite-QD8    write      1M  8"
  )
  ENGINES=${KD_ENGINES:-libaio,io_uring}
  DEVICES=(rbd-nbdd rbd-nbd krbd brd)
  if [ -n "${KD_DEVICES:-}" ]; then IFS=, read -ra DEVICES <<< "$KD_DEVICES"; fi
  nd=${#DEVICES[@]}
  LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  echo "load0=$LOAD0" >> "$RAW/env"
  T_RUN=$SECONDS
  ri=0
  for w in "${ALL_WORKLOADS[@]}"; do
    read -r name rw bs qd <<< "$w"
    if [ -n "${KD_WORKLOADS:-}" ] && [[ ",$KD_WORKLOADS," != *",$name,"* ]]; then continue; fi
    for eng in ${ENGINES//,/ }; do
      for ((k = 0; k < nd; k++)); do
        devname=${DEVICES[$(( (ri + k) % nd ))]}
        dev=$(dev_of "$devname"); pid=$(pid_of "$devname")
        json=$RAW/$name.$eng.$devname.json
        case $devname in rbd-nbdd | rbd-nbd | krbd) take_lock "$dev" || say "WARNING: lock pre-write on $dev failed" ;; esac
        [ -z "$pid" ] || alive "$pid" || die "$devname: its process (pid $pid) is gone"
        rc=0
        rm -f "$json.snap"
        # CPU is sampled by fio itself (exec_prerun/exec_postrun), just before the first I/O
        # and just after the last: fio's start-up (slow in UML) stays out of the window.
        (cd "$WORK" && export KD_SNAP_OUT=$json.snap KD_SNAP_PID=$pid KD_SNAP_OSD=$OSD_PID &&
          b $((RUNTIME + 90)) /usr/bin/time -f '%U %S' -o "$json.fiocpu" \
          fio --name="$name" --filename="$dev" --direct=1 --ioengine="$eng" --rw="$rw" --bs="$bs" \
            --iodepth="$qd" --numjobs=1 --size="$BYTES" --time_based --runtime="$RUNTIME" \
            --norandommap --randrepeat=0 --lat_percentiles=1 --exec_prerun="$SNAP pre" --exec_postrun="$SNAP post" \
            --output-format=json --output="$json" > /dev/null 2> "$json.err") || rc=$?
        if [ "$rc" = 0 ] && [ "$(wc -l < "$json.snap" 2>/dev/null)" = 2 ]; then
          read -r _ c0 o0 s0 a0 < <(sed -n 1p "$json.snap")
          read -r _ c1 o1 s1 a1 < <(sed -n 2p "$json.snap")
          if [ "$c0" = na ]; then gw=na; else gw=$((c1 - c0)); fi
          echo "$gw $((o1 - o0)) $((s1 - s0)) $((a1 - a0))" > "$json.cpu"
        elif [ "$rc" = 0 ]; then
          say "WARNING: no CPU samples from fio's exec_prerun/postrun"; rc=98
        fi
        if [ "$rc" != 0 ]; then
          say "FAILED: $name $eng $devname: fio exit $rc: $(head -c 300 "$json.err")"
          echo "$name $eng $devname rc=$rc" >> "$RAW/failures"
          rm -f "$json"
        else
          say "$(printf '%-18s %-8s %-8s %7.0f IOPS' "$name" "$eng" "$devname" \
                 "$(jq '.jobs[0] | .read.iops + .write.iops' "$json")")"
        fi
      done
      ri=$((ri + 1))
    done
  done
  echo "load1=$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW/env"
  echo "perf_seconds=$((SECONDS - T_RUN))" >> "$RAW/env"
  say "interleaved run: $((SECONDS - T_RUN)) s"

  echo "$(rss_kib "$DAEMON_PID") $(hwm_kib "$DAEMON_PID")" > "$RAW/perf-daemon-rss"
  echo "$(rss_kib "$CEPHNBD_PID") $(hwm_kib "$CEPHNBD_PID")" > "$RAW/perf-rbdnbd-rss"
  krbd_unmap_all
  rbdnbd_unmap_all
  nbdd_unmap_all
  stop_daemon
fi

# ---------------------------------------------------------------------------------------
# Memory: one daemon with 1 and 16 devices vs 16 rbd-nbd processes
# ---------------------------------------------------------------------------------------
if [ "${KD_SKIP_MEM:-0}" != 1 ]; then
  MB=$((64 << 20))
  for i in $(seq -w 1 $NMEM); do rbd_ create --size 64M "$POOL/mem$i" || die "rbd create mem$i"; done
  write4m() { b 120 dd if=/dev/urandom of="$1" bs=1M count=4 oflag=direct status=none || die "4 MiB write to $1"; }
  settle() { sleep 2; }   # let librbd's threads go idle before reading RSS

  start_daemon mem
  settle
  echo "idle $(rss_kib "$DAEMON_PID")" > "$RAW/mem-rbdnbdd"
  for i in $(seq -w 1 $NMEM); do
    d=$(nbdd_map "$POOL/mem$i" "$MB") || die "rbd-nbdd map mem$i"; NBDD_MEM_DEVS+=("$d")
    write4m "$d"
    if [ "$i" = 01 ]; then settle; echo "1 $(rss_kib "$DAEMON_PID")" >> "$RAW/mem-rbdnbdd"; fi
  done
  settle
  echo "16 $(rss_kib "$DAEMON_PID")" >> "$RAW/mem-rbdnbdd"
  echo "hwm $(hwm_kib "$DAEMON_PID")" >> "$RAW/mem-rbdnbdd"
  echo "threads $(awk '/^Threads/{print $2}' "/proc/$DAEMON_PID/status")" >> "$RAW/mem-rbdnbdd"
  say "rbd-nbdd daemon RSS: $(tr '\n' ' ' < "$RAW/mem-rbdnbdd")(KiB)"
  nbdd_unmap_all
  stop_daemon

  : > "$RAW/mem-rbdnbd"
  pids=()
  for i in $(seq -w 1 $NMEM); do
    read -r d p < <(rbdnbd_map "$POOL/mem$i" "$MB") || die "rbd-nbd map mem$i"
    pids+=("$p")
    write4m "$d"
  done
  settle
  for p in "${pids[@]}"; do
    echo "$p $(rss_kib "$p") $(awk '/^Threads/{print $2}' "/proc/$p/status")" >> "$RAW/mem-rbdnbd"
  done
  say "rbd-nbd: 16 processes, total VmRSS $(awk '{s+=$2} END {print s}' "$RAW/mem-rbdnbd") KiB"
  rbdnbd_unmap_all
fi
exit 0
