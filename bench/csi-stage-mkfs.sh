#!/bin/bash
# bench/csi-stage-mkfs.sh - what NodeStage's mkfs costs on a fresh RBD image, per device type:
# the commands the plugin runs (csi/fs_tools.cc), timed by hand in ONE guest, each on a
# fresh image mapped through the rbd-nbdd daemon, so bench/csi-stage.sh's "mkfs" share can
# be taken apart and a cut measured before it goes into csi/.
#
# Per device type (nbd, ublk) and variant, on a fresh CM_SIZE image: the map (rbd-nbdd map
# -t TYPE, wall time), then the variant's mkfs (wall time), with the device's
# /sys/block/DEV/stat deltas (write requests and MiB written, discard requests and MiB,
# flushes), then mount + umount (not for the zero-* variants). The device's queue limits (discard / write-zeroes max bytes) are logged once.
# Variants (CM_VARIANTS, comma list):
#   xfs        mkfs.xfs -K              (the plugin's default today)
#   xfs-disc   mkfs.xfs                 (with the discard of the whole device)
#   ext4       mkfs.ext4 -m0 -Enodiscard,lazy_itable_init=1,lazy_journal_init=1
#   zero-thick fallocate -z -l 64M: what mkfs.xfs does to clear its 64 MiB log (xfsprogs 6.1
#              refuses a smaller log on a filesystem of 300 MB or more: "Log size must be at
#              least 64MB"): FALLOC_FL_ZERO_RANGE, i.e. WRITE_ZEROES with NOUNMAP (nbd
#              NO_HOLE), which rbd-nbdd honours with a thick rbd_aio_write_zeroes
#   zero-thin  fallocate -p -l 64M: the same range as WRITE_ZEROES without NOUNMAP (a plain
#              rbd_aio_write_zeroes), i.e. what the log clear would cost if it were thin
# (the zero-* variants are skipped on ram: brd has no WRITE_ZEROES.)
#
#   bench/csi-stage-mkfs.sh            (Debian 6.12 qemu guest, tests/e2e/qemu/run.sh)
#
# Device type ram: /dev/ram0 (brd, CM_SIZE, discarded before each run): the same commands
# without Ceph, the daemon or a userspace block device, i.e. the guest's own floor.
#
# Settings (environment): CM_ROUNDS=2, CM_SIZE=1G, CM_DEVICE_TYPES=ram,nbd,ublk,
# CM_VARIANTS=xfs,xfs-disc,ext4,zero-thick,zero-thin, CM_STRACE=0 (1: each command under
# `strace -f -c -w`, its syscall wall-time summary logged; slows it in an emulated guest), RBDNBD_BIN (default build/gateway/control/rbd-nbdd),
# VM_MEM=3G, VM_TIMEOUT=1800. Output: the table on stdout and in
# bench/results/csi-stage-mkfs-<date>.md, the raw files in build/bench-csi-stage-mkfs/<date>/.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
CM_ROUNDS=${CM_ROUNDS:-2}
CM_SIZE=${CM_SIZE:-1G}
CM_DEVICE_TYPES=${CM_DEVICE_TYPES:-ram,nbd,ublk}
CM_VARIANTS=${CM_VARIANTS:-xfs,xfs-disc,ext4,zero-thick,zero-thin}
CM_STRACE=${CM_STRACE:-0}

