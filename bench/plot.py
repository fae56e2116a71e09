#!/usr/bin/python3
"""bench/plot.py - PNG plots beside a benchmark's markdown table.

    /usr/bin/python3 bench/plot.py [--out-dir DIR] [--dpi N] [--report FILE|-] [--no-data]
                                   RESULT.md|RESULT.json ...

Reads one result of a bench/ script (the markdown table every script writes, or the
normalized <base>.data.json this tool writes; nbd-peers' raw <base>.json works too) and
draws, for each metric, one figure of grouped bars: one group per workload, one bar per
path (our server, its peers, and reference paths such as a RAM disk), beside the input:

    nbd-peers, rbd-peers, kernel-devices,  <base>-iops.png (IOPS, higher is better)
    kernel-paths
                                           <base>-p99.png  (p99 latency, lower is better)
    csi-controller                         <base>-ops.png  (creates/s and deletes/s)
                                           <base>-p99.png  (create/delete p99 ms)
    csi-stage                              <base>-time.png (median s, min-max whiskers, 3 s target;
                                             per device type and fs: ublk ÷ nbd labels)
                                           <base>-split.png (NodeStage's map/probe/mkfs/mount/other)
    metrics-overhead                       <base>-iops.png (per round and the median: metrics on
                                             vs off, label on/off, a 0.98 x off tick on each)
                                           <base>-cpu.png  (server CPU µs per request, on vs off)
                                           <base>-scrape.png (ms per /metrics scrape of N exports:
                                             median bar, whisker to max, p95 tick, 50 ms target)
    metrics-scrape (metrics-scrape-devices) <base>-scrape.png (ms per scrape by mapped devices,
                                             one bar per daemon; whisker, p95 tick, 50 ms target)

Over each of our bars: ours / the best peer in that workload and metric (the best peer's bar
is hatched), e.g. "1.34x" on IOPS (above 1 is better) or "0.81x" on p99 (below 1 is better).
Reference paths (brd, librbd in process) are drawn in grey and are never "the best peer".
The label is the ratio of the two plotted values; rbd-peers' table gives the median of its
per-round ratios instead, which can differ from it in the second decimal. metrics-overhead's
"median" group is the exception: its label is the table's median of the per-round on/off
ratios (the number its verdict uses), not the ratio of the two median bars.

It also writes <base>.data.json: the rows it plotted, machine-readable (from the markdown
table: the table's precision), unless --no-data; that one even without matplotlib. --report writes what was drawn, figure by
figure (PNG, pixel size, workloads, bars per series, ratios), as JSON; the test reads it.

Exit status: 0 plotted; 1 an input could not be read or plotted; 3 matplotlib is missing
(Debian: apt-get install python3-matplotlib). Nothing here needs a display (Agg backend).
Import this module without matplotlib: parse() and load() do not need it.
"""
import argparse
import json
import os
import re
import sys

SCHEMA = "rbdnbd-bench-plot/1"
EXIT_NO_MATPLOTLIB = 3

# ---------------------------------------------------------------------------------------
# Markdown tables
# ---------------------------------------------------------------------------------------


def md_tables(text):
    """Every pipe table in text: [{"heading", "cols", "rows": [[cell, ...]]}]."""
    out, heading, cur = [], "", None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            heading = s.lstrip("#").strip()
        if s.startswith("|") and s.endswith("|"):
            cells = [c.strip() for c in s[1:-1].split("|")]
            if cur is None:
                cur = {"heading": heading, "cols": [c.lower() for c in cells], "rows": []}
                out.append(cur)
            elif all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            else:
                cur["rows"].append(cells)
        else:
            cur = None
    return out


def num(cell):
    """The first number in a cell ("1.23 (1.0-1.4)" -> 1.23, "12.6" -> 12.6); None if none."""
    m = re.search(r"-?\d+(?:\.\d+)?", cell.replace(",", "").replace("*", ""))
    return float(m.group()) if m else None


