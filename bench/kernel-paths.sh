#!/bin/bash
# bench/kernel-paths.sh - the kernel block paths to one RBD image side by side, in ONE
# Debian 6.12 guest (tests/e2e/qemu/run.sh: qemu TCG, 2 vCPUs), with the Ceph cluster on
# the HOST (issue 13, item 4).
#
# Host side (this script):
#   - a network namespace kp<PID> with loopback up and a tap device kpt<PID> (10.213.X.1/24);
#   - a memstore dev cluster (deploy/dev-cluster.sh) started INSIDE the namespace (so its
#     127.0.0.1 is the namespace's own loopback), then re-addressed to the namespace's tap
#     address: stopped cleanly, ceph.conf's addresses rewritten, a new monmap injected into
#     the mon, restarted. The mon and OSD then listen on 10.213.X.1 only, which only the
#     guest (on the tap) reaches;
#   - image rbd/bench (KP_IMAGE_MIB, default 512 MiB, default features, which krbd 6.12
#     maps) created and prefilled on the host (fio --ioengine=rbd, inside the namespace),
#     and two copies, rbd/bench2 (for rbd-nbdd nbd 2c) and rbd/bench3 (ublk): rbd-nbdd maps
#     an image only once per daemon;
#   - qemu runs inside the namespace (VM_NETNS/VM_TAP/VM_GUEST_ADDR) and the guest runs
#     bench/kernel-paths-guest.sh: the image mapped five ways at once, one device doing I/O
#     at a time (see that script);
#   - at exit, also on failure (trap): the cluster wiped, the namespace (and its tap)
#     deleted, every process of ours gone.
# Then the table (bench/results/kernel-paths-<stamp>.md), the raw results beside it
# (kernel-paths-<stamp>/raw) and the plots (bench/plot.py kind kernel-paths).
#
# Settings (environment):
#   RUNTIME=10     seconds per fio run        ROUNDS=1   interleaved rounds
#   KP_PATHS       comma list of krbd,rbd-nbd,nbdd-1c,nbdd-2c,ublk (default all)
#   KP_WORKLOADS   comma list of 4k-randread-QD1,4k-randread-QD32,4k-randwrite-QD1,
#                  4k-randwrite-QD32,1M-seqread-QD8,1M-seqwrite-QD8 (default all)
#   KP_ENGINE=io_uring   fio engine (io_uring or libaio)
#   KP_IMAGE_MIB=512     image size      VM_MEM=3G guest RAM
#   KP_DAEMON_ARGS       more arguments for the guest's `rbd-nbdd daemon` (e.g. "-w 1":
#                        one worker loop, so ublk gets one hardware queue)
#   RBDNBD         the rbd-nbdd binary (default build/gateway/control/rbd-nbdd; copied first)
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-1}
KP_IMAGE_MIB=${KP_IMAGE_MIB:-512}
KP_ENGINE=${KP_ENGINE:-io_uring}
export KP_DAEMON_ARGS=${KP_DAEMON_ARGS:-}  # passed by name: it may hold spaces
STAMP=$(date +%Y-%m-%d-%H%M)
OUT_MD=$ROOT/bench/results/kernel-paths-$STAMP.md
OUT=$ROOT/bench/results/kernel-paths-$STAMP
RAW=$OUT/raw
DEV_CLUSTER=$ROOT/deploy/dev-cluster.sh

say() { printf '[kernel-paths %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
b() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; }

[[ "$RUNTIME" =~ ^[0-9]+$ ]] && [ "$RUNTIME" -ge 1 ] || die "RUNTIME must be a number of seconds"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] || die "ROUNDS must be a number >= 1"
for c in qemu-system-x86_64 fio rbd rbd-nbd ceph-mon ceph-osd monmaptool jq ip /usr/bin/python3; do
  command -v "$c" >/dev/null 2>&1 || die "missing $c"
done
SRC_BIN=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
[ -x "$SRC_BIN" ] || die "no rbd-nbdd at $SRC_BIN (build first: ninja -C build rbd-nbdd)"

# The namespace, tap and addresses: one /24 per run, from the pid.
NS=kp$$
TAP=kpt$$
SUB=$(( $$ % 200 + 20 ))
HOST_ADDR=10.213.$SUB.1
GUEST_ADDR=10.213.$SUB.2/24
PORT=$(( 15600 + $$ % 90 ))   # its own namespace: nothing else listens there
TOP=/tmp/kp-$$
CL=$TOP/cluster
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
  local rc=$?
  set +e
  if [ -f "$CL/cluster.env" ]; then
    b 60 ip netns exec "$NS" bash "$DEV_CLUSTER" wipe "$CL" >/dev/null 2>&1
  fi
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    # anything still running in the namespace (qemu, a Ceph daemon) is ours: end it by pid
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
  fi
  rm -rf "$TOP"
  [ -n "${BIN:-}" ] && rm -f "$BIN"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

