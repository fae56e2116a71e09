#!/usr/bin/python3
"""bench/csi_controller_bench.py - the CSI controller's create/delete/snapshot/clone latency
and throughput, through its real gRPC socket, against peers in the same run.

Run by bench/csi-controller.sh (which starts the dev cluster and the controller); by hand:

    /usr/bin/python3 bench/csi_controller_bench.py --endpoint unix:///path/ctl.sock \
        --pid CONTROLLER_PID --conf CEPH_CONF --keyring KUBE_KEYRING --cluster-id bench \
        --raw OUT.json --out-md OUT.md [--header TEXT] [--rounds 2] [--count 160] ...

What it measures (every gRPC call on ONE channel, as the external-provisioner makes one
connection; each request carries the client.kube secrets; N client threads, each taking the
next request as soon as its last one answered, so N requests are in flight at all times):
  sweep      per round and per concurrency (1, 8, 32): COUNT CreateVolume of new 10 GiB
             images (all default features), then DeleteVolume of them all; also one row with
             journaling added (at concurrency 8). Latency = each call's own time; creates/s =
             COUNT / the wall time from the first request to the last answer.
  peers      the same image made by `rbd create` (one process per create, as the in-tree
             provisioner runs it) and removed by `rbd rm`; and librbd in this process on
             one kept-open connection (rbd.RBD().create/remove: the floor, doing less than
             the controller: no name journal, no metadata).
  snapshots  at concurrency 1: SNAPS x CreateSnapshot of one source volume, CreateVolume from
             a snapshot, CreateVolume from the volume; then their deletes.
  memory     CYCLES create+delete cycles at concurrency 8; the controller's VmRSS (and
             threads, open fds) at the start, every 100 cycles, and at the end.
The controller's CPU (utime+stime, all threads) is read around every phase.
Any call that does not answer OK stops the run (a benchmark of failing calls means nothing).
Secrets: the key is read from the keyring file and goes only into the requests.
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "csi"))
from csi_client import Csi, capability  # noqa: E402

import rados  # noqa: E402
import rbd  # noqa: E402

GiB = 1 << 30
DEFAULT_FEATURES = "layering,exclusive-lock,object-map,fast-diff,deep-flatten"
FEATURE_BITS = {"layering": rbd.RBD_FEATURE_LAYERING, "exclusive-lock": rbd.RBD_FEATURE_EXCLUSIVE_LOCK,
                "object-map": rbd.RBD_FEATURE_OBJECT_MAP, "fast-diff": rbd.RBD_FEATURE_FAST_DIFF,
                "deep-flatten": rbd.RBD_FEATURE_DEEP_FLATTEN, "journaling": rbd.RBD_FEATURE_JOURNALING}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def feature_bits(csv):
    b = 0
    for f in csv.split(","):
        b |= FEATURE_BITS[f]
    return b


def pct(values, q):
    """The q-th percentile (0..100), linear between the closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def keyring_key(path, user):
    """The key of client.USER in a keyring file (never printed)."""
    section = None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
            elif section == f"client.{user}" and s.replace(" ", "").startswith("key="):
                return s.split("=", 1)[1].strip()
    raise BenchError(f"no key for client.{user} in {path}")


