#!/usr/bin/python3
"""tests/bench/plot_test.py - bench/plot.py draws what the results say.

    /usr/bin/python3 tests/bench/plot_test.py        (no root, a few seconds; exit 0 = pass)

Renders the committed fixtures (tests/bench/fixtures/*.md: cuts of real bench results) into
a temporary directory and checks, for every figure: the PNG exists, has the PNG signature
and an IHDR whose width and height match what the plotter reports, lies within sane
dimensions and 200 KB; the plotter drew the expected workloads, series, bars per series,
hatched best-peer bars and ratio labels (values computed here from the fixture's numbers),
target lines (csi-stage's 3 s, the 50 ms of a /metrics scrape) and the metrics-overhead
0.98 x off marks; the .data.json it writes re-plots to the same bars. Then the failure paths: a missing
matplotlib exits 3 with a clear message, and bench/lib_plot.sh's bench_plot (what the bench
scripts call) warns and returns 0 both then and on an unreadable result.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLOT = os.path.join(ROOT, "bench", "plot.py")
FIX = os.path.join(ROOT, "tests", "bench", "fixtures")
PY = "/usr/bin/python3"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def run_plot(inputs, out, extra=(), env=None):
    rep = os.path.join(out, "report.json")
    r = subprocess.run([PY, PLOT, "--out-dir", out, "--report", rep, *extra, *inputs],
                       capture_output=True, text=True, timeout=120, env=env)
    data = json.load(open(rep)) if os.path.exists(rep) else None
    return r, data


def check_png(fig, name):
    png = fig["png"]
    size = os.path.getsize(png) if os.path.exists(png) else 0
    check(1000 < size <= 200 * 1024, f"{name}: {os.path.basename(png)} is {size} bytes (1 KB-200 KB)")
    dims = png_size(png)
    check(dims is not None, f"{name}: PNG signature and IHDR")
    if dims:
        check(dims == (fig["width_px"], fig["height_px"]),
              f"{name}: IHDR {dims[0]}x{dims[1]} = reported {fig['width_px']}x{fig['height_px']}")
        check(400 <= dims[0] <= 1600 and 250 <= dims[1] <= 600, f"{name}: sane size {dims[0]}x{dims[1]}")


def series(fig):
    return {s["path"]: (s["role"], s["bars"], s["best_peer_bars"]) for s in fig["series"]}


def ratios(fig):
    return {(r["workload"], r["path"], r["best_peer"]): r["ratio"] for r in fig["ratios"]}


def close(a, b):
    return a is not None and abs(a - b) < 1e-3


def main():
    tmp = tempfile.mkdtemp(prefix="plot-test.")
    fixtures = ["nbd-peers-fixture.md", "kernel-devices-fixture.md", "csi-stage-fixture.md",
                "csi-controller-fixture.md", "metrics-overhead-fixture.md",
                "metrics-scrape-devices-fixture.md", "kernel-paths-fixture.md"]
    r, rep = run_plot([os.path.join(FIX, f) for f in fixtures], tmp)
    check(r.returncode == 0, "plot.py exits 0 on the fixtures"
          + ("" if r.returncode == 0 else f" (got {r.returncode}: {r.stderr.strip()[-500:]})"))
    if rep is None:
        check(False, "plot.py wrote its report")
        return
    by = {(x["bench"], f["figure"]): f for x in rep for f in x["figures"]}
    check(sorted(by) == sorted([("nbd-peers", "iops"), ("nbd-peers", "p99"),
                                ("kernel-devices", "iops"), ("kernel-devices", "p99"),
                                ("csi-stage", "time"), ("csi-controller", "ops"),
                                ("csi-controller", "p99"), ("metrics-overhead", "iops"),
                                ("metrics-overhead", "cpu"), ("metrics-overhead", "scrape"),
                                ("metrics-scrape", "scrape"), ("kernel-paths", "iops"),
                                ("kernel-paths", "p99")]),
          f"the expected figures: {sorted(by)}")
    for (bench, name), fig in sorted(by.items()):
        check_png(fig, f"{bench}/{name}")

    # nbd-peers: 2 workloads x 3 servers; nbdkit is the best peer in both, both metrics
    wl = ["4k randread QD1", "4k randread QD32"]
    f = by.get(("nbd-peers", "iops"))
    if f:
        check(f["workloads"] == wl, f"nbd-peers iops: workloads {f['workloads']}")
        check(series(f) == {"rbd-nbdd": ("ours", 2, 0), "nbdkit": ("peer", 2, 2),
                            "qemu-nbd": ("peer", 2, 0)}, f"nbd-peers iops: series {series(f)}")
        check(f["bars"] == 6, f"nbd-peers iops: 6 bars ({f['bars']})")
        rt = ratios(f)
        check(len(rt) == 2 and close(rt.get((wl[0], "rbd-nbdd", "nbdkit")), 42200 / 31557)
              and close(rt.get((wl[1], "rbd-nbdd", "nbdkit")), 102393 / 48313),
              f"nbd-peers iops: ratio labels 1.34x and 2.12x vs nbdkit ({rt})")
        check(f["log_scale"] is False, "nbd-peers iops: linear scale (values within 30x)")
    f = by.get(("nbd-peers", "p99"))
    if f:
        rt = ratios(f)
        check(len(rt) == 2 and close(rt.get((wl[0], "rbd-nbdd", "nbdkit")), 66.0 / 81.4)
              and close(rt.get((wl[1], "rbd-nbdd", "nbdkit")), 1044.5 / 4177.9),
              f"nbd-peers p99: ratios against the lowest peer p99 ({rt})")
        check(f["log_scale"] is True, "nbd-peers p99: log scale (66 µs to 5 ms)")

    # kernel-devices: the FAILED rbd-nbdd row is left out; brd is a reference, never the best peer
    f = by.get(("kernel-devices", "iops"))
    if f:
        check(f["workloads"] == ["4k randread QD32 · libaio", "4k randread QD32 · io_uring"],
              f"kernel-devices iops: workloads {f['workloads']}")
        check(series(f) == {"rbd-nbdd": ("ours", 1, 0), "rbd-nbd": ("peer", 2, 0),
                            "krbd": ("peer", 2, 2), "brd": ("reference", 2, 0)},
              f"kernel-devices iops: series {series(f)}")
        check(f["bars"] == 7, f"kernel-devices iops: 7 bars ({f['bars']})")
        rt = ratios(f)
        check(rt.keys() == {("4k randread QD32 · io_uring", "rbd-nbdd", "krbd")}
              and close(list(rt.values())[0], 392 / 677), f"kernel-devices iops: one ratio, 0.58x krbd ({rt})")

    # kernel-paths: the three rbd-nbdd paths are ours (in that order), rbd-nbd and krbd the
    # peers; the FAILED ublk QD1 row is left out; krbd is the best peer everywhere; a range
    # "1800 (1700–1900)" reads as its median
    wl = ["4k randread QD1", "4k randread QD32"]
    f = by.get(("kernel-paths", "iops"))
    if f:
        check(f["workloads"] == wl, f"kernel-paths iops: workloads {f['workloads']}")
        check([s["path"] for s in f["series"]] == ["rbd-nbdd nbd 1c", "rbd-nbdd nbd 2c", "rbd-nbdd ublk",
                                                   "rbd-nbd", "krbd"],
              f"kernel-paths iops: series order {[s['path'] for s in f['series']]}")
        check(series(f) == {"rbd-nbdd nbd 1c": ("ours", 2, 0), "rbd-nbdd nbd 2c": ("ours", 2, 0),
                            "rbd-nbdd ublk": ("ours", 1, 0), "rbd-nbd": ("peer", 2, 0),
                            "krbd": ("peer", 2, 2)}, f"kernel-paths iops: series {series(f)}")
        check(f["bars"] == 9, f"kernel-paths iops: 9 bars ({f['bars']})")
        rt = ratios(f)
        check(len(rt) == 5 and close(rt.get((wl[1], "rbd-nbdd ublk", "krbd")), 1800 / 3000)
              and close(rt.get((wl[0], "rbd-nbdd nbd 1c", "krbd")), 180 / 700)
              and close(rt.get((wl[1], "rbd-nbdd nbd 2c", "krbd")), 1400 / 3000),
              f"kernel-paths iops: ratio labels vs krbd ({rt})")
    f = by.get(("kernel-paths", "p99"))
    if f:
        rt = ratios(f)
        check(len(rt) == 5 and close(rt.get((wl[1], "rbd-nbdd ublk", "krbd")), 40000 / 20000)
              and close(rt.get((wl[0], "rbd-nbdd nbd 2c", "krbd")), 11000 / 2900),
              f"kernel-paths p99: ratios against krbd's p99 ({rt})")
    data = os.path.join(tmp, "kernel-paths-fixture.data.json")
    if os.path.exists(data):
        d = json.load(open(data))
        ublk = [x for x in d["rows"] if x["path"] == "rbd-nbdd ublk"]
        check(d["bench"] == "kernel-paths" and len(d["rows"]) == 9
              and len(ublk) == 1 and ublk[0]["iops"] == 1800 and ublk[0]["p50_us"] == 17000,
              f"kernel-paths data.json: 9 rows, ublk QD32 1800 IOPS p50 17000 ({len(d['rows'])} rows)")
    else:
        check(False, "kernel-paths-fixture.data.json written")

    # csi-stage: no peers, so no ratio; whiskers and the target line
    f = by.get(("csi-stage", "time"))
    if f:
        check(f["workloads"] == ["stage + publish", "unpublish + unstage"], f"csi-stage: phases {f['workloads']}")
        check(series(f) == {"ext4": ("ours", 2, 0), "xfs": ("ours", 2, 0)}, f"csi-stage: series {series(f)}")
        check(f["ratios"] == [], "csi-stage: no ratio labels")

    # csi-controller: create and delete at 8 in flight, plus the journaling row (controller only)
    f = by.get(("csi-controller", "ops"))
    if f:
        check(f["workloads"] == ["create, 8 in flight", "create, 8 in flight (journaling)",
                                 "delete, 8 in flight", "delete, 8 in flight (journaling)"],
              f"csi-controller ops: workloads {f['workloads']}")
        check(series(f) == {"controller": ("ours", 4, 0), "rbd CLI": ("peer", 2, 2),
                            "librbd in process": ("reference", 2, 0)}, f"csi-controller ops: series {series(f)}")
        rt = ratios(f)
        check(close(rt.get(("create, 8 in flight", "controller", "rbd CLI")), 192.8 / 18.6) and len(rt) == 2,
              f"csi-controller ops: 10.37x the rbd CLI's creates/s, from the median of a range cell ({rt})")

    # metrics-overhead: rounds 1, 8, 9 and the median row; "metrics off" is the (only) peer
    rounds = ["1", "8", "9", "median"]
    iops = {"1": (77231, 73306), "8": (44511, 51116), "9": (30378, 43958)}   # (on, off)
    cpu = {"1": (10.11, 10.48), "8": (7.34, 6.16), "9": (5.17, 5.78), "median": (8.46, 8.31)}
    f = by.get(("metrics-overhead", "iops"))
    if f:
        check(f["workloads"] == rounds, f"metrics-overhead iops: rounds {f['workloads']}")
        check(series(f) == {"metrics on": ("ours", 4, 0), "metrics off": ("peer", 4, 4)},
              f"metrics-overhead iops: series {series(f)}")
        rt = ratios(f)
        want = {w: on / off for w, (on, off) in iops.items()}
        want["median"] = 1.0253   # the table's median of the per-round ratios, not 73720 / 70034
        check(len(rt) == 4 and all(close(rt.get((w, "metrics on", "metrics off")), v) for w, v in want.items()),
              f"metrics-overhead iops: on/off labels {want} ({rt})")
        src = {r["workload"]: r["from"] for r in f["ratios"]}
        check(src == {"1": "bars", "8": "bars", "9": "bars", "median": "table"},
              f"metrics-overhead iops: the median label comes from the table ({src})")
        check(f.get("ratio_target") == 0.98
              and {r["workload"]: r.get("meets_target") for r in f["ratios"]}
              == {"1": True, "8": False, "9": False, "median": True},
              f"metrics-overhead iops: 0.98 x off marks; rounds 8 and 9 miss it ({f['ratios']})")
        check(f["log_scale"] is False, "metrics-overhead iops: linear scale")
    f = by.get(("metrics-overhead", "cpu"))
    if f:
        rt = ratios(f)
        check(f["workloads"] == rounds and len(rt) == 4
              and all(close(rt.get((w, "metrics on", "metrics off")), on / off) for w, (on, off) in cpu.items()),
              f"metrics-overhead cpu: on/off of the CPU per request, median row too ({rt})")
        check("ratio_target" not in f and "target" not in f, "metrics-overhead cpu: no target")
    f = by.get(("metrics-overhead", "scrape"))
    if f:
        check(f["workloads"] == ["64 exports"] and series(f) == {"rbd-nbdd serve": ("ours", 1, 0)},
              f"metrics-overhead scrape: one bar, 64 exports ({f['workloads']}, {series(f)})")
        check(f.get("target") == 50.0 and f["ratios"] == [], "metrics-overhead scrape: 50 ms target, no ratio")

    # metrics-scrape: the daemon's scrape at 0 and 64 mapped devices
    f = by.get(("metrics-scrape", "scrape"))
    if f:
        check(f["workloads"] == ["0 devices", "64 devices"], f"metrics-scrape: device counts {f['workloads']}")
        check(series(f) == {"rbd-nbdd daemon, UML 6.1": ("ours", 2, 0)}, f"metrics-scrape: series {series(f)}")
        check(f.get("target") == 50.0 and f["ratios"] == [] and f["log_scale"] is False,
              f"metrics-scrape: 50 ms target line, no ratio, linear ({f.get('target')})")
    data = os.path.join(tmp, "metrics-scrape-devices-fixture.data.json")
    if os.path.exists(data):
        rows = json.load(open(data)).get("rows", [])
        got = [(r["workload"], r["scrape_ms"], r["scrape_ms_p95"], r["scrape_ms_max"], r["body_kib"], r["series"])
               for r in rows]
        check(got == [("0 devices", 2.1, 3.0, 4.2, 3, 41), ("64 devices", 15.1, 25.3, 40.0, 950, 8600)],
              f"metrics-scrape data.json: median, p95, max ms, body KiB, series ({got})")
    else:
        check(False, "metrics-scrape-devices-fixture.data.json written")

    # the .data.json written beside re-plots to the same figures
    data = os.path.join(tmp, "nbd-peers-fixture.data.json")
    check(os.path.exists(data), "nbd-peers-fixture.data.json written")
    if os.path.exists(data):
        d = json.load(open(data))
        check(d.get("schema") == "rbdnbd-bench-plot/1" and len(d.get("rows", [])) == 6,
              "data.json: schema and 6 rows")
        tmp2 = tempfile.mkdtemp(prefix="plot-test.", dir=tmp)
        r2, rep2 = run_plot([data], tmp2)
        check(r2.returncode == 0 and rep2 and [f["bars"] for f in rep2[0]["figures"]] == [6, 6]
              and ratios(rep2[0]["figures"][0]) == ratios(by[("nbd-peers", "iops")]),
              "data.json re-plots to the same bars and ratios")
    data = os.path.join(tmp, "metrics-overhead-fixture.data.json")
    if os.path.exists(data) and ("metrics-overhead", "iops") in by:
        tmp3 = tempfile.mkdtemp(prefix="plot-test.", dir=tmp)
        r6, rep6 = run_plot([data], tmp3)
        check(r6.returncode == 0 and rep6 and [f["figure"] for f in rep6[0]["figures"]] == ["iops", "cpu", "scrape"]
              and ratios(rep6[0]["figures"][0]) == ratios(by[("metrics-overhead", "iops")]),
              "metrics-overhead data.json re-plots to the same figures and on/off labels (median from the table)")

    # failure paths: no matplotlib (a shadowing package that refuses to import), a bad input
    fake = os.path.join(tmp, "nompl")
    os.makedirs(os.path.join(fake, "matplotlib"))
    with open(os.path.join(fake, "matplotlib", "__init__.py"), "w") as fh:
        fh.write("raise ImportError('no matplotlib (test)')\n")
    env = dict(os.environ, PYTHONPATH=fake)
    nompl_out = tempfile.mkdtemp(dir=tmp)
    r3, _ = run_plot([os.path.join(FIX, fixtures[0])], nompl_out, env=env)
    check(r3.returncode == 3 and "matplotlib is not installed" in r3.stderr,
          f"no matplotlib: exit 3 and says so ({r3.returncode}: {r3.stderr.strip()[:200]})")
    check(sorted(os.listdir(nompl_out)) == ["nbd-peers-fixture.data.json"],
          f"no matplotlib: the .data.json still written, no PNG ({sorted(os.listdir(nompl_out))})")
    bad = os.path.join(tmp, "nbd-peers-bad.md")
    with open(bad, "w") as fh:
        fh.write("# NBD peers\n\nno table here\n")
    r4, _ = run_plot([bad], tempfile.mkdtemp(dir=tmp))
    check(r4.returncode == 1 and "cannot plot" in r4.stderr, f"no table: exit 1 ({r4.returncode})")
    lib = os.path.join(ROOT, "bench", "lib_plot.sh")
    for what, arg, e in (("a bad result", bad, None), ("no matplotlib", os.path.join(tmp, "m.md"), env)):
        if e is not None:
            subprocess.run(["cp", os.path.join(FIX, fixtures[0]), arg], check=True)
        r5 = subprocess.run(["bash", "-c", f'set -euo pipefail; . "{lib}"; bench_plot "$1"; echo after',
                             "x", arg], capture_output=True, text=True, timeout=120, env=e)
        check(r5.returncode == 0 and r5.stdout.strip() == "after" and "WARNING" in r5.stderr,
              f"bench_plot on {what}: warns, returns 0, the script goes on ({r5.stderr.strip()[-160:]})")

    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
    print("PASS" if not failures else f"FAIL: {len(failures)} check(s)")
    sys.exit(1 if failures else 0)