mkdir -p "$RAW" "$TOP"
BIN=$OUT/rbd-nbdd
ok=0
for i in 1 2 3 4 5 6; do
  if cp "$SRC_BIN" "$BIN.tmp" 2>/dev/null && timeout 20 "$BIN.tmp" version >/dev/null 2>&1; then
    mv "$BIN.tmp" "$BIN"; ok=1; break
  fi
  sleep 5
done
[ "$ok" = 1 ] || die "cannot copy a working rbd-nbdd from $SRC_BIN"
say "rbd-nbdd $("$BIN" version | head -1) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)); load $LOAD_BEFORE"

say "namespace $NS, tap $TAP, host side $HOST_ADDR, guest $GUEST_ADDR"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev "$TAP" mode tap
ip -n "$NS" addr add "$HOST_ADDR/24" dev "$TAP"
ip -n "$NS" link set "$TAP" up

say "dev cluster in $CL (inside $NS), then moved from 127.0.0.1 to $HOST_ADDR:$PORT"
NSX=(ip netns exec "$NS")
RBDNBD_CLUSTER_DIR=$CL DEV_CLUSTER_PORT=$PORT DEV_CLUSTER_TIMEOUT=120 \
  b 300 "${NSX[@]}" bash "$DEV_CLUSTER" start "$CL" > "$RAW/cluster-start.log" 2>&1 \
  || { tail -n 20 "$RAW/cluster-start.log" >&2; die "the dev cluster did not start"; }
b 180 "${NSX[@]}" bash "$DEV_CLUSTER" stop "$CL" >> "$RAW/cluster-start.log" 2>&1 || die "cluster stop"
CONF=$CL/ceph.conf
FSID=$(sed -n 's/^fsid = //p' "$CONF")
sed -i "s/127\.0\.0\.1/$HOST_ADDR/g" "$CONF"
b 30 monmaptool --create --fsid "$FSID" --addv a "[v2:$HOST_ADDR:$PORT,v1:$HOST_ADDR:$((PORT + 1))]" "$TOP/monmap" >/dev/null
b 60 "${NSX[@]}" ceph-mon -c "$CONF" -i a --inject-monmap "$TOP/monmap" >> "$RAW/cluster-start.log" 2>&1 || die "inject monmap"
DEV_CLUSTER_TIMEOUT=120 b 300 "${NSX[@]}" bash "$DEV_CLUSTER" start "$CL" >> "$RAW/cluster-start.log" 2>&1 \
  || { tail -n 20 "$RAW/cluster-start.log" >&2; die "the re-addressed cluster did not start"; }
"${NSX[@]}" ss -ltnp 2>/dev/null | grep -E 'ceph-(mon|osd)' > "$RAW/listeners" || true
grep -q '127\.0\.0\.1' "$RAW/listeners" && die "a Ceph daemon still listens on 127.0.0.1: $(cat "$RAW/listeners")"
say "cluster up on $HOST_ADDR ($(wc -l < "$RAW/listeners") listening sockets)"
KEYRING=$CL/keyring
rb() { b 120 "${NSX[@]}" rbd -c "$CONF" --keyring "$KEYRING" "$@"; }
rb create --size "${KP_IMAGE_MIB}M" rbd/bench
rb info --format json rbd/bench | jq -r '.features | join(",")' > "$RAW/features"
t0=$SECONDS
CEPH_CONF=$CONF b 600 "${NSX[@]}" fio --name=prefill --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench \
  --rw=write --bs=4M --iodepth=16 --size="${KP_IMAGE_MIB}M" --output-format=json \
  --output="$RAW/prefill-rbd.json" > /dev/null 2> "$RAW/prefill.err" \
  || { cat "$RAW/prefill.err" >&2; die "prefill failed"; }
# rbd-nbdd maps an image once per daemon: nbdd-2c gets a copy (bench2), and so does ublk
# (bench3), so that the paths need not share one daemon mapping. Same data in all three.
rb cp --no-progress rbd/bench rbd/bench2 >/dev/null || die "rbd cp bench2"
rb cp --no-progress rbd/bench rbd/bench3 >/dev/null || die "rbd cp bench3"
say "image rbd/bench ${KP_IMAGE_MIB} MiB ($(cat "$RAW/features")) prefilled on the host, copied to bench2 and bench3, in $((SECONDS - t0)) s"
OSD_PID=$(cat "$CL/run/osd.0.pid" 2>/dev/null || echo)
echo "$OSD_PID" > "$RAW/osd_pid"
echo "$LOAD_BEFORE" > "$RAW/load_host_before"