def find_table(tables, *need):
    for t in tables:
        if all(n in t["cols"] for n in need):
            return t
    return None


def col(t, row, name):
    return row[t["cols"].index(name)]


def title_of(text, fallback):
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def kind_of(path, text):
    base = os.path.basename(path)
    for k in ("nbd-peers", "rbd-peers", "kernel-devices", "kernel-paths", "csi-controller", "csi-stage",
              "metrics-overhead", "metrics-scrape"):
        if base.startswith(k):
            return k
    first = title_of(text, "").lower()
    for k, key in (("nbd-peers", "nbd peers"), ("rbd-peers", "rbd-peers"),
                   ("kernel-devices", "kernel-devices"), ("kernel-paths", "kernel-paths"),
                   ("csi-controller", "csi controller"),
                   ("csi-stage", "csi stage"), ("metrics-overhead", "/metrics overhead"),
                   ("metrics-scrape", "/metrics scrape")):
        if key in first:
            return k
    raise ValueError(f"{path}: not a result of a known benchmark (nbd-peers, rbd-peers, "
                     "kernel-devices, kernel-paths, csi-controller, csi-stage, metrics-overhead, metrics-scrape)")


IO_FIGURES = [
    {"name": "iops", "metric": "iops", "ylabel": "IOPS", "better": "higher"},
    {"name": "p99", "metric": "p99_us", "ylabel": "p99 latency (µs)", "better": "lower"},
]


SCRAPE_FIGURE = {"name": "scrape", "metric": "scrape_ms", "better": "lower",
                 "ylabel": "ms per /metrics scrape", "caption": "bar: median, whisker: max, tick: p95",
                 "range": [None, "scrape_ms_max"], "marks": [{"field": "scrape_ms_p95", "label": "p95"}],
                 "target": {"value": 50.0, "label": "target: a scrape ≤ 50 ms"}}


