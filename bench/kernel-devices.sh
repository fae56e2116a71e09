#!/bin/bash
# bench/kernel-devices.sh - rbd-nbdd's /dev/nbdX against Ceph's rbd-nbd, krbd and brd (a RAM
# disk: the kernel-side ceiling), under a real kernel, in ONE command and ONE interleaved run.
#
# The host kernel has no nbd or rbd driver, so everything runs in ONE user-mode Linux guest
# (tests/e2e/uml/run.sh: kernel 6.1, 1 vCPU) running bench/kernel-devices-guest.sh:
#   - a memstore dev cluster inside the guest; one image rbd/bench (512 MiB, default features)
#     prefilled by one full sequential write;
#   - the image mapped by rbd-nbdd (`rbd-nbdd map`, one daemon), by rbd-nbd (`--try-netlink`)
#     and by krbd (`rbd map -o noudev`) at the same time, and /dev/ram0 of the same size;
#     ONLY ONE device runs I/O at a time. Before each run on an RBD device one 4 KiB block is
#     read and written back through it (same data), so the image's exclusive lock moves to
#     that client before fio starts rather than inside the measured run;
#   - fio, direct=1, libaio and io_uring: 4k randread/randwrite at QD1 and QD32, 1M
#     sequential read/write at QD8; the four devices in turn per (workload, engine), the
#     order rotated from one to the next;
#   - memory: a fresh daemon's VmRSS idle, with 1 and with 16 images mapped (4 MiB written to
#     each), against the summed VmRSS of 16 rbd-nbd processes serving the same 16 images.
# librbd's cache is off for rbd-nbdd and rbd-nbd (rbd_cache = false in their conf): krbd has
# none, and with it on the paths would not compare.
#
# CPU per I/O: utime+stime of the serving process (the rbd-nbdd daemon or the rbd-nbd
# process, all threads, /proc/PID/stat) during the fio run, divided by the I/Os done. krbd and
# brd serve in the kernel: n/a. "guest CPU/IO" is the whole guest's busy time (/proc/stat; one
# vCPU) per I/O: fio + kernel + serving process + the OSD, so it prices krbd and brd too.
#
#   bench/kernel-devices.sh
#
# Settings (environment):
#   RUNTIME=10       seconds per fio run (48 runs; ~RUNTIME+3 s each, plus ~2 min setup)
#   KD_IMAGE_MIB=512 the image (and RAM disk) size
#   VM_MEM=5G        guest RAM (memstore holds ~2x the data written, brd holds its size)
#   RBDNBD           the rbd-nbdd binary (default build/gateway/control/rbd-nbdd; a private
#                    copy is taken first, since other work may relink the build's)
#   KD_WORKLOADS, KD_ENGINES, KD_DEVICES  comma lists to run a subset (development)
#   KD_SKIP_MEM=1, KD_SKIP_PERF=1         skip a part
# Output: the tables on stdout, also written to bench/results/kernel-devices-<date>.md (plots
# beside it: bench/plot.py, -iops.png, -p99.png, .data.json); the
# raw results (fio JSON, CPU ticks, RSS, guest console and dmesg) in
# bench/results/kernel-devices-<date>/.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNTIME=${RUNTIME:-10}
KD_IMAGE_MIB=${KD_IMAGE_MIB:-512}
STAMP=$(date +%Y-%m-%d-%H%M)
OUT_MD=$ROOT/bench/results/kernel-devices-$STAMP.md
OUT=$ROOT/bench/results/kernel-devices-$STAMP
RAW=$OUT/raw