nw=6 np=5
[ -n "${KP_WORKLOADS:-}" ] && nw=$(tr ',' '\n' <<< "$KP_WORKLOADS" | grep -c .)
[ -n "${KP_PATHS:-}" ] && np=$(tr ',' '\n' <<< "$KP_PATHS" | grep -c .)
VM_TIMEOUT=${VM_TIMEOUT:-$((ROUNDS * nw * np * (RUNTIME + 25) + 600))}
say "qemu guest (VM_MEM=${VM_MEM:-3G}, timeout ${VM_TIMEOUT}s): $np paths x $nw workloads x $ROUNDS rounds, ${RUNTIME}s each"
# A private copy of the qemu runner: bash reads a script as it runs, and other work may edit
# tests/e2e/qemu/run.sh during the run (seen: a syntax error after the guest had passed).
mkdir -p "$TOP/qemu"
cp -a "$ROOT"/tests/e2e/qemu/. "$TOP/qemu/"
cp -a "$ROOT"/tests/e2e/vm_host.sh "$TOP/"   # run.sh sources ../vm_host.sh
rc=0
VM_KERNEL_DIR=$ROOT/build/guest-kernel VM_NETNS=$NS VM_TAP=$TAP VM_GUEST_ADDR=$GUEST_ADDR \
VM_MEM=${VM_MEM:-3G} VM_TIMEOUT=$VM_TIMEOUT VM_QUIET=1 VM_OUT=$OUT VM_RW_DIRS=$RAW \
VM_MODULES="nbd rbd ublk_drv" \
VM_ENV="RUNTIME=$RUNTIME ROUNDS=$ROUNDS KP_RAW=$RAW RBDNBD=$BIN KP_HOST_CONF=$CONF \
KP_HOST_KEYRING=$KEYRING KP_IMAGE_MIB=$KP_IMAGE_MIB KP_ENGINE=$KP_ENGINE \
KP_PATHS=${KP_PATHS:-} KP_WORKLOADS=${KP_WORKLOADS:-} KP_DAEMON_ARGS" \
  timeout --kill-after=30 $((VM_TIMEOUT + 60)) "$TOP/qemu/run.sh" "$ROOT/bench/kernel-paths-guest.sh" || rc=$?
grep '^\[kp-guest' "$OUT/console.log" > "$OUT/guest.log" 2>/dev/null || true
cut -d' ' -f1-3 /proc/loadavg > "$RAW/load_host_after"
if [ "$rc" != 0 ]; then
  say "the guest exited $rc; its last lines:"
  tail -n 25 "$OUT/console.log" >&2 || true
  [ -n "$(ls "$RAW"/*.json 2>/dev/null | grep -v prefill)" ] || die "no results"
  say "tabulating the partial results"
fi

/usr/bin/python3 - "$RAW" "$OUT_MD" "$rc" <<'PY'
import json, os, sys, statistics
raw, out_md, rc = sys.argv[1], sys.argv[2], sys.argv[3]
def rd(name, default=""):
    p = os.path.join(raw, name)
    return open(p).read().strip() if os.path.exists(p) else default
env = dict(l.split("=", 1) for l in rd("env").splitlines() if "=" in l)
tck = int(rd("clk_tck", "100"))
names = [("4k-randread-QD1", "4k randread QD1"), ("4k-randread-QD32", "4k randread QD32"),
         ("4k-randwrite-QD1", "4k randwrite QD1"), ("4k-randwrite-QD32", "4k randwrite QD32"),
         ("1M-seqread-QD8", "1M seq read QD8"), ("1M-seqwrite-QD8", "1M seq write QD8")]
paths = ["krbd", "rbd-nbd", "nbdd-1c", "nbdd-2c", "ublk"]
label = {"krbd": "krbd", "rbd-nbd": "rbd-nbd", "nbdd-1c": "rbd-nbdd nbd 1c",
         "nbdd-2c": "rbd-nbdd nbd 2c", "ublk": "rbd-nbdd ublk"}