def spec(kind, rows):
    """What a benchmark's rows mean: our paths, the peers, reference paths, the figures."""
    paths = {r["path"] for r in rows}
    if kind == "nbd-peers":
        return {"ours": ["rbd-nbdd"], "peers": ["nbdkit", "qemu-nbd"], "refs": [],
                "figures": IO_FIGURES}
    if kind == "rbd-peers":
        return {"ours": sorted((p for p in paths if p.startswith("rbd-nbdd")), key=lambda p: (len(p), p)),
                "peers": ["fio-rbd", "qemu-nbd"], "refs": [], "figures": IO_FIGURES}
    if kind == "kernel-devices":
        return {"ours": ["rbd-nbdd"], "peers": ["rbd-nbd", "krbd"], "refs": ["brd"],
                "figures": IO_FIGURES}
    if kind == "kernel-paths":   # bench/kernel-paths.sh: the rbd-nbdd paths (nbd 1c/2c, ublk)
        known = ["rbd-nbdd nbd 1c", "rbd-nbdd nbd 2c", "rbd-nbdd ublk"]
        return {"ours": [p for p in known if p in paths]
                + sorted(p for p in paths if p.startswith("rbd-nbdd") and p not in known),
                "peers": ["rbd-nbd", "krbd"], "refs": [], "figures": IO_FIGURES,
                "ratio_caption": "label: rbd-nbdd path ÷ best peer (hatched)"}
    if kind == "csi-controller":
        return {"ours": ["controller"], "peers": ["rbd CLI"], "refs": ["librbd in process"],
                "group_name": "call and concurrency", "figures": [
                    {"name": "ops", "metric": "ops_per_s", "ylabel": "calls/s", "better": "higher"},
                    {"name": "p99", "metric": "p99_ms", "ylabel": "p99 latency (ms)", "better": "lower"}]}
    if kind == "csi-stage":
        # Old results: one series per filesystem ("ext4", "xfs"). Since the device type
        # dimension: "<device> <fs>" ("nbd xfs", "ublk xfs"; "<kernel> <device> <fs>" when one
        # result holds several kernels), ublk ours and nbd the peer, each ublk bar labelled
        # ublk ÷ nbd of the same filesystem; -split.png (where stage's time goes) when the
        # rows carry part_seconds.
        time_fig = {"name": "time", "metric": "seconds", "ylabel": "seconds (median; min-max)",
                    "better": "lower", "range": ["seconds_min", "seconds_max"],
                    "target": {"value": 3.0, "label": "target: stage + publish ≤ 3 s"}}
        dev = {r["path"]: r.get("device") for r in rows}
        ublk = sorted(p for p in paths if dev[p] == "ublk")
        nbd = sorted(p for p in paths if dev[p] == "nbd")
        res = {"ours": sorted(paths), "peers": [], "refs": [], "series_name": "filesystem",
               "group_name": "phase", "figures": [time_fig]}
        if ublk or nbd:
            res["series_name"] = "device and fs"
        if ublk and nbd:
            pairs = {}
            for p in ublk:
                q = next((n for n in nbd if n == re.sub(r"\bublk\b", "nbd", p, count=1)), None)
                if q:
                    pairs[p] = q
            res.update({"ours": ublk, "peers": nbd, "ratio_pairs": pairs,
                        # pairs side by side: ublk ext4, nbd ext4, ublk xfs, nbd xfs
                        "order": [x for p in ublk for x in (p, pairs.get(p)) if x]
                        + [p for p in nbd if p not in pairs.values()],
                        "ratio_caption": "label: ublk ÷ nbd, same filesystem"})
        if any(r.get("part_seconds") is not None for r in rows):
            res["figures"] = [time_fig, {"name": "split", "metric": "part_seconds", "better": "lower",
                                         "ylabel": "NodeStage seconds (median; min-max)",
                                         "group_name": "part",
                                         "range": ["part_seconds_min", "part_seconds_max"]}]
        return res
    if kind == "metrics-overhead":
        return {"ours": ["metrics on"] + sorted(p for p in paths if p not in ("metrics on", "metrics off")),
                "peers": ["metrics off"], "refs": [], "group_name": "round",
                "ratio_caption": "label: metrics on ÷ off",
                "figures": [
                    {"name": "iops", "metric": "iops", "ylabel": "IOPS (4k randread QD32)", "better": "higher",
                     "ratio_field": "iops_ratio",
                     "ratio_caption": "label: on ÷ off (median: median of the round ratios)",
                     "ratio_target": {"value": 0.98, "label": "target: on ≥ 0.98 × off"}},
                    {"name": "cpu", "metric": "cpu_us", "ylabel": "server CPU per request (µs)",
                     "better": "lower"},
                    dict(SCRAPE_FIGURE, group_name="exports", series_name="process")]}
    if kind == "metrics-scrape":
        return {"ours": sorted(paths), "peers": [], "refs": [], "series_name": "daemon",
                "group_name": "mapped devices", "figures": [SCRAPE_FIGURE]}
    raise ValueError(f"unknown benchmark {kind!r}")


def complete(kind, rows, title=None, source=""):
    """rows of benchmark kind -> the normalized result (SCHEMA) that draw() takes."""
    rows = [r for r in rows if r.get("path")]
    if not rows:
        raise ValueError(f"no {kind} rows")
    res = {"schema": SCHEMA, "bench": kind, "title": title or kind, "source": source}
    res.update(spec(kind, rows))
    res["rows"] = rows
    return res


def parse_nbd_peers(tables):
    t = find_table(tables, "workload", "server", "iops", "p99 µs")
    return [{"workload": col(t, r, "workload"),
             "path": col(t, r, "server").replace("(best peer)", "").strip(),
             "iops": num(col(t, r, "iops")), "p99_us": num(col(t, r, "p99 µs"))}
            for r in t["rows"]]


def parse_rbd_peers(tables):
    t = find_table(tables, "workload", "path", "iops", "p99 µs")
    return [{"workload": col(t, r, "workload"), "path": col(t, r, "path"),
             "iops": num(col(t, r, "iops")), "p99_us": num(col(t, r, "p99 µs"))}
            for r in t["rows"]]


