#!/bin/bash
# bench/csi-stage.sh - how long rbd-nbdd-csi takes to give a pod a fresh volume: NodeStage
# (map through the rbd-nbdd daemon, mkfs, mount) + NodePublish (bind mount) of a new 1 GiB
# RBD image, ext4 and xfs, CS_ROUNDS rounds each, then NodeUnpublish + NodeUnstage; against
# the 3 s target for stage + publish.
#
# The host has no nbd driver, so it all runs in ONE user-mode Linux guest
# (tests/e2e/uml/run.sh: kernel 6.1, 1 vCPU) with the memstore dev cluster inside, the
# rbd-nbdd daemon and the plugin as the csi_* scenarios run them (tests/e2e/lib_csi.sh):
# client.kube credentials in the stage secrets, volumes in pool kube. Each phase is the
# gRPC call's own time as the client measured it (what kubelet would wait), not the test's
# bookkeeping around it. Images are created (rbd create) and removed outside the timing.
#
#   bench/csi-stage.sh
#
# Settings (environment):
#   CS_ROUNDS=5      rounds per filesystem
#   CS_SIZE=1G       image size
#   RBDNBD_BIN       the daemon (default build/gateway/control/rbd-nbdd)
#   CSI_BIN          the plugin (default build/csi/rbd-nbdd-csi, or build-csi/csi/ when newer)
#   VM_MEM=3G, VM_TIMEOUT=1800
# Output: the table on stdout, also written to bench/results/csi-stage-<date>.md (plots
# beside it: bench/plot.py, -time.png, .data.json); the raw
# per-round times, the guest console and the logs in build/bench-csi-stage/<date>/.
# UML on a shared 2-core host is slow and noisy: compare runs made the same way only.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
CS_ROUNDS=${CS_ROUNDS:-5}
CS_SIZE=${CS_SIZE:-1G}

# ---------------------------------------------------------------------------------------
# Inside the guest
# ---------------------------------------------------------------------------------------
if [ "${VM_GUEST:-}" = 1 ]; then
  . "$ROOT/tests/e2e/lib.sh"
  . "$ROOT/tests/e2e/lib_map.sh"
  . "$ROOT/tests/e2e/lib_csi.sh"
  cluster_up
  start_daemon
  csi_setup
  start_csi
  TSV=$E2E_WORK/csi-stage.tsv
  echo "fs round stage publish unpublish unstage" > "$TSV"
  for fs in ext4 xfs; do
    for r in $(seq 1 "$CS_ROUNDS"); do
      vol=bench-$fs-$r
      st=$(csi_staging "$vol")
      tg=$(csi_target "$vol" "pod-$r")
      csi_create_image "$vol" "$CS_SIZE"
      step "$fs round $r"
      csi_stage "$vol" "$st" --fs "$fs"
      s=$CSI_ELAPSED
      csi_publish "$vol" "$st" "$tg" --fs "$fs"
      p=$CSI_ELAPSED
      [ "$(mount_fstype "$tg")" = "$fs" ] || fail "$tg is not a mounted $fs"
      csi_unpublish "$vol" "$tg"
      u=$CSI_ELAPSED
      csi_unstage "$vol" "$st"
      us=$CSI_ELAPSED
      echo "$fs $r $s $p $u $us" >> "$TSV"
      log "$fs round $r: stage $s s, publish $p s, unpublish $u s, unstage $us s"
      rbd_ rm --no-progress "$CSI_POOL/$vol" > /dev/null 2>&1 || log "rbd rm $CSI_POOL/$vol failed (ignored)"
    done
  done
  assert_csi_clean
  stop_csi
  stop_daemon
  pass
fi