say() { printf '[kernel-devices] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ "$RUNTIME" =~ ^[0-9]+$ ]] && [ "$RUNTIME" -ge 1 ] || die "RUNTIME must be a number of seconds"
for c in /usr/bin/linux.uml fio rbd rbd-nbd ceph-mon ceph-osd jq /usr/bin/python3 /usr/bin/time; do
  command -v "$c" >/dev/null 2>&1 || die "missing $c"
done
[ -d /usr/lib/uml/modules ] || die "no UML modules (apt-get install user-mode-linux)"
SRC_BIN=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
[ -x "$SRC_BIN" ] || die "no rbd-nbdd at $SRC_BIN (build first: ninja -C build rbd-nbdd)"

mkdir -p "$RAW"
# A private copy of the binary: a relink during the run would break the guest's exec.
BIN=$OUT/rbd-nbdd
ok=0
for i in 1 2 3 4 5 6; do
  if cp "$SRC_BIN" "$BIN.tmp" 2>/dev/null && timeout 20 "$BIN.tmp" version >/dev/null 2>&1; then
    mv "$BIN.tmp" "$BIN"; ok=1; break
  fi
  sleep 5
done
[ "$ok" = 1 ] || die "cannot copy a working rbd-nbdd from $SRC_BIN"
say "rbd-nbdd $("$BIN" version | head -1) (copy of $SRC_BIN, git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?))"

# 48 runs of RUNTIME + ~4 s of fio start, lock hand-over and bookkeeping, ~3 min of
# cluster, prefill, maps and the memory part, with a margin.
VM_TIMEOUT=${VM_TIMEOUT:-$((48 * (RUNTIME + 6) + 420))}
say "one UML guest (VM_MEM=${VM_MEM:-5G}, timeout ${VM_TIMEOUT}s), RUNTIME=${RUNTIME}s per run"
rc=0
VM_MEM=${VM_MEM:-5G} VM_TIMEOUT=$VM_TIMEOUT VM_QUIET=1 VM_OUT=$OUT VM_RW_DIRS=$RAW \
VM_ENV="RUNTIME=$RUNTIME KD_IMAGE_MIB=$KD_IMAGE_MIB KD_RAW=$RAW RBDNBD=$BIN \
KD_WORKLOADS=${KD_WORKLOADS:-} KD_ENGINES=${KD_ENGINES:-} KD_DEVICES=${KD_DEVICES:-} \
KD_SKIP_MEM=${KD_SKIP_MEM:-0} KD_SKIP_PERF=${KD_SKIP_PERF:-0}" \
  timeout --kill-after=30 $((VM_TIMEOUT + 60)) "$ROOT/tests/e2e/uml/run.sh" "$ROOT/bench/kernel-devices-guest.sh" || rc=$?
rm -f "$BIN"
grep '^\[kd-guest' "$OUT/console.log" > "$OUT/guest.log" 2>/dev/null || true
if [ "$rc" != 0 ]; then
  say "the guest exited $rc; its last lines:"
  tail -n 25 "$OUT/console.log" >&2 || true
  [ -n "$(ls "$RAW"/*-QD*.json 2>/dev/null)" ] || [ -s "$RAW/mem-rbdnbdd" ] || die "no results"
  say "tabulating the partial results"
fi

/usr/bin/python3 - "$RAW" "$OUT_MD" "$rc" <<'PY'
import json, os, sys
raw, out_md, rc = sys.argv[1], sys.argv[2], sys.argv[3]
def rd(name, default=""):
    p = os.path.join(raw, name)
    return open(p).read().strip() if os.path.exists(p) else default
env = dict(l.split("=", 1) for l in rd("env").splitlines() if "=" in l)
tck = int(rd("clk_tck", "100"))
names = [("4k-randread-QD1", "4k randread QD1"), ("4k-randread-QD32", "4k randread QD32"),
         ("4k-randwrite-QD1", "4k randwrite QD1"), ("4k-randwrite-QD32", "4k randwrite QD32"),
         ("1M-seqread-QD8", "1M seq read QD8"), ("1M-seqwrite-QD8", "1M seq write QD8")]
engines = ["libaio", "io_uring"]
devs = ["rbd-nbdd", "rbd-nbd", "krbd", "brd"]
res = {}
for key, _ in names:
    for e in engines:
        for d in devs:
            f = os.path.join(raw, f"{key}.{e}.{d}.json")
            if not os.path.exists(f):
                continue
            try:
                j = json.load(open(f))["jobs"][0]
            except Exception:
                continue
            x = j["write"] if "write" in key else j["read"]
            ios = j["read"]["total_ios"] + j["write"]["total_ios"]
            pct = x["lat_ns"].get("percentile", {})   # total latency (submit + completion)
            gw, osd, busy, total = open(f + ".cpu").read().split()
            per = lambda t: (int(t) * 1e6 / tck / ios) if ios else float("nan")
            res[(key, e, d)] = dict(iops=x["iops"], mbs=x["bw_bytes"] / 1e6,
                                    p50=pct.get("50.000000", 0) / 1000, p99=pct.get("99.000000", 0) / 1000,
                                    gw=None if gw == "na" else per(gw), osd=per(osd), busy=per(busy),
                                    util=int(busy) / int(total) if int(total) else 0)
ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
lines = ["| workload | engine | device | IOPS | MB/s | p50 µs | p99 µs | serving CPU µs/IO | guest CPU µs/IO | vs rbd-nbd | vs krbd |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for key, label in names:
    for e in engines:
        nbd, k = res.get((key, e, "rbd-nbd")), res.get((key, e, "krbd"))
        for d in devs:
            r = res.get((key, e, d))
            if not r:
                attempted = os.path.join(raw, f"{key}.{e}.{d}.json")
                if os.path.exists(attempted) or os.path.exists(attempted + ".err"):   # not a KD_DEVICES subset
                    lines.append(f"| {label} | {e} | {d} | FAILED | | | | | | | |")
                continue
            gw = "n/a (kernel)" if r["gw"] is None else f"{r['gw']:.1f}"
            lines.append(f"| {label} | {e} | {d} | {r['iops']:.0f} | {r['mbs']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {gw} | {r['busy']:.0f} | "
                         f"{ratio(r['iops'], nbd['iops']) if nbd else '-'} | {ratio(r['iops'], k['iops']) if k else '-'} |")
perf = "\n".join(lines)

t = ["| target | engine | measured | met |", "| --- | --- | --- | --- |"]
for key, label in (("4k-randread-QD32", "4k randread QD32"), ("4k-randwrite-QD32", "4k randwrite QD32")):
    for e in engines:
        r, n, k = res.get((key, e, "rbd-nbdd")), res.get((key, e, "rbd-nbd")), res.get((key, e, "krbd"))
        if r and n:
            x = r["iops"] / n["iops"]
            t.append(f"| {label}: rbd-nbdd >= 1.5x rbd-nbd IOPS | {e} | {x:.2f}x ({r['iops']:.0f} vs {n['iops']:.0f}) | {'yes' if x >= 1.5 else 'NO'} |")
        if r and k:
            x = r["iops"] / k["iops"]
            t.append(f"| {label}: rbd-nbdd >= 0.9x krbd IOPS | {e} | {x:.2f}x ({r['iops']:.0f} vs {k['iops']:.0f}) | {'yes' if x >= 0.9 else 'NO'} |")

mem = ""
m1 = dict(l.split()[:2] for l in rd("mem-rbdnbdd").splitlines() if l.strip())
m2 = [l.split() for l in rd("mem-rbdnbd").splitlines() if l.strip()]
if m1 or m2:
    mib = lambda kib: f"{int(kib) / 1024:.1f}"
    ml = ["| configuration | processes | VmRSS MiB | per device MiB |", "| --- | ---: | ---: | ---: |"]
    if "idle" in m1: ml.append(f"| rbd-nbdd daemon, 0 devices (idle) | 1 | {mib(m1['idle'])} | - |")
    if "1" in m1: ml.append(f"| rbd-nbdd daemon, 1 device | 1 | {mib(m1['1'])} | {mib(m1['1'])} |")
    if "16" in m1: ml.append(f"| rbd-nbdd daemon, 16 devices | 1 | {mib(m1['16'])} | {int(m1['16']) / 16 / 1024:.1f} |")
    tot = sum(int(x[1]) for x in m2)
    if m2:
        ml.append(f"| rbd-nbd, 1 device (first process) | 1 | {mib(m2[0][1])} | {mib(m2[0][1])} |")
        ml.append(f"| rbd-nbd, 16 devices (sum of {len(m2)} processes) | {len(m2)} | {mib(tot)} | {tot / len(m2) / 1024:.1f} |")
    if "16" in m1 and len(m2) == 16:
        x = int(m1["16"]) / tot
        ml.append("")
        ml.append(f"rbd-nbdd with 16 devices / 16 rbd-nbd processes: **{x:.3f}** ({1 / x:.1f}x less); "
                  f"target <= 0.25: **{'met' if x <= 0.25 else 'NOT met'}**. "
                  f"Each device added to the daemon costs {(int(m1['16']) - int(m1['1'])) / 15 / 1024:.1f} MiB ((16-device RSS - 1-device RSS) / 15). "
                  f"Daemon peak RSS (VmHWM) {mib(m1.get('hwm', 0))} MiB, {m1.get('threads', '?')} threads; "
                  f"rbd-nbd threads per process: {m2[0][2]}.")
        t.append(f"| 16 devices: rbd-nbdd RSS <= 1/4 of 16 rbd-nbd | - | {x:.3f} ({mib(m1['16'])} vs {mib(tot)} MiB) | {'yes' if x <= 0.25 else 'NO'} |")
    mem = "\n".join(ml)
targets = "\n".join(t)

q = rd("queues")
header = f"""# kernel-devices: rbd-nbdd vs rbd-nbd vs krbd vs brd, as kernel block devices

- Guest: user-mode Linux {env.get('kernel', '?')}, {env.get('vcpus', '?')} vCPU, {int(env.get('mem_kib', 0)) // 1024} MiB RAM, on a 2-core host shared with other work;
  1-min load average (guest) {env.get('load0', '?')} before, {env.get('load1', '?')} after; {env.get('fio', '?')}, Ceph {env.get('ceph', '?')}, {env.get('rbdnbdd', '?')}
- Cluster: deploy/dev-cluster.sh in the guest (memstore, 1 mon, 1 OSD, size 1, cephx); image rbd/bench,
  {env.get('image_mib', '?')} MiB, features {rd('features', '?')}, prefilled by one full sequential write; brd /dev/ram0 of the same size, filled
- Mappings, all at once: rbd-nbdd (`rbd-nbdd map`, 1 connection), rbd-nbd (`rbd-nbd --try-netlink map`), krbd (`rbd map -o noudev`).
  Exclusive lock: only one device runs I/O at a time; before each run on an RBD device one 4 KiB block is read and written back
  through it, so the lock moves to that client before the measured run. librbd cache off (rbd_cache = false) for rbd-nbdd and rbd-nbd
- fio: direct=1, numjobs=1, time_based, RUNTIME={env.get('runtime', '?')} s per run, norandommap; the four devices in turn per (workload, engine), order rotated.
  Interleaved run took {env.get('perf_seconds', '?')} s
- p50/p99: fio total latency (lat_percentiles: submission + completion; with io_uring brd completes inside the submit call). serving CPU: utime+stime of the rbd-nbdd daemon / the rbd-nbd process (all threads) over the run,
  per I/O; krbd and brd serve in the kernel (n/a). guest CPU: the whole guest's busy time per I/O (fio, kernel, server, OSD; 1 vCPU)
- One run in UML on a busy host: orders of magnitude and ratios within this run only
"""
if rc != "0":
    header += f"- **The guest exited {rc}: partial results** (see guest.log, console.log)\n"
fl = rd("failures")
if fl:
    header += "- Failed runs: " + "; ".join(fl.splitlines()) + "\n"
dm = rd("dmesg-findings.txt")
if dm:
    header += f"- dmesg findings: {len(dm.splitlines())} line(s), see raw/dmesg-findings.txt\n"
md = f"{header}\n## Performance\n\n{perf}\n\n## Memory\n\n{mem or '(not measured)'}\n\n## The issue's targets\n\n{targets}\n\n## Device queues\n\n```\n{q}\n```\n"
open(out_md, "w").write(md)
try:   # the rows at full precision, for bench/plot.py (after the table: that one is safe)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(out_md))))
    import plot
    plot.write_rows(out_md[:-3] + ".data.json", "kernel-devices", [
        {"workload": f"{label} · {e}", "path": d, "iops": r["iops"], "mbps": r["mbs"],
         "p50_us": r["p50"], "p99_us": r["p99"], "serving_cpu_us_per_io": r["gw"],
         "guest_cpu_us_per_io": r["busy"], "osd_cpu_us_per_io": r["osd"]}
        for key, label in names for e in engines for d in devs
        for r in [res.get((key, e, d))] if r],
        header.splitlines()[0].lstrip("# "), os.path.basename(out_md))
except Exception as ex:
    print(f"[kernel-devices] WARNING: no .data.json beside the table: {ex}", file=sys.stderr)
print(perf); print(); print(mem); print(); print(targets)
PY
. "$ROOT/bench/lib_plot.sh"
bench_plot "$OUT_MD"   # -iops.png, -p99.png and .data.json beside it; never fails
say "written: $OUT_MD (plots beside it, raw results in $OUT/)"
exit "$rc"