def parse_kernel_devices(tables):
    t = find_table(tables, "workload", "engine", "device", "iops", "p99 µs")
    rows = []
    for r in t["rows"]:
        iops = col(t, r, "iops")
        if iops.upper().startswith("FAILED"):
            continue
        rows.append({"workload": f"{col(t, r, 'workload')} · {col(t, r, 'engine')}",
                     "path": col(t, r, "device"), "iops": num(iops),
                     "p99_us": num(col(t, r, "p99 µs"))})
    return rows


def parse_kernel_paths(tables):
    t = find_table(tables, "workload", "path", "iops", "p50 µs", "p99 µs")
    rows = []
    for r in t["rows"]:
        iops = col(t, r, "iops")
        if iops.upper().startswith("FAILED"):
            continue
        rows.append({"workload": col(t, r, "workload"), "path": col(t, r, "path"),
                     "iops": num(iops), "p50_us": num(col(t, r, "p50 µs")),
                     "p99_us": num(col(t, r, "p99 µs"))})
    return rows


def parse_csi_controller(tables):
    t = find_table(tables, "path", "concurrency", "creates/s", "create p99 ms", "deletes/s")
    rows = []
    for op in ("create", "delete"):
        for r in t["rows"]:
            feats = col(t, r, "image features")
            wl = f"{op}, {col(t, r, 'concurrency')} in flight"
            if "journaling" in feats:
                wl += " (journaling)"
            rows.append({"workload": wl, "path": col(t, r, "path"),
                         "ops_per_s": num(col(t, r, op + "s/s")),
                         "p99_ms": num(col(t, r, op + " p99 ms"))})
    return rows


def parse_csi_stage(tables):
    """Old tables: | fs | phase | min | median | max |; since the device type dimension also
    kernel and device columns, and a | kernel | device | fs | map | ... | table of medians."""
    t = find_table(tables, "fs", "phase", "min", "median", "max")
    has_dev = "device" in t["cols"]
    kernels = {col(t, r, "kernel") for r in t["rows"]} if "kernel" in t["cols"] else set()

    def path(t, r):
        if not has_dev:
            return col(t, r, "fs")
        k = f"{col(t, r, 'kernel')} " if len(kernels) > 1 else ""
        return f"{k}{col(t, r, 'device')} {col(t, r, 'fs')}"

    def dims(t, r):
        return {"kernel": col(t, r, "kernel"), "device": col(t, r, "device"), "fs": col(t, r, "fs")} if has_dev else {}

    rows = [dict({"workload": col(t, r, "phase").replace("*", "").strip(), "path": path(t, r),
                  "seconds": num(col(t, r, "median")), "seconds_min": num(col(t, r, "min")),
                  "seconds_max": num(col(t, r, "max"))}, **dims(t, r)) for r in t["rows"]]
    s = find_table(tables, "kernel", "device", "fs", "map", "mkfs", "mount")
    if s is not None and has_dev:
        for r in s["rows"]:
            for part in ("map", "probe", "mkfs", "mount", "other"):
                if part in s["cols"] and num(col(s, r, part)) is not None:
                    rows.append(dict({"workload": part, "path": path(s, r),
                                      "part_seconds": num(col(s, r, part))}, **dims(s, r)))
    return rows


def to_ms(cell):
    """'2.10 ms' -> 2.1, '1.2 s' -> 1200, '850 µs' -> 0.85; None if no number."""
    v = num(cell)
    if v is None:
        return None
    unit = re.sub(r"[-\d.,*\s]", "", cell).lower()
    return v * 1000 if unit == "s" else v / 1000 if unit in ("µs", "us") else v


def to_kib(cell):
    v = num(cell)
    if v is None:
        return None
    unit = cell.lower()
    return v * 1024 if "mib" in unit else v / 1024 if re.search(r"\d\s*b$", unit) else v