# ---------------------------------------------------------------------------------------
# On the host
# ---------------------------------------------------------------------------------------
say() { printf '[csi-stage] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[[ "$CS_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "CS_ROUNDS must be a positive number"
[ -x /usr/bin/linux.uml ] || die "user-mode-linux is not installed"
RBDNBD_BIN=${RBDNBD_BIN:-$ROOT/build/gateway/control/rbd-nbdd}
[ -x "$RBDNBD_BIN" ] || die "no rbd-nbdd at $RBDNBD_BIN (ninja -C build rbd-nbdd)"
if [ -z "${CSI_BIN:-}" ]; then
  CSI_BIN=$ROOT/build/csi/rbd-nbdd-csi   # or the development build, when newer
  if [ -x "$ROOT/build-csi/csi/rbd-nbdd-csi" ] \
     && { [ ! -x "$CSI_BIN" ] || [ "$ROOT/build-csi/csi/rbd-nbdd-csi" -nt "$CSI_BIN" ]; }; then
    CSI_BIN=$ROOT/build-csi/csi/rbd-nbdd-csi
  fi
fi
[ -x "$CSI_BIN" ] || die "no rbd-nbdd-csi at $CSI_BIN (ninja -C build rbd-nbdd-csi)"
export RBDNBD_BIN CSI_BIN CS_ROUNDS CS_SIZE
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=$ROOT/build/bench-csi-stage/$STAMP
OUT_MD=$ROOT/bench/results/csi-stage-$STAMP.md
mkdir -p "$OUT" "$ROOT/bench/results"
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "one UML guest (VM_MEM=${VM_MEM:-3G}), $CS_ROUNDS rounds x ext4/xfs of a $CS_SIZE volume; raw output in $OUT"
rc=0
VM_MEM=${VM_MEM:-3G} VM_TIMEOUT=${VM_TIMEOUT:-1800} VM_QUIET=1 VM_OUT=$OUT \
VM_ENV="RBDNBD_BIN CSI_BIN CS_ROUNDS CS_SIZE" \
  "$ROOT/tests/e2e/uml/run.sh" "$ROOT/bench/csi-stage.sh" > "$OUT/host.log" 2>&1 || rc=$?
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
TSV=$OUT/csi-stage.tsv
if [ "$rc" != 0 ] || [ ! -s "$TSV" ]; then
  tail -n 40 "$OUT/console.log" >&2 2>/dev/null || true
  die "the guest run failed (exit $rc); logs in $OUT"
fi

/usr/bin/python3 - "$TSV" "$OUT_MD" "$STAMP" "$REV" "$CS_ROUNDS" "$CS_SIZE" "$LOAD0" "$LOAD1" <<'EOF'
import statistics, sys
tsv, out_md, stamp, rev, rounds, size, load0, load1 = sys.argv[1:]
rows = [l.split() for l in open(tsv).read().splitlines()[1:] if l.strip()]
TARGET = 3.0
lines = [f"# CSI stage + publish time ({stamp} UTC, git {rev})", "",
         f"rbd-nbdd-csi + rbd-nbdd daemon in one user-mode Linux guest (kernel 6.1, 1 vCPU), "
         f"memstore dev cluster inside, a fresh {size} image per round, {rounds} rounds per "
         f"filesystem, client.kube credentials. Each figure is the gRPC call's own time in "
         f"seconds. Host load average before/after: {load0} / {load1} (2 cores, shared).", "",
         "| fs | phase | min | median | max |", "| --- | --- | --- | --- | --- |"]
verdicts = []
data_rows = []
for fs in ("ext4", "xfs"):
    rs = [r for r in rows if r[0] == fs]
    if not rs:
        continue
    ph = {"stage": [float(r[2]) for r in rs], "publish": [float(r[3]) for r in rs]}
    ph["stage + publish"] = [a + b for a, b in zip(ph["stage"], ph["publish"])]
    ph["unpublish"] = [float(r[4]) for r in rs]
    ph["unstage"] = [float(r[5]) for r in rs]
    ph["unpublish + unstage"] = [a + b for a, b in zip(ph["unpublish"], ph["unstage"])]
    for name, v in ph.items():
        b = "**" if name == "stage + publish" else ""
        lines.append(f"| {fs} | {b}{name}{b} | {min(v):.2f} | {statistics.median(v):.2f} | {max(v):.2f} |")
        data_rows.append({"workload": name, "path": fs, "seconds": statistics.median(v),
                          "seconds_min": min(v), "seconds_max": max(v), "rounds": v})
    sp = ph["stage + publish"]
    met = sum(1 for x in sp if x <= TARGET)
    verdicts.append(f"- {fs}: stage + publish median {statistics.median(sp):.2f} s, max {max(sp):.2f} s: "
                    f"the {TARGET:.0f} s target is {'met' if statistics.median(sp) <= TARGET else 'MISSED'} "
                    f"(median), {met}/{len(sp)} rounds within it.")
lines += ["", f"Target: stage + publish within {TARGET:.0f} s.", ""] + verdicts + [""]
text = "\n".join(lines)
open(out_md, "w").write(text)
try:   # the rows at full precision, for bench/plot.py (after the table: that one is safe)
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(out_md))))
    import plot
    plot.write_rows(out_md[:-3] + ".data.json", "csi-stage", data_rows, lines[0].lstrip("# "),
                    os.path.basename(out_md))
except Exception as e:
    print(f"[csi-stage] WARNING: no .data.json beside the table: {e}", file=sys.stderr)
print(text)
EOF
. "$ROOT/bench/lib_plot.sh"
bench_plot "$OUT_MD"   # -time.png and .data.json beside it; never fails
say "written: $OUT_MD (plots beside it)"
