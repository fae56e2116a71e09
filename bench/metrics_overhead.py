#!/usr/bin/python3
"""bench/metrics-overhead.sh: what /metrics costs the data path, and what a scrape costs.

1. IOPS: fio --ioengine=nbd 4k randread QD32 (one connection, Unix socket) against two
   `rbd-nbdd serve` processes with a memory export (prefilled): one with metrics off, one
   with --metrics-address and a scraper fetching /metrics every second during its runs.
   Interleaved rounds (the order alternates each round); the median of the per-round
   on/off ratios and the ratio of the medians are reported. Target (issue 14): >= 0.98.
2. Scrape time: one serve process with 64 memory exports and 4 live connections to each
   (256 connections, as 64 kernel devices mapped with --connections 4 would have), every
   export with I/O and an error counted, so every family has its series; N timed GETs of
   /metrics. Target: <= 50 ms. This is a proxy for 64 mapped /dev/nbdX devices of the
   daemon: the same cells, snapshot and writer, without the kernel or the daemon-only
   families (a few lines per device more).

Writes a markdown table to bench/results/metrics-overhead-<date>.md and prints it, then draws
its plots beside it (bench/lib_plot.sh's bench_plot -> bench/plot.py): <base>-iops.png (per
round and the median, metrics on vs off, the on/off ratio over each pair and a 0.98 x off
tick), <base>-cpu.png (server CPU per request) and <base>-scrape.png (the 64-export scrape:
median, p95, max against the 50 ms target), and <base>.data.json. Plotting never fails the
benchmark: a missing matplotlib or a plotting error only warns.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[metrics-overhead] {msg}", file=sys.stderr, flush=True)


class Serve:
    """One `rbd-nbdd serve` process on a Unix socket; stopped with SIGTERM."""

    def __init__(self, binary, tmp, name, exports, metrics, workers):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.logf = os.path.join(tmp, f"{name}.log")
        cmd = [binary, "serve", "--socket", self.sock, "--workers", str(workers), "--log-level", "warn"]
        for e in exports:
            cmd += ["--export", e]
        if metrics:
            cmd += ["--metrics-address", "127.0.0.1:0", "--log-level", "info"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.logf, "w"), stderr=subprocess.STDOUT)
        self.metrics_url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited: {open(self.logf).read()[-2000:]}")
            ready = os.path.exists(self.sock)
            if metrics:
                m = re.search(r"metrics: serving (http://\S+/metrics)", open(self.logf).read())
                self.metrics_url = m.group(1) if m else None
                ready = ready and self.metrics_url is not None
            if ready:
                return
            time.sleep(0.05)
        raise SystemExit(f"{name} not ready within 30 s")

    def uri(self, export):
        return f"nbd+unix:///{export}?socket={self.sock}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def fio(uri, rw, runtime, size, iodepth, extra=()):
    cmd = ["fio", "--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", "--bs=4k",
           f"--iodepth={iodepth}", "--numjobs=1", f"--size={size}", "--output-format=json", *extra]
    if runtime:
        cmd += ["--time_based", f"--runtime={runtime}", "--ramp_time=1"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    if job["error"]:
        raise SystemExit(f"fio error {job['error']}")
    d = job["read"] if rw.endswith("read") else job["write"]
    return d["iops"], d["total_ios"]


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Scraper(threading.Thread):
    """GETs `url` every `interval` s until stopped; records each scrape's wall time."""

    def __init__(self, url, interval=1.0):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.stop_event = threading.Event()
        self.times = []

    def run(self):
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=10) as r:
                r.read()
            self.times.append(time.perf_counter() - t0)
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()


def overhead(args, tmp):
    spec = f"name=disk,backend=memory,size={args.size}"
    off = Serve(args.rbdnbd, tmp, "off", [spec], False, args.workers)
    on = Serve(args.rbdnbd, tmp, "on", [spec], True, args.workers)
    try:
        for s in (off, on):  # prefill: reads of holes would be cheaper than reads of data
            fio(s.uri("disk"), "write", 0, args.size, 32, ["--bs=1M"])  # noqa: the IOPS are not used
        rows = []
        for r in range(args.rounds):
            order = [("off", off), ("on", on)] if r % 2 == 0 else [("on", on), ("off", off)]
            got = {}
            for label, s in order:
                scraper = Scraper(s.metrics_url) if s.metrics_url else None
                if scraper:
                    scraper.start()
                cpu0 = cpu_seconds(s.proc.pid)
                got[label], ios = fio(s.uri("disk"), "randread", args.runtime, args.size, 32)
                # Server CPU per request (ramp included in both): less noisy than IOPS on a shared machine.
                got[label + "_cpu_us"] = (cpu_seconds(s.proc.pid) - cpu0) * 1e6 / max(ios, 1)
                scrapes = 0
                if scraper:
                    scraper.stop()
                    scrapes = len(scraper.times)
                    got["scrapes"] = scrapes
            rows.append((r + 1, got["off"], got["on"], got["on"] / got["off"], got.get("scrapes", 0),
                         got["off_cpu_us"], got["on_cpu_us"]))
            log(f"round {r + 1}: off {got['off']:.0f} IOPS, on {got['on']:.0f} IOPS "
                f"(ratio {got['on'] / got['off']:.4f}, {got.get('scrapes', 0)} scrapes); server CPU per "
                f"request {got['off_cpu_us']:.2f} / {got['on_cpu_us']:.2f} us")
        return rows
    finally:
        off.stop()
        on.stop()