rounds = int(env.get("rounds", "1"))
runs = {}   # (key, path) -> [per-round dicts]
failed = set()
for key, _ in names:
    for p in paths:
        for r in range(1, rounds + 1):
            f = os.path.join(raw, f"{key}.{p}.r{r}.json")
            if not os.path.exists(f):
                if os.path.exists(f + ".err"):
                    failed.add((key, p))
                continue
            try:
                j = json.load(open(f))["jobs"][0]
                srv, busy, total = open(f + ".cpu").read().split()
            except Exception:
                failed.add((key, p)); continue
            x = j["write"] if "write" in key else j["read"]
            ios = j["read"]["total_ios"] + j["write"]["total_ios"]
            pct = x["lat_ns"].get("percentile", {})
            per = lambda t: (int(t) * 1e6 / tck / ios) if ios else float("nan")
            runs.setdefault((key, p), []).append(dict(
                iops=x["iops"], mbs=x["bw_bytes"] / 1e6, p50=pct.get("50.000000", 0) / 1000,
                p99=pct.get("99.000000", 0) / 1000, srv=None if srv == "na" else per(srv), busy=per(busy)))
def med(rs, k):
    v = [r[k] for r in rs if r[k] is not None]
    return statistics.median(v) if v else None
res = {kp: {k: med(rs, k) for k in ("iops", "mbs", "p50", "p99", "srv", "busy")} | {"n": len(rs),
        "lo": min(r["iops"] for r in rs), "hi": max(r["iops"] for r in rs)} for kp, rs in runs.items()}