class Proc:
    """/proc readings of the controller."""

    def __init__(self, pid):
        self.pid = pid

    def status(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise BenchError(f"no {field} in /proc/{self.pid}/status")

    def rss_kib(self):
        return self.status("VmRSS")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_s(self):
        return proc_cpu_s(self.pid)

    def snapshot(self):
        return {"rss_kib": self.rss_kib(), "threads": self.status("Threads"), "fds": self.fds()}


def proc_cpu_s(pid):
    """utime+stime of PID, all its threads (fields 14 and 15 of proc(5)), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


class CpuMeter:
    """CPU seconds spent by the controller, by the Ceph daemons (mon + OSD) and by this
    client (all its threads, plus the rbd CLI processes it waited for), so that every path's
    cost on the whole machine can be compared: on 2 cores they all share, throughput at
    concurrency N is bounded by the sum."""

    def __init__(self, ctl_pid, ceph_pids):
        self.ctl_pid, self.ceph_pids = ctl_pid, ceph_pids

    def read(self):
        t = os.times()
        return {"controller": proc_cpu_s(self.ctl_pid),
                "ceph": sum(proc_cpu_s(p) for p in self.ceph_pids),
                "client": t.user + t.system + t.children_user + t.children_system}

    @staticmethod
    def diff(a, b):
        return {k: b[k] - a[k] for k in a}


def run_pool(n, items, fn):
    """fn(item) for every item on n threads (each takes the next item when it is free).
    Returns (results in item order, wall seconds from the first start to the last end)."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        out = list(ex.map(fn, items))
    return out, time.monotonic() - t0


class Bench:
    def __init__(self, a):
        self.a = a
        self.csi = Csi(a.endpoint, timeout=a.timeout)
        self.ch = self.csi.channel()
        self.secrets = {"userID": a.user, "userKey": keyring_key(a.keyring, a.user)}
        self.proc = Proc(a.pid)
        self.meter = CpuMeter(a.pid, a.ceph_pids)
        self.cap = [capability(fs="ext4")]
        self.size = a.size_gib * GiB
        self.run_id = uuid.uuid4().hex[:6]
        self.seq = 0
        self.seq_lock = threading.Lock()
        # librbd in process: the floor peer, and the checks of what the controller made
        self.cluster = rados.Rados(conffile=a.conf, rados_id=a.user, conf={"keyring": a.keyring})
        self.cluster.connect(timeout=30)
        self.ioctx = self.cluster.open_ioctx(a.pool)
        self.raw = {"runs": [], "snapshots": {}, "memory": {}, "checks": [], "settings": vars(a).copy()}

    def name(self, tag):
        with self.seq_lock:
            self.seq += 1
            return f"bench-{self.run_id}-{tag}-{self.seq}"

    # -- gRPC ------------------------------------------------------------------------------
    def call(self, method, body):
        body = dict(body)
        body["secrets"] = self.secrets
        code, details, resp, el = self.csi.call(method, body, channel=self.ch)
        if code != "OK":
            raise BenchError(f"{method} answered {code}: {details}")
        return el, resp

    def params(self, features):
        p = {"clusterID": self.a.cluster_id, "pool": self.a.pool}
        if features is not None:
            p["imageFeatures"] = features
        return p

    def create(self, name, features=None, source=None, size=None):
        body = {"name": name, "capacity_range": {"required_bytes": str(size or self.size)},
                "volume_capabilities": self.cap, "parameters": self.params(features)}
        if source:
            body["volume_content_source"] = source
        el, resp = self.call("CreateVolume", body)
        return el, resp["volume"]["volume_id"], resp["volume"].get("volume_context", {}).get("imageName")

    def delete(self, vid):
        return self.call("DeleteVolume", {"volume_id": vid})[0]

    # -- checks ----------------------------------------------------------------------------
    def check_image(self, image, features_csv):
        """The image the controller made has the size and exactly the features asked for."""
        with rbd.Image(self.ioctx, image, read_only=True) as img:
            size, feats = img.size(), img.features()
        want = feature_bits(features_csv)
        ok = size == self.size and feats == want
        msg = (f"{self.a.pool}/{image}: size {size} (want {self.size}), features 0x{feats:x} "
               f"(want 0x{want:x}: {features_csv})")
        self.raw["checks"].append({"check": "image", "ok": ok, "msg": msg})
        if not ok:
            raise BenchError("the controller made the wrong image: " + msg)
        log(f"checked: {msg}")

    def check_pool_empty(self):
        images = rbd.RBD().list(self.ioctx)
        trash = [e["name"] for e in rbd.RBD().trash_list(self.ioctx)]
        keys = {}
        for obj in ("rbd-nbdd-csi.volumes", "rbd-nbdd-csi.snapshots"):
            try:
                with rados.ReadOpCtx() as op:
                    it, _ = self.ioctx.get_omap_keys(op, "", 100000)
                    self.ioctx.operate_read_op(op, obj)
                    keys[obj] = len(list(it))
            except rados.ObjectNotFound:
                keys[obj] = 0
        ok = not images and not trash and not any(keys.values())
        msg = f"pool {self.a.pool} after the run: {len(images)} images, {len(trash)} trash entries, journal keys {keys}"
        self.raw["checks"].append({"check": "pool-empty", "ok": ok, "msg": msg})
        log(("checked: " if ok else "NOT CLEAN: ") + msg)
        return ok

    # -- phases ----------------------------------------------------------------------------
    def phase_controller(self, rnd, conc, features_csv, count):
        names = [self.name(f"c{conc}") for _ in range(count)]
        feats = None if features_csv == DEFAULT_FEATURES else features_csv
        m0 = self.meter.read()
        made, wall_c = run_pool(conc, names, lambda n: self.create(n, feats))
        m1 = self.meter.read()
        lat_d, wall_d = run_pool(conc, [m[1] for m in made], self.delete)
        m2 = self.meter.read()
        self.raw["runs"].append({
            "path": "controller", "features": features_csv, "conc": conc, "round": rnd,
            "create": [m[0] for m in made], "create_wall": wall_c, "delete": lat_d, "delete_wall": wall_d,
            "cpu_create": CpuMeter.diff(m0, m1), "cpu_delete": CpuMeter.diff(m1, m2)})
        log(f"round {rnd} controller {features_csv} c={conc}: {count / wall_c:.1f} creates/s, "
            f"p50 {pct([m[0] for m in made], 50) * 1e3:.1f} ms; {count / wall_d:.1f} deletes/s")
        return made

    def phase_cli(self, rnd, conc, features_csv, count):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_")}
        base = ["rbd", "-c", self.a.conf, "--id", self.a.user, "--keyring", self.a.keyring]

        def timed(argv):
            t0 = time.monotonic()
            r = subprocess.run(base + argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=self.a.timeout)
            el = time.monotonic() - t0
            if r.returncode != 0:
                raise BenchError(f"rbd {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[:300]}")
            return el

        names = [self.name(f"cli{conc}") for _ in range(count)]
        m0 = self.meter.read()
        lat_c, wall_c = run_pool(conc, names, lambda n: timed(
            ["create", "--size", f"{self.a.size_gib}G", "--image-feature", features_csv, f"{self.a.pool}/{n}"]))
        m1 = self.meter.read()
        lat_d, wall_d = run_pool(conc, names, lambda n: timed(["rm", "--no-progress", f"{self.a.pool}/{n}"]))
        m2 = self.meter.read()
        self.raw["runs"].append({"path": "rbd CLI", "features": features_csv, "conc": conc, "round": rnd,
                                 "create": lat_c, "create_wall": wall_c, "delete": lat_d, "delete_wall": wall_d,
                                 "cpu_create": CpuMeter.diff(m0, m1), "cpu_delete": CpuMeter.diff(m1, m2)})
        log(f"round {rnd} rbd CLI c={conc}: {count / wall_c:.1f} creates/s, p50 {pct(lat_c, 50) * 1e3:.1f} ms")

    def phase_librbd(self, rnd, conc, features_csv, count):
        bits = feature_bits(features_csv)

        def create(n):
            t0 = time.monotonic()
            rbd.RBD().create(self.ioctx, n, self.size, old_format=False, features=bits)
            return time.monotonic() - t0

        def remove(n):
            t0 = time.monotonic()
            rbd.RBD().remove(self.ioctx, n)
            return time.monotonic() - t0

        names = [self.name(f"lib{conc}") for _ in range(count)]
        m0 = self.meter.read()
        lat_c, wall_c = run_pool(conc, names, create)
        m1 = self.meter.read()
        lat_d, wall_d = run_pool(conc, names, remove)
        m2 = self.meter.read()
        self.raw["runs"].append({"path": "librbd in process", "features": features_csv, "conc": conc,
                                 "round": rnd, "create": lat_c, "create_wall": wall_c,
                                 "delete": lat_d, "delete_wall": wall_d,
                                 "cpu_create": CpuMeter.diff(m0, m1), "cpu_delete": CpuMeter.diff(m1, m2)})
        log(f"round {rnd} librbd c={conc}: {count / wall_c:.1f} creates/s, p50 {pct(lat_c, 50) * 1e3:.1f} ms")

    def phase_snapshots(self, n):
        """At concurrency 1: n snapshots of one source, n volumes from a snapshot, n clones of
        the source volume; then every delete. Returns nothing; fills raw["snapshots"]."""
        r = {k: [] for k in ("CreateSnapshot", "CreateVolume from snapshot", "CreateVolume from volume",
                             "DeleteVolume (clone)", "DeleteSnapshot", "DeleteVolume (source, after its clones)")}
        _, src, _ = self.create(self.name("src"))
        sids, clones = [], []
        for _ in range(n):
            el, resp = self.call("CreateSnapshot", {"name": self.name("snap"), "source_volume_id": src})
            r["CreateSnapshot"].append(el)
            sids.append(resp["snapshot"]["snapshot_id"])
        for i in range(n):
            el, vid, _ = self.create(self.name("fromsnap"), source={"snapshot": {"snapshot_id": sids[i]}})
            r["CreateVolume from snapshot"].append(el)
            clones.append(vid)
        for _ in range(n):
            el, vid, _ = self.create(self.name("fromvol"), source={"volume": {"volume_id": src}})
            r["CreateVolume from volume"].append(el)
            clones.append(vid)
        for vid in clones:
            r["DeleteVolume (clone)"].append(self.delete(vid))
        for sid in sids:
            r["DeleteSnapshot"].append(self.call("DeleteSnapshot", {"snapshot_id": sid})[0])
        r["DeleteVolume (source, after its clones)"].append(self.delete(src))
        self.raw["snapshots"] = r
        log(f"snapshots: CreateSnapshot p50 {pct(r['CreateSnapshot'], 50) * 1e3:.1f} ms, from snapshot "
            f"{pct(r['CreateVolume from snapshot'], 50) * 1e3:.1f} ms, from volume "
            f"{pct(r['CreateVolume from volume'], 50) * 1e3:.1f} ms")

    def phase_memory(self, cycles, conc):
        samples = [dict(cycle=0, t=0.0, **self.proc.snapshot())]
        done = [0]
        lock = threading.Lock()
        t0 = time.monotonic()
        cpu0 = self.proc.cpu_s()

        def cycle(_):
            _, vid, _ = self.create(self.name("mem"))
            self.delete(vid)
            with lock:
                done[0] += 1
                if done[0] % 100 == 0 and done[0] < cycles:
                    samples.append(dict(cycle=done[0], t=time.monotonic() - t0, **self.proc.snapshot()))

        _, wall = run_pool(conc, range(cycles), cycle)
        samples.append(dict(cycle=cycles, t=wall, **self.proc.snapshot()))
        self.raw["memory"] = {"cycles": cycles, "conc": conc, "wall": wall, "samples": samples,
                              "cpu_s": self.proc.cpu_s() - cpu0}
        log(f"memory: {cycles} cycles in {wall:.1f} s; VmRSS {samples[0]['rss_kib']} -> {samples[-1]['rss_kib']} KiB")

    def run(self):
        a = self.a
        self.raw["rss_at_launch"] = self.proc.snapshot()
        # warm-up (not counted): the cluster connection, the journal objects, gRPC
        for i in range(a.warmup):
            _, vid, img = self.create(self.name("warm"))
            if i == 0:
                self.check_image(img, DEFAULT_FEATURES)
            self.delete(vid)
        _, vid, img = self.create(self.name("warm"), DEFAULT_FEATURES + ",journaling")
        self.check_image(img, DEFAULT_FEATURES + ",journaling")
        self.delete(vid)
        self.raw["rss_after_warmup"] = self.proc.snapshot()
        t_sweep = time.monotonic()
        for rnd in range(1, a.rounds + 1):
            for conc in a.conc:
                self.phase_controller(rnd, conc, DEFAULT_FEATURES, a.count)
                if conc == a.journal_conc:
                    self.phase_controller(rnd, conc, DEFAULT_FEATURES + ",journaling", a.count)
                if conc in a.peer_conc:
                    self.phase_cli(rnd, conc, DEFAULT_FEATURES, a.cli_count)
                    self.phase_librbd(rnd, conc, DEFAULT_FEATURES, a.count)
        self.raw["sweep_wall"] = time.monotonic() - t_sweep
        if a.snaps:
            self.phase_snapshots(a.snaps)
        if a.cycles:
            self.phase_memory(a.cycles, a.mem_conc)
        self.raw["pool_empty"] = self.check_pool_empty()


def log(msg):
    print(f"[csi-controller] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
def ms(x):
    return f"{x * 1e3:.1f}"


def rng(vals, fmt):
    m = statistics.median(vals)
    if len(vals) == 1 or min(vals) == max(vals):
        return fmt % m
    return (fmt + " (" + fmt + "–" + fmt + ")") % (m, min(vals), max(vals))


def data_rows(raw):
    """The sweep's rows for bench/plot.py (csi-controller): per call kind, path, features and
    concurrency, calls/s (median of the rounds) and p50/p99 in ms, at full precision."""
    groups = {}
    for r in raw["runs"]:
        groups.setdefault((r["path"], r["features"], r["conc"]), []).append(r)
    order = {"controller": 0, "rbd CLI": 1, "librbd in process": 2}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 9), len(k[1]), k[2]))
    rows = []
    for op in ("create", "delete"):
        for k in keys:
            runs = groups[k]
            lat = [x for r in runs for x in r[op]]
            rate = [len(r[op]) / r[op + "_wall"] for r in runs]
            wl = f"{op}, {k[2]} in flight" + (" (journaling)" if "journaling" in k[1] else "")
            rows.append({"workload": wl, "path": k[0], "features": k[1], "concurrency": k[2],
                         "calls": len(lat), "ops_per_s": statistics.median(rate),
                         "ops_per_s_rounds": rate, "p50_ms": pct(lat, 50) * 1e3,
                         "p99_ms": pct(lat, 99) * 1e3})
    return rows