def scrape_row(t, r, workload, path):
    return {"workload": workload, "path": path, "scrape_ms": to_ms(col(t, r, "median")),
            "scrape_ms_p95": to_ms(col(t, r, "p95")), "scrape_ms_max": to_ms(col(t, r, "max")),
            "body_kib": to_kib(col(t, r, "body")), "series": num(col(t, r, "series"))}


def parse_metrics_overhead(tables):
    t = find_table(tables, "round", "metrics off (iops)", "metrics on (iops)", "on/off")
    cpu_off, cpu_on = "server cpu/request off (µs)", "on (µs)"
    has_cpu = cpu_off in t["cols"] and cpu_on in t["cols"]
    rows = []
    for r in t["rows"]:
        rnd = col(t, r, "round").replace("*", "").strip()
        off = {"workload": rnd, "path": "metrics off", "iops": num(col(t, r, "metrics off (iops)")),
               "cpu_us": num(col(t, r, cpu_off)) if has_cpu else None}
        on = {"workload": rnd, "path": "metrics on", "iops": num(col(t, r, "metrics on (iops)")),
              "cpu_us": num(col(t, r, cpu_on)) if has_cpu else None}
        if rnd == "median":   # the table's median of the per-round ratios, not median on / median off
            on["iops_ratio"] = num(col(t, r, "on/off"))
        if "scrapes during the run" in t["cols"]:
            on["scrapes"] = num(col(t, r, "scrapes during the run"))
        rows += [off, on]
    s = find_table(tables, "body", "series", "median", "p95", "max")
    if s is not None:
        m = re.search(r"scrape of (\d+) exports", s["heading"].lower())
        for r in s["rows"]:
            rows.append(scrape_row(s, r, f"{m.group(1)} exports" if m else "scrape", "rbd-nbdd serve"))
    return rows


def parse_metrics_scrape(tables):
    t = find_table(tables, "daemon", "devices", "body", "series", "median", "p95", "max")
    return [scrape_row(t, r, f"{col(t, r, 'devices')} devices", col(t, r, "daemon")) for r in t["rows"]]


PARSERS = {"nbd-peers": parse_nbd_peers, "rbd-peers": parse_rbd_peers,
           "kernel-devices": parse_kernel_devices, "kernel-paths": parse_kernel_paths,
           "csi-controller": parse_csi_controller,
           "csi-stage": parse_csi_stage, "metrics-overhead": parse_metrics_overhead,
           "metrics-scrape": parse_metrics_scrape}