if [ "${VM_GUEST:-}" = 1 ]; then
  . "$ROOT/tests/e2e/lib.sh"
  . "$ROOT/tests/e2e/lib_map.sh"
  case ",$CM_DEVICE_TYPES," in *,ublk,*) load_ublk ;; esac
  case ",$CM_DEVICE_TYPES," in *,ram,*) load_brd $(( $(numfmt --from=iec "$CM_SIZE") >> 20 )) ;; esac
  cluster_up
  start_daemon
  TSV=$E2E_WORK/mkfs.tsv
  echo "device variant round map_s mkfs_s mount_s umount_s w_req w_mib d_req d_mib flush" > "$TSV"
  stat_of() { read -r -a _S < "/sys/block/${1##*/}/stat"; }   # fields: see Documentation/block/stat.rst
  for r in $(seq 1 "$CM_ROUNDS"); do
    for v in ${CM_VARIANTS//,/ }; do
      for dt in ${CM_DEVICE_TYPES//,/ }; do
        [[ "$dt" = ram && "$v" = zero-* ]] && continue
        img=rbd/mk-$dt-$v-$r
        t0=$EPOCHREALTIME
        if [ "$dt" = ram ]; then   # the reference: no network, no daemon; zeroed first (discard)
          dev=/dev/ram0
          blkdiscard "$dev" 2> /dev/null || t 120 dd if=/dev/zero of="$dev" bs=1M oflag=direct status=none
          t0=$EPOCHREALTIME
        else
          rbd_ create --size "$CM_SIZE" "$img" || fail "rbd create $img"
          t0=$EPOCHREALTIME
          dev=$(t 180 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" \
                  -t "$dt" "$img" 2> "$E2E_WORK/map.err" | sed -n 1p) || { cat "$E2E_WORK/map.err" >&2; fail "map $img"; }
        fi
        t1=$EPOCHREALTIME
        [ -b "$dev" ] || fail "map -t $dt $img gave '$dev'"
        q=/sys/block/${dev##*/}/queue
        [ "$r$v" != "1${CM_VARIANTS%%,*}" ] \
          || log "$dt $dev: discard_max_bytes $(cat $q/discard_max_bytes), write_zeroes_max_bytes $(cat $q/write_zeroes_max_bytes), max_sectors_kb $(cat $q/max_sectors_kb), nr_requests $(cat $q/nr_requests)"
        case $v in
          xfs) cmd=(mkfs.xfs -K "$dev") ;;
          xfs-disc) cmd=(mkfs.xfs "$dev") ;;
          zero-thick) cmd=(fallocate -z -o 0 -l 64M "$dev") ;;
          zero-thin) cmd=(fallocate -p -o 0 -l 64M "$dev") ;;
          ext4) cmd=(mkfs.ext4 -q -m0 -Enodiscard,lazy_itable_init=1,lazy_journal_init=1 "$dev") ;;
          *) fail "unknown variant $v" ;;
        esac
        stat_of "$dev"; s0=("${_S[@]}")
        t2=$EPOCHREALTIME
        st=()
        [ "$CM_STRACE" = 1 ] && st=(strace -f -c -w -o "$E2E_WORK/strace-$dt-$v-$r.txt")
        "${st[@]}" "${cmd[@]}" > "$E2E_WORK/mkfs-$dt-$v-$r.out" 2>&1 \
          || { cat "$E2E_WORK/mkfs-$dt-$v-$r.out" >&2; fail "${cmd[*]} failed"; }
        t3=$EPOCHREALTIME
        stat_of "$dev"; s1=("${_S[@]}")
        mkdir -p /mnt/mk
        t4=$EPOCHREALTIME t5=$t4 t6=$t4
        if [[ "$v" != zero-* ]]; then
          t 120 mount "$dev" /mnt/mk || fail "mount $dev"; t5=$EPOCHREALTIME
          t 120 umount /mnt/mk || fail "umount $dev"; t6=$EPOCHREALTIME
        fi
        [ "$dt" = ram ] || t 90 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "$dev" > /dev/null || fail "unmap $dev"
        w_req=$(( s1[4] - s0[4] )); w_mib=$(( (s1[6] - s0[6]) / 2048 ))
        d_req=$(( ${s1[11]:-0} - ${s0[11]:-0} )); d_mib=$(( (${s1[13]:-0} - ${s0[13]:-0}) / 2048 ))
        fl=$(( ${s1[15]:-0} - ${s0[15]:-0} ))
        line="$dt $v $r $(echo "$t1 - $t0" | bc) $(echo "$t3 - $t2" | bc) $(echo "$t5 - $t4" | bc) $(echo "$t6 - $t5" | bc) $w_req $w_mib $d_req $d_mib $fl"
        echo "$line" >> "$TSV"
        log "$line"
        [ "$CM_STRACE" != 1 ] \
          || log "  strace top: $(sed -n '3,6p' "$E2E_WORK/strace-$dt-$v-$r.txt" | awk '{printf "%s %ss; ", $NF, $2}')"
        [ "$dt" = ram ] || rbd_ rm --no-progress "$img" > /dev/null 2>&1 || log "rbd rm $img failed (ignored)"
      done
    done
  done
  stop_daemon
  pass