ratio = lambda a, b: f"{a / b:.2f}x" if a is not None and b else "-"
lines = ["| workload | path | IOPS | MB/s | p50 µs | p99 µs | serving CPU µs/IO | guest CPU µs/IO | IOPS vs rbd-nbd | IOPS vs krbd | p50 vs rbd-nbd | p50 vs krbd |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for key, lab in names:
    n, k = res.get((key, "rbd-nbd")), res.get((key, "krbd"))
    for p in paths:
        r = res.get((key, p))
        if not r:
            if (key, p) in failed:
                lines.append(f"| {lab} | {label[p]} | FAILED | | | | | | | | | |")
            continue
        srv = "n/a (kernel)" if r["srv"] is None else f"{r['srv']:.0f}"
        iops = f"{r['iops']:.0f}" + (f" ({r['lo']:.0f}–{r['hi']:.0f})" if r["n"] > 1 else "")
        lines.append(f"| {lab} | {label[p]} | {iops} | {r['mbs']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {srv} | {r['busy']:.0f} | "
                     f"{ratio(r['iops'], n and n['iops'])} | {ratio(r['iops'], k and k['iops'])} | "
                     f"{ratio(r['p50'], n and n['p50'])} | {ratio(r['p50'], k and k['p50'])} |")
perf = "\n".join(lines)

t = ["| target (issue 13) | measured | met |", "| --- | --- | --- |"]
def tgt(text, x, ok):
    t.append(f"| {text} | {x} | {'yes' if ok else 'NO'} |")
for key, lab in (("4k-randread-QD32", "4k randread QD32"), ("4k-randwrite-QD32", "4k randwrite QD32")):
    u, n, o = res.get((key, "ublk")), res.get((key, "rbd-nbd")), res.get((key, "nbdd-1c"))
    if u and n:
        x = u["iops"] / n["iops"]; tgt(f"{lab}: ublk >= 1.5x rbd-nbd IOPS", f"{x:.2f}x ({u['iops']:.0f} vs {n['iops']:.0f})", x >= 1.5)
    if u and o:
        x = u["iops"] / o["iops"]; tgt(f"{lab}: ublk >= 1.2x rbd-nbdd nbd 1c IOPS", f"{x:.2f}x ({u['iops']:.0f} vs {o['iops']:.0f})", x >= 1.2)
    for p in ("nbdd-1c", "nbdd-2c", "ublk"):
        d = res.get((key, p))
        if d and n and d["srv"] is not None and n["srv"]:
            x = d["srv"] / n["srv"]; tgt(f"{lab}: {label[p]} daemon CPU/IO <= 0.7x rbd-nbd's", f"{x:.2f}x ({d['srv']:.0f} vs {n['srv']:.0f} µs)", x <= 0.7)
u, n, k = res.get(("4k-randread-QD1", "ublk")), res.get(("4k-randread-QD1", "rbd-nbd")), res.get(("4k-randread-QD1", "krbd"))
if u and n:
    x = u["p50"] / n["p50"]; tgt("4k randread QD1: ublk p50 <= 0.8x rbd-nbd's", f"{x:.2f}x ({u['p50']:.0f} vs {n['p50']:.0f} µs); vs krbd {ratio(u['p50'], k and k['p50'])}", x <= 0.8)
targets = "\n".join(t)

lb, la = rd("load_host_before", "?"), rd("load_host_after", "?")
try:
    quiet = float(lb.split()[0]) < 1.0
except (ValueError, IndexError):
    quiet = False
if quiet:
    load_note = (f"- **Host load**: a 2-core host, quiet before the run (nothing else running): load average (1/5/15 min) {lb} before,\n"
                 f"  {la} after (the run's own guest and cluster). Guest 1-min load {env.get('load0', '?')} before the runs, {env.get('load1', '?')} after")
else:
    load_note = (f"- **Host load**: a 2-core host shared with other work: load average (1/5/15 min) {lb} before, {la} after.\n"
                 f"  Guest 1-min load {env.get('load0', '?')} before the runs, {env.get('load1', '?')} after. The numbers are for a loaded machine: ratios within this run only")
header = f"""# kernel-paths: krbd, rbd-nbd and rbd-nbdd (nbd 1 and 2 connections, ublk) in one Debian 6.12 guest

- Guest: Debian's Linux {env.get('kernel', '?')} under qemu TCG (tests/e2e/qemu/run.sh), {env.get('vcpus', '?')} vCPUs, {int(env.get('mem_kib', 0)) // 1024} MiB RAM; {env.get('fio', '?')}, Ceph {env.get('ceph', '?')}, {env.get('rbdnbdd', '?')}
{load_note}
- Cluster: deploy/dev-cluster.sh on the HOST (memstore, 1 mon, 1 OSD, size 1, cephx) in a network namespace, mon and OSD on the
  namespace's tap address; the guest reaches it over virtio-net. Image rbd/bench {env.get('image_mib', '?')} MiB, features {rd('features', '?')}, prefilled
- Paths, all mapped at once: krbd (`rbd map -o noudev`), rbd-nbd (`rbd-nbd --try-netlink map`) and rbd-nbdd over nbd with 1 connection
  on rbd/bench; rbd-nbdd over nbd with 2 connections (`rbd-nbdd map --connections 2`, the same daemon) on rbd/bench2, and rbd-nbdd over ublk
  ({env.get('ublk_how', '?')}): copies of rbd/bench (`rbd cp`, same data; the daemon maps an image only once).
  Only one device runs I/O at a time; before each run one 4 KiB block is read and written back through the device, so the exclusive lock
  moves to that client before the measured run. librbd cache off (rbd_cache = false) for the librbd clients
- fio: direct=1, {env.get('engine', '?')}, numjobs=1, time_based, RUNTIME={env.get('runtime', '?')} s, {rounds} round(s) (median; range in brackets when >1), paths rotated per workload.
  Interleaved runs took {env.get('perf_seconds', '?')} s
- p50/p99: fio total latency. serving CPU: utime+stime of the serving process (the rbd-nbdd daemon, the rbd-nbd process, or `rbd-nbdd serve`
  for ublk; all threads) per I/O; krbd serves in the kernel (n/a). guest CPU: the whole guest's busy time (/proc/stat, both vCPUs) per I/O
"""
if rc != "0":
    header += f"- **The guest exited {rc}: partial results** (see guest.log, console.log)\n"
fl = rd("failures")
if fl:
    header += "- Failed runs: " + "; ".join(fl.splitlines()) + "\n"
dm = rd("dmesg-findings.txt")
if dm:
    header += f"- dmesg findings: {len(dm.splitlines())} line(s), see raw/dmesg-findings.txt\n"
q = rd("queues")
md = f"{header}\n## Performance\n\n{perf}\n\n## The issue's targets\n\n{targets}\n\n## Device queues\n\n```\n{q}\n```\n"
open(out_md, "w").write(md)
try:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(out_md))))
    import plot
    plot.write_rows(out_md[:-3] + ".data.json", "kernel-paths", [
        {"workload": lab, "path": label[p], "iops": r["iops"], "mbps": r["mbs"], "p50_us": r["p50"],
         "p99_us": r["p99"], "serving_cpu_us_per_io": r["srv"], "guest_cpu_us_per_io": r["busy"]}
        for key, lab in names for p in paths for r in [res.get((key, p))] if r],
        header.splitlines()[0].lstrip("# "), os.path.basename(out_md))
except Exception as ex:
    print(f"[kernel-paths] WARNING: no .data.json beside the table: {ex}", file=sys.stderr)
print(perf); print(); print(targets)
PY
. "$ROOT/bench/lib_plot.sh"
bench_plot "$OUT_MD"
say "written: $OUT_MD (plots beside it, raw results in $OUT/)"
exit "$rc"