def parse(path, text):
    """A markdown result -> the normalized result (see SCHEMA); ValueError if unreadable."""
    kind = kind_of(path, text)
    tables = md_tables(text)
    try:
        rows = PARSERS[kind](tables)
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        raise ValueError(f"{path}: no {kind} table found ({e.__class__.__name__}: {e})") from None
    try:
        return complete(kind, rows, title_of(text, kind), os.path.basename(path))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def from_nbd_peers_raw(path, runs):
    """nbd_peers.py's raw list of runs -> normalized rows (the median run by IOPS, as its table)."""
    order, by = [], {}
    for r in runs:
        k = (r["workload"], r["server"])
        if k not in by:
            order.append(k)
        by.setdefault(k, []).append(r)
    rows = []
    for k in order:
        rs = sorted(by[k], key=lambda r: r["iops"])
        m = rs[len(rs) // 2]
        rows.append({"workload": k[0], "path": k[1], "iops": m["iops"], "p99_us": m["p99_us"],
                     "p50_us": m["p50_us"], "mbps": m["mbps"], "cpu_us_per_io": m["cpu_us_per_io"]})
    return complete("nbd-peers", rows, "NBD peers", os.path.basename(path))


def write_rows(path, kind, rows, title=None, source=""):
    """For the bench scripts: write their rows (full precision) as <base>.data.json."""
    res = complete(kind, rows, title, source)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return res


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        data = json.loads(text)
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            return complete(data["bench"], data["rows"], data.get("title"),
                            data.get("source") or os.path.basename(path))
        if isinstance(data, list) and data and {"workload", "server", "iops"} <= set(data[0]):
            return from_nbd_peers_raw(path, data)
        raise ValueError(f"{path}: neither {SCHEMA} data nor nbd-peers raw runs")
    return parse(path, text)


# ---------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------

OURS_COLORS = ["#1f5fa8", "#3c9bd6", "#0b3d6b"]
PEER_COLORS = ["#e07b1f", "#c0392b", "#8e5a2b"]
REF_COLORS = ["#9a9a9a", "#6e6e6e"]


def import_pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def order_paths(res):
    seen = []
    for r in res["rows"]:
        if r["path"] not in seen:
            seen.append(r["path"])
    ours = [p for p in res["ours"] if p in seen]
    peers = [p for p in res["peers"] if p in seen]
    refs = [p for p in res["refs"] if p in seen]
    other = [p for p in seen if p not in ours + peers + refs]
    return ours, peers + other, refs


def draw(plt, res, fig_spec, png, dpi):
    metric, higher = fig_spec["metric"], fig_spec["better"] == "higher"
    workloads = []
    for r in res["rows"]:
        if r["workload"] not in workloads and r.get(metric) is not None:
            workloads.append(r["workload"])
    ours, peers, refs = order_paths(res)
    paths = ours + peers + refs
    if res.get("order"):   # a bar order of the benchmark's own (csi-stage: ublk beside its nbd)
        paths = [p for p in res["order"] if p in paths] + [p for p in paths if p not in res["order"]]
    val = {(r["workload"], r["path"]): r for r in res["rows"] if r.get(metric) is not None}
    paths = [p for p in paths if any((w, p) in val for w in workloads)]
    if not workloads or not paths:
        raise ValueError(f"no {metric} values to plot")
    color = {}
    for group, palette in ((ours, OURS_COLORS), (peers, PEER_COLORS), (refs, REF_COLORS)):
        for i, p in enumerate(group):
            color[p] = palette[i % len(palette)]

    # the best peer per workload in this metric; with ratio_pairs, each of our series is
    # compared with its own peer series instead (no hatching)
    pairs = res.get("ratio_pairs") or {}
    best = {}
    for w in ([] if pairs else workloads):
        cands = [(val[(w, p)][metric], p) for p in peers if (w, p) in val and val[(w, p)][metric]]
        if cands:
            best[w] = (max if higher else min)(cands)[1]

    n = len(paths)
    width = min(0.8 / n, 0.45)   # one lone bar per group stays a bar, not a slab
    fig_w = min(16.0, max(6.5, 1.0 + len(workloads) * (0.35 + 0.28 * n)))
    fig, ax = plt.subplots(figsize=(fig_w, 4.4))
    values = [val[k][metric] for k in val if k[0] in workloads and val[k][metric] > 0]
    for k in fig_spec.get("range", []) + [m["field"] for m in fig_spec.get("marks", [])]:
        if k:   # whiskers and marks must fit too
            values += [val[v][k] for v in val if v[0] in workloads and (val[v].get(k) or 0) > 0]
    log = len(values) > 1 and max(values) / min(values) > 30
    series, ratios, target_drawn = [], [], False
    for i, p in enumerate(paths):
        xs, ys, hatches, errs = [], [], [], [[], []]
        for wi, w in enumerate(workloads):
            if (w, p) not in val:
                continue
            r = val[(w, p)]
            xs.append(wi - width * n / 2 + width * (i + 0.5))
            ys.append(r[metric])
            hatches.append("///" if best.get(w) == p else "")
            if "range" in fig_spec:
                lo, hi = (r.get(k) if k else None for k in fig_spec["range"])
                errs[0].append(max(0.0, r[metric] - (lo if lo is not None else r[metric])))
                errs[1].append(max(0.0, (hi if hi is not None else r[metric]) - r[metric]))
        role = "ours" if p in ours else "peer" if p in peers else "reference"
        label = p if role != "reference" else f"{p} (reference)"
        bars = ax.bar(xs, ys, width * 0.92, label=label, color=color[p], edgecolor="black",
                      linewidth=0.5, yerr=errs if "range" in fig_spec else None,
                      capsize=3 if "range" in fig_spec else 0, error_kw={"linewidth": 0.8})
        for b, h in zip(bars, hatches):
            if h:
                b.set_hatch(h)
        for mi, m in enumerate(fig_spec.get("marks", [])):   # e.g. p95: a black tick on the bar
            mx = [x for x, w in zip(xs, [w for w in workloads if (w, p) in val])
                  if val[(w, p)].get(m["field"]) is not None]
            my = [val[(w, p)][m["field"]] for w in workloads
                  if (w, p) in val and val[(w, p)].get(m["field"]) is not None]
            if mx:
                ax.scatter(mx, my, marker="_", s=min(400, 1600 * width), color="black", linewidths=1.5,
                           zorder=3, label=m["label"] if i == 0 else None)
        series.append({"path": p, "role": role, "bars": len(bars),
                       "best_peer_bars": sum(1 for h in hatches if h)})
        if role == "ours":
            for b, x, y, w in zip(bars, xs, ys, [w for w in workloads if (w, p) in val]):
                bp = pairs.get(p) if pairs else best.get(w)
                if bp is None or (w, bp) not in val or not val[(w, bp)][metric]:
                    continue
                ratio = y / val[(w, bp)][metric]
                given = val[(w, p)].get(fig_spec["ratio_field"]) if "ratio_field" in fig_spec else None
                if given is not None:   # the table's own ratio (e.g. a median of per-round ratios)
                    ratio = given
                rt = fig_spec.get("ratio_target")
                bound = rt["value"] if rt else 1
                good = ratio >= bound if higher else ratio <= bound
                top = y
                if rt:   # a tick at target x the peer's value across our bar: under it misses
                    ty = rt["value"] * val[(w, bp)][metric]
                    ax.hlines(ty, x - width * 0.5, x + width * 0.5, colors="#b42318", linestyles="--",
                              linewidth=1.2, zorder=3, label=rt["label"] if not target_drawn else None)
                    target_drawn = True
                    top = max(y, ty)
                ax.annotate(f"{ratio:.{fig_spec.get('ratio_digits', 2)}f}x", (x, top), xytext=(0, 3),
                            textcoords="offset points",
                            ha="center", va="bottom", fontsize=7, rotation=90 if n > 3 else 0,
                            fontweight="bold", color="#1a7f37" if good else "#b42318")
                ratios.append({"workload": w, "path": p, "best_peer": bp, "ratio": round(ratio, 4),
                               "from": "table" if given is not None else "bars"})
                if rt:
                    ratios[-1]["meets_target"] = good
    if "target" in fig_spec:
        tg = fig_spec["target"]
        ax.axhline(tg["value"], color="#b42318", linestyle="--", linewidth=1, label=tg["label"])
    if log:
        ax.set_yscale("log")
        lo = min(values) / 2
        ax.set_ylim(lo, max(values) * (8 if ratios else 2.5))
    else:
        top = max(values + ([fig_spec["target"]["value"]] if "target" in fig_spec else []))
        ax.set_ylim(0, top * 1.25)
    ax.set_xlim(-0.6, len(workloads) - 0.4)
    ax.set_xticks(range(len(workloads)))
    flat = len(workloads) <= 6 or max(len(w) for w in workloads) <= 8
    ax.set_xticklabels([w.replace(" · ", "\n") for w in workloads], fontsize=8,
                       rotation=0 if flat else 30, ha="center" if flat else "right")
    ax.set_ylabel(fig_spec["ylabel"] + (" (log)" if log else ""))
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    sense = "higher is better" if higher else "lower is better"
    series_name = fig_spec.get("series_name", res.get("series_name", "path"))
    group_name = fig_spec.get("group_name", res.get("group_name", "workload"))
    title = f"{res['bench']}: {fig_spec['ylabel']} per {series_name} and {group_name} ({sense})"
    sub = res.get("source", "")
    if fig_spec.get("caption"):
        sub += "  ·  " + fig_spec["caption"]
    if ratios:
        sub += "  ·  " + fig_spec.get("ratio_caption", res.get("ratio_caption",
                                                                 f"label: {'/'.join(ours)} ÷ best peer (hatched)"))
    ax.set_title(title + "\n" + sub, fontsize=9)
    extra = ("target" in fig_spec) + target_drawn + len(fig_spec.get("marks", []))
    ax.legend(fontsize=7, loc="upper left", ncol=min(4, n + extra), framealpha=0.9)
    fig.tight_layout()
    fig.savefig(png, dpi=dpi)
    w_px, h_px = (int(round(v)) for v in fig.get_size_inches() * dpi)
    plt.close(fig)
    out = {"png": png, "figure": fig_spec["name"], "metric": metric, "log_scale": log,
           "width_px": w_px, "height_px": h_px, "workloads": workloads, "series": series,
           "bars": sum(s["bars"] for s in series), "ratios": ratios}
    if "target" in fig_spec:
        out["target"] = fig_spec["target"]["value"]
    if "ratio_target" in fig_spec:
        out["ratio_target"] = fig_spec["ratio_target"]["value"]
    return out


def out_base(path, out_dir):
    base = os.path.basename(path)
    for ext in (".data.json", ".json", ".md"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return os.path.join(out_dir or os.path.dirname(os.path.abspath(path)), base)


def write_data_json(res, path, out_dir=None):
    """<base>.data.json beside the result (needs no matplotlib); returns the base."""
    base = out_base(path, out_dir)
    if not path.endswith(".data.json"):
        with open(base + ".data.json", "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return base


def plot_file(plt, path, out_dir=None, dpi=100, write_data=True):
    res = load(path)
    base = write_data_json(res, path, out_dir) if write_data else out_base(path, out_dir)
    return {"input": path, "bench": res["bench"],
            "figures": [draw(plt, res, spec, f"{base}-{spec['name']}.png", dpi)
                        for spec in res["figures"]]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help="RESULT.md, RESULT.data.json or nbd-peers RESULT.json")
    ap.add_argument("--out-dir", help="where the PNGs go (default: beside each input)")
    ap.add_argument("--dpi", type=int, default=100)
    ap.add_argument("--report", help="write what was drawn as JSON to FILE ('-': stdout)")
    ap.add_argument("--no-data", action="store_true", help="do not write <base>.data.json")
    a = ap.parse_args(argv)
    plt = import_pyplot()
    if plt is None:
        if not a.no_data:   # the machine-readable rows do not need matplotlib
            for p in a.inputs:
                try:
                    write_data_json(load(p), p, a.out_dir)
                except (OSError, ValueError, KeyError) as e:
                    print(f"bench/plot.py: cannot read {p}: {e}", file=sys.stderr)
        print("bench/plot.py: matplotlib is not installed, no plot drawn "
              "(Debian: apt-get install python3-matplotlib; deploy/install-deps.sh does it). "
              "Run it with /usr/bin/python3.", file=sys.stderr)
        return EXIT_NO_MATPLOTLIB
    reports, rc = [], 0
    for p in a.inputs:
        try:
            rep = plot_file(plt, p, a.out_dir, a.dpi, not a.no_data)
        except (OSError, ValueError, KeyError) as e:
            print(f"bench/plot.py: cannot plot {p}: {e}", file=sys.stderr)
            rc = 1
            continue
        reports.append(rep)
        for f in rep["figures"]:
            print(f"[plot] wrote {f['png']} ({f['width_px']}x{f['height_px']} px): "
                  f"{len(f['workloads'])} workloads, {len(f['series'])} series, {f['bars']} bars, "
                  f"{len(f['ratios'])} ratio labels", file=sys.stderr)
    if a.report:
        text = json.dumps(reports, indent=1, ensure_ascii=False)
        if a.report == "-":
            print(text)
        else:
            with open(a.report, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