fi

say() { printf '[csi-stage-mkfs] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[[ "$CM_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "CM_ROUNDS must be a positive number"
SRC=${RBDNBD_BIN:-$ROOT/build/gateway/control/rbd-nbdd}
[ -x "$SRC" ] || die "no rbd-nbdd at $SRC"
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=$ROOT/build/bench-csi-stage-mkfs/$STAMP
mkdir -p "$OUT/bin"
cp "$SRC" "$OUT/bin/rbd-nbdd"   # a rebuild in the shared tree during the run must not change it
RBDNBD_BIN=$OUT/bin/rbd-nbdd
export RBDNBD_BIN CM_ROUNDS CM_SIZE CM_DEVICE_TYPES CM_VARIANTS CM_STRACE
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "one Debian 6.12 qemu guest; $CM_ROUNDS rounds x {$CM_VARIANTS} x {$CM_DEVICE_TYPES}; load $LOAD0; raw in $OUT"
rc=0
VM_MEM=${VM_MEM:-3G} VM_TIMEOUT=${VM_TIMEOUT:-1800} VM_QUIET=1 VM_OUT=$OUT \
VM_ENV="RBDNBD_BIN CM_ROUNDS CM_SIZE CM_DEVICE_TYPES CM_VARIANTS CM_STRACE" \
  "$ROOT/tests/e2e/qemu/run.sh" "$ROOT/bench/csi-stage-mkfs.sh" > "$OUT/host.log" 2>&1 < /dev/null || rc=$?
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$rc" = 0 ] && [ -s "$OUT/mkfs.tsv" ] || { tail -n 30 "$OUT/console.log" >&2; die "the guest run failed (exit $rc)"; }
OUT_MD=$ROOT/bench/results/csi-stage-mkfs-$STAMP.md
/usr/bin/python3 - "$OUT/mkfs.tsv" "$LOAD0" "$LOAD1" "$STAMP" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
  "$CM_ROUNDS" "$CM_SIZE" <<'EOF' | tee "$OUT_MD"
import statistics, sys
tsv, l0, l1, stamp, rev, rounds, size = sys.argv[1:]
head = open(tsv).readline().split()
rows = [dict(zip(head, l.split())) for l in open(tsv).read().splitlines()[1:] if l.strip()]
print(f"# mkfs on a fresh RBD image, per device type ({stamp} UTC, git {rev})\n")
print(f"bench/csi-stage-mkfs.sh: one Debian 6.12 qemu TCG guest (2 vCPUs), memstore cluster and rbd-nbdd "
      f"daemon inside, a fresh {size} image per command, {rounds} rounds. **Shared machine**: host load "
      f"{l0} / {l1} (before / after, 2 cores). Medians over the rounds; I/O counts from /sys/block/DEV/stat "
      "during the command (a WRITE_ZEROES counts as a write of its length; brd keeps no counts):\n")
print("| device | variant | map s | mkfs (or fallocate) s | mount s | write reqs | MiB written | discard reqs | MiB discarded | flushes |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
keys = []
for r in rows:
    if (r["device"], r["variant"]) not in keys:
        keys.append((r["device"], r["variant"]))
for d, v in keys:
    rs = [r for r in rows if (r["device"], r["variant"]) == (d, v)]
    m = lambda k, f=float: statistics.median(f(r[k]) for r in rs)
    print(f"| {d} | {v} | {m('map_s'):.2f} | {m('mkfs_s'):.2f} | {m('mount_s'):.2f} | {m('w_req', int):.0f} | "
          f"{m('w_mib', int):.0f} | {m('d_req', int):.0f} | {m('d_mib', int):.0f} | {m('flush', int):.0f} |")
EOF