def write_data(path, raw, title, source):
    """<result>.data.json through bench/plot.py's write_rows; a failure only warns."""
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import plot
        plot.write_rows(path, "csi-controller", data_rows(raw), title, source)
    except Exception as e:   # the table is written already: never lose the run for this
        log(f"WARNING: no {path}: {e}")


def report(raw, header):
    groups = {}
    for r in raw["runs"]:
        groups.setdefault((r["path"], r["features"], r["conc"]), []).append(r)

    def agg(runs):
        c = [x for r in runs for x in r["create"]]
        d = [x for r in runs for x in r["delete"]]
        g = dict(n=len(c), create=c, delete=d,
                 cps=[len(r["create"]) / r["create_wall"] for r in runs],
                 dps=[len(r["delete"]) / r["delete_wall"] for r in runs])
        for kind, n in (("cpu_create", len(c)), ("cpu_delete", len(d))):
            g[kind] = {k: sum(r[kind][k] for r in runs) / n for k in runs[0][kind]}
        return g

    order = {"controller": 0, "rbd CLI": 1, "librbd in process": 2}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 9), len(k[1]), k[2]))
    A = {k: agg(groups[k]) for k in keys}
    L = ["| path | image features | concurrency | creates | creates/s | create p50 ms | create p99 ms "
         "| deletes/s | delete p50 ms | delete p99 ms | CPU ms per create: controller / Ceph / client "
         "| CPU ms per delete: controller / Ceph / client |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]

    def cpu_cell(c, path):
        ctl = f"{c['controller'] * 1e3:.1f}" if path == "controller" else "–"
        return f"{ctl} / {c['ceph'] * 1e3:.1f} / {c['client'] * 1e3:.1f}"

    for k in keys:
        g = A[k]
        feats = "default" if k[1] == DEFAULT_FEATURES else k[1].replace(DEFAULT_FEATURES, "default")
        L.append(f"| {k[0]} | {feats} | {k[2]} | {g['n']} | {rng(g['cps'], '%.1f')} | {ms(pct(g['create'], 50))} "
                 f"| {ms(pct(g['create'], 99))} | {rng(g['dps'], '%.1f')} | {ms(pct(g['delete'], 50))} "
                 f"| {ms(pct(g['delete'], 99))} | {cpu_cell(g['cpu_create'], k[0])} | {cpu_cell(g['cpu_delete'], k[0])} |")
    sweep = "\n".join(L)

    S = ["| operation (concurrency 1) | n | p50 ms | p99 ms | max ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for op, v in raw.get("snapshots", {}).items():
        if v:
            S.append(f"| {op} | {len(v)} | {ms(pct(v, 50))} | {ms(pct(v, 99))} | {ms(max(v))} |")
    snaps = "\n".join(S)

    mem = raw.get("memory") or {}
    M, rss_ratio = [], None
    if mem:
        s = mem["samples"]
        rss_ratio = s[-1]["rss_kib"] / s[0]["rss_kib"]
        M = ["| cycles done | seconds | VmRSS MiB | threads | open fds |", "| ---: | ---: | ---: | ---: | ---: |"]
        for x in s:
            M.append(f"| {x['cycle']} | {x['t']:.1f} | {x['rss_kib'] / 1024:.1f} | {x['threads']} | {x['fds']} |")
        half = [x for x in s if x["cycle"] >= mem["cycles"] // 2]
        slope = (half[-1]["rss_kib"] - half[0]["rss_kib"]) / max(1, half[-1]["cycle"] - half[0]["cycle"])
        M.append("")
        M.append(f"{mem['cycles']} CreateVolume+DeleteVolume cycles at concurrency {mem['conc']} in "
                 f"{mem['wall']:.1f} s ({mem['cycles'] / mem['wall']:.1f} cycles/s; controller CPU "
                 f"{mem['cpu_s'] / mem['cycles'] * 1e3:.1f} ms per cycle). VmRSS {s[0]['rss_kib'] / 1024:.1f} MiB at the "
                 f"start, {s[-1]['rss_kib'] / 1024:.1f} MiB at the end: ratio {rss_ratio:.3f}; peak "
                 f"{max(x['rss_kib'] for x in s) / 1024:.1f} MiB; over the second half "
                 f"{slope:+.2f} KiB per cycle. (At launch, before any call: "
                 f"{raw['rss_at_launch']['rss_kib'] / 1024:.1f} MiB; after the warm-up: "
                 f"{raw['rss_after_warmup']['rss_kib'] / 1024:.1f} MiB.)")
    memtab = "\n".join(M)

    # targets
    T = ["| target | measured | verdict |", "| --- | --- | --- |"]
    k8 = ("controller", DEFAULT_FEATURES, 8)
    if k8 in A:
        g = A[k8]
        p50, p99 = pct(g["create"], 50), pct(g["create"], 99)
        cps = statistics.median(g["cps"])
        T.append(f"| CreateVolume 10 GiB, default features, 8 concurrent: p50 ≤ 100 ms | {ms(p50)} ms "
                 f"| {'met' if p50 <= 0.100 else '**missed**'} |")
        T.append(f"| … p99 ≤ 500 ms | {ms(p99)} ms | {'met' if p99 <= 0.500 else '**missed**'} |")
        T.append(f"| ≥ 20 creates/s at 8 concurrent | {rng(g['cps'], '%.1f')} creates/s (median of rounds) "
                 f"| {'met' if cps >= 20 else '**missed**'} |")
    if rss_ratio is not None:
        s = mem["samples"]
        T.append(f"| memory flat over {mem['cycles']} create/delete cycles (end ≤ 1.10 × start) | "
                 f"{s[0]['rss_kib'] / 1024:.1f} → {s[-1]['rss_kib'] / 1024:.1f} MiB, ratio {rss_ratio:.3f} "
                 f"| {'met' if rss_ratio <= 1.10 else '**missed**'} |")
    targets = "\n".join(T)

    # peers
    P = ["| concurrency | controller create p50 / rbd CLI p50 | controller creates/s ÷ rbd CLI creates/s "
         "| controller delete p50 / rbd rm p50 | controller create p50 / librbd in process p50 |",
         "| ---: | ---: | ---: | ---: | ---: |"]
    for (path, feats, conc) in keys:
        if path != "rbd CLI":
            continue
        c, p = A.get(("controller", feats, conc)), A[(path, feats, conc)]
        lb = A.get(("librbd in process", feats, conc))
        if not c:
            continue
        P.append(f"| {conc} | {ms(pct(c['create'], 50))} / {ms(pct(p['create'], 50))} ms = "
                 f"{pct(c['create'], 50) / pct(p['create'], 50):.2f} | "
                 f"{statistics.median(c['cps']):.1f} ÷ {statistics.median(p['cps']):.1f} = "
                 f"{statistics.median(c['cps']) / statistics.median(p['cps']):.2f} | "
                 f"{ms(pct(c['delete'], 50))} / {ms(pct(p['delete'], 50))} ms = "
                 f"{pct(c['delete'], 50) / pct(p['delete'], 50):.2f} | "
                 + (f"{ms(pct(c['create'], 50))} / {ms(pct(lb['create'], 50))} ms = "
                    f"{pct(c['create'], 50) / pct(lb['create'], 50):.2f} |" if lb else "– |"))
    peers = "\n".join(P)

    checks = "\n".join(f"- {'ok' if c['ok'] else 'FAILED'}: {c['msg']}" for c in raw["checks"])
    md = (f"{header}\n\n## CreateVolume / DeleteVolume\n\n{sweep}\n\n## Against the peers (same run)\n\n{peers}\n\n"
          f"## Snapshots and clones\n\n{snaps}\n\n## Controller memory\n\n{memtab}\n\n"
          f"## The issue's targets\n\n{targets}\n\n## Checks\n\n{checks}\n")
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--pid", type=int, required=True, help="the controller's pid (VmRSS, CPU)")
    ap.add_argument("--ceph-pids", default="", help="comma-separated pids of the mon and OSD (their CPU)")
    ap.add_argument("--conf", required=True, help="ceph.conf, for the peers and the checks only")
    ap.add_argument("--keyring", required=True, help="the user's keyring (the key goes into the secrets)")
    ap.add_argument("--user", default="kube")
    ap.add_argument("--pool", default="kube")
    ap.add_argument("--cluster-id", required=True)
    ap.add_argument("--size-gib", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--count", type=int, default=160, help="creates per concurrency per round")
    ap.add_argument("--cli-count", type=int, default=40, help="rbd CLI creates per concurrency per round")
    ap.add_argument("--conc", default="1,8,32")
    ap.add_argument("--peer-conc", default="1,8")
    ap.add_argument("--journal-conc", type=int, default=8)
    ap.add_argument("--snaps", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--mem-conc", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--raw", required=True, help="the raw JSON (every latency)")
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--header", default="# CSI controller benchmark")
    ap.add_argument("--out-data", help="also write the sweep's rows as JSON (bench/plot.py's "
                    "schema) to this file")
    ap.add_argument("--data-source", default="", help="the result's name, in --out-data")
    a = ap.parse_args()
    a.conc = [int(x) for x in a.conc.split(",") if x]
    a.peer_conc = [int(x) for x in a.peer_conc.split(",") if x]
    a.ceph_pids = [int(x) for x in a.ceph_pids.split(",") if x]
    b = Bench(a)
    rc = 0
    try:
        b.run()
        if not b.raw["pool_empty"]:
            rc = 1
    except BenchError as e:
        log(f"ERROR: {e}")
        rc = 1
    finally:
        with open(a.raw, "w") as f:
            json.dump(b.raw, f)
    if rc == 0 or b.raw["runs"]:
        md = report(b.raw, a.header if rc == 0 else a.header + "\n\n**The run failed part way: partial numbers.**")
        with open(a.out_md, "w") as f:
            f.write(md)
        print(md)
        if a.out_data:
            write_data(a.out_data, b.raw, a.header.splitlines()[0].lstrip("# "),
                       a.data_source or os.path.basename(a.out_md))
    return rc


if __name__ == "__main__":
    sys.exit(main())