def scrape_64(args, tmp):
    import nbd  # python3-libnbd (Debian's /usr/bin/python3)
    n = args.exports
    specs = [f"name=d{i:02d},backend=memory,size=64M" for i in range(n)]
    s = Serve(args.rbdnbd, tmp, "many", specs, True, args.workers)
    handles = []
    try:
        for i in range(n):
            for c in range(args.connections):
                h = nbd.NBD()
                h.connect_uri(s.uri(f"d{i:02d}"))
                h.pwrite(b"x" * 4096, 4096 * c)
                h.pread(4096, 0)
                if c == 0:
                    h.flush()
                    h.trim(4096, 8192)
                    h.zero(4096, 16384)
                    h.set_strict_mode(0)
                    try:
                        h.pread(4096, h.get_size())
                    except nbd.Error:
                        pass
                handles.append(h)
        times, size, series = [], 0, 0
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(s.metrics_url, timeout=10) as r:
                body = r.read()
            times.append(time.perf_counter() - t0)
            size = len(body)
            series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        conns = re.findall(rb"^rbdnbd_device_connections\{[^}]*\} (\d+)", body, re.M)
        live = sum(int(x) for x in conns)
        return times, size, series, live
    finally:
        for h in handles:
            try:
                h.shutdown()
            except nbd.Error:
                pass
        s.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rbdnbd", default=os.environ.get("RBDNBD", f"{ROOT}/build/gateway/control/rbd-nbdd"))
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 6)))
    p.add_argument("--runtime", type=int, default=int(os.environ.get("RUNTIME", 10)))
    p.add_argument("--size", default=os.environ.get("SIZE", "1G"))
    p.add_argument("--workers", type=int, default=int(os.environ.get("RBDNBD_WORKERS", 1)))
    p.add_argument("--exports", type=int, default=64)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--scrapes", type=int, default=50)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    for tool in ("fio",):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing {tool}")
    tmp = tempfile.mkdtemp(prefix="rbdnbd-moh.")
    try:
        rows = overhead(args, tmp)
        times, size, series, live = scrape_64(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratios = [r[3] for r in rows]
    med_off = statistics.median(r[1] for r in rows)
    med_on = statistics.median(r[2] for r in rows)
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    now = datetime.datetime.utcnow()
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [
        f"# /metrics overhead, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"`bench/metrics-overhead.sh` at {commit}, {cpu} CPUs. rbd-nbdd serve, memory export "
        f"({args.size}, prefilled), Unix socket, --workers {args.workers}; fio --ioengine=nbd 4k randread "
        f"QD32, one connection, {args.runtime} s (+1 s ramp) per run, {args.rounds} interleaved rounds "
        "(order alternating). \"on\": --metrics-address and a GET /metrics every second during the run.",
        "",
        "| round | metrics off (IOPS) | metrics on (IOPS) | on/off | scrapes during the run "
        "| server CPU/request off (µs) | on (µs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.4f} | {r[4]} | {r[5]:.2f} | {r[6]:.2f} |")
    cpu_off = statistics.median(r[5] for r in rows)
    cpu_on = statistics.median(r[6] for r in rows)
    lines += [
        f"| **median** | **{med_off:.0f}** | **{med_on:.0f}** | **{statistics.median(ratios):.4f}** | "
        f"| **{cpu_off:.2f}** | **{cpu_on:.2f}** |",
        "",
        f"Median of the per-round ratios: {statistics.median(ratios):.4f}; ratio of the medians: "
        f"{med_on / med_off:.4f} (target: >= 0.98, i.e. at most 2% fewer IOPS). Spread of the "
        f"ratios: {min(ratios):.4f} .. {max(ratios):.4f}. Server CPU per request (all threads, "
        f"/proc/PID/stat, clock ticks of 10 ms: coarse): off {cpu_off:.2f} µs, on {cpu_on:.2f} µs "
        f"({(cpu_on / cpu_off - 1) * 100:+.1f}%).",
        "",
        f"## Scrape of {args.exports} exports",
        "",
        f"One serve process, {args.exports} memory exports, {args.connections} live connections to each "
        f"({live} registered with the statistics), every op and one error counted on each; "
        f"{len(times)} sequential GETs of /metrics (urllib, loopback).",
        "",
        "| body | series | median | p95 | max |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {size / 1024:.0f} KiB | {series} | {statistics.median(ms):.2f} ms | {p95:.2f} ms | {ms[-1]:.2f} ms |",
        "",
        f"Target: <= 50 ms. This is a proxy for {args.exports} mapped /dev/nbdX devices of the daemon: "
        "the same per-connection cells, Snapshot() and WriteDeviceFamilies, but no kernel devices and "
        "without the daemon-only per-device families (3 more lines per device).",
        "",
    ]
    text = "\n".join(lines)
    out = args.out or os.path.join(ROOT, "bench", "results", f"metrics-overhead-{now:%Y-%m-%d-%H%M}.md")
    with open(out, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {out}")
    plot(out)


def plot(result):
    """bench_plot RESULT (bench/lib_plot.sh): PNGs and .data.json beside it; only ever warns."""
    lib = os.path.join(ROOT, "bench", "lib_plot.sh")
    try:
        subprocess.run(["bash", "-c", '. "$1" && bench_plot "$2"', "bench_plot", lib, result],
                       timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log(f"WARNING: no plots ({e}); the table is in {result}")


if __name__ == "__main__":
    main()
