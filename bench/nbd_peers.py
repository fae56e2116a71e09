"""rbd-nbdd against its NBD peers (nbdkit, qemu-nbd), one interleaved fio run.

Run through bench/nbd-peers.sh (see there for the options). Every server is started once
and kept for the whole run; each export is prefilled with one full sequential write so that
reads return real data; then for each workload every server runs in turn, the order
rotated per workload, and the server's CPU time (utime+stime from /proc/PID/stat, which
counts all of its threads, exited ones included) is sampled around each fio run.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PEERS = ("nbdkit", "qemu-nbd")

WORKLOADS = [
    # name, fio rw, bs, iodepth
    ("4k randread QD1", "randread", "4k", 1),
    ("4k randread QD32", "randread", "4k", 32),
    ("4k randwrite QD1", "randwrite", "4k", 1),
    ("4k randwrite QD32", "randwrite", "4k", 32),
    ("1M seq read QD8", "read", "1M", 8),
    ("1M seq write QD8", "write", "1M", 8),
]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")" the fields start at #3 (state): utime is #14, stime #15.
    return int(fields[11]) + int(fields[12])


class Server:
    def __init__(self, kind, args, work):
        self.kind = kind
        self.args = args
        self.work = work
        self.proc = None
        self.notes = ""
        if args.tcp:
            self.port = free_port()
            self.uri = f"nbd://127.0.0.1:{self.port}/bench"
        else:
            self.sock = os.path.join(work, f"{kind}.sock")
            self.uri = f"nbd+unix:///bench?socket={self.sock}"

    def command(self, aio=None):
        a = self.args
        if self.kind == "rbd-nbdd":
            cmd = [a.rbdnbd, "serve", "--export", f"name=bench,backend=memory,size={a.size}",
                   "--log-level", "warn"]
            cmd += ["--tcp", f"127.0.0.1:{self.port}"] if a.tcp else ["--socket", self.sock]
            if a.workers:
                cmd += ["--workers", str(a.workers)]
            self.notes = "memory backend" + (f", --workers {a.workers}" if a.workers
                                             else ", default workers")
        elif self.kind == "nbdkit":
            cmd = ["nbdkit", "-f", "--exit-with-parent"]
            cmd += ["-i", "127.0.0.1", "-p", str(self.port)] if a.tcp else ["-U", self.sock]
            cmd += ["memory", a.size]
            self.notes = "memory plugin (sparse allocator), default 16 threads"
        else:
            img = os.path.join(a.shm, "qemu-nbd.img")
            subprocess.run(["truncate", "-s", a.size, img], check=True, timeout=30)
            cmd = ["qemu-nbd", "-f", "raw", "--cache=writeback", f"--aio={aio}",
                   "--discard=unmap", "-t", "-e", str(a.numjobs + 2), "-x", "bench"]
            cmd += ["-b", "127.0.0.1", "-p", str(self.port)] if a.tcp else ["-k", self.sock]
            cmd += [img]
            self.notes = (f"raw file in /dev/shm, --cache=writeback (tmpfs has no O_DIRECT; "
                          f"no flushes are sent), --aio={aio}")
        return cmd

    def start(self):
        attempts = [None] if self.kind != "qemu-nbd" else self.args.qemu_aio.split(",")
        for aio in attempts:
            cmd = self.command(aio)
            self.cmdline = " ".join(cmd)
            logf = open(os.path.join(self.work, f"{self.kind}.log"), "w")
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            if self.wait_ready():
                log(f"{self.kind} ready: {self.cmdline}")
                return
            self.stop()
            log(f"{self.kind} did not start with: {self.cmdline}")
        raise SystemExit(f"{self.kind} failed to start; see {self.work}/{self.kind}.log")

    def wait_ready(self, secs=30):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.args.tcp:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                elif os.path.exists(self.sock):
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                else:
                    raise OSError
                r = subprocess.run(["nbdinfo", "--size", self.uri], capture_output=True,
                                   text=True, timeout=10)
                if r.returncode == 0:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def fio(server, args, name, rw, bs, qd, runtime, out):
    cmd = ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={server.uri}", f"--rw={rw}",
           f"--bs={bs}", f"--iodepth={qd}", f"--numjobs={args.numjobs}", "--group_reporting",
           "--output-format=json", f"--output={out}"]
    if runtime:
        cmd += ["--time_based", f"--runtime={runtime}"]
    if rw.startswith("rand"):
        cmd += ["--norandommap", "--randrepeat=0"]
    if rw in ("read", "write") and args.numjobs > 1:
        # Sequential jobs each stream through their own part of the export.
        cmd += [f"--offset_increment={args.size_bytes // args.numjobs}",
                f"--size={args.size_bytes // args.numjobs}"]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=(runtime or 300) + 120)
    if r.returncode != 0:
        raise RuntimeError(f"fio against {server.kind} exited {r.returncode}: "
                           f"{r.stderr.strip()[-2000:]}")
    return json.load(open(out))


def measure(server, args, wl, rnd, work):
    name, rw, bs, qd = wl
    out = os.path.join(work, f"{server.kind}-{rw}-{bs}-{qd}-{rnd}.json")
    t0 = cpu_ticks(server.proc.pid)
    w0 = time.monotonic()
    res = fio(server, args, "bench", rw, bs, qd, args.runtime, out)
    wall = time.monotonic() - w0
    cpu_us = (cpu_ticks(server.proc.pid) - t0) * 1e6 / CLK_TCK
    job = res["jobs"][0]
    d = job["read"] if "read" in rw else job["write"]
    ios = job["read"]["total_ios"] + job["write"]["total_ios"]
    if job["error"]:
        raise RuntimeError(f"fio job error {job['error']} against {server.kind}")
    pct = d["clat_ns"].get("percentile", {})
    return {
        "workload": name, "server": server.kind, "round": rnd,
        "iops": d["iops"], "mbps": d["bw_bytes"] / 1e6,
        "p50_us": pct.get("50.000000", 0) / 1000, "p99_us": pct.get("99.000000", 0) / 1000,
        "ios": ios, "cpu_us": cpu_us, "cpu_us_per_io": cpu_us / ios if ios else float("nan"),
        "wall_s": wall,
    }


def table(results, servers):
    rows = ["| workload | server | IOPS | MB/s | p50 µs | p99 µs | server CPU µs/IO "
            "| IOPS ratio vs best peer | CPU ratio vs best peer |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for wl in WORKLOADS:
        name = wl[0]
        by = {}
        for s in servers:
            runs = [r for r in results if r["workload"] == name and r["server"] == s]
            if not runs:
                continue
            # The median run by IOPS stands for the server (with ROUNDS=1: the only run).
            runs.sort(key=lambda r: r["iops"])
            by[s] = runs[len(runs) // 2]
        peers = [by[p] for p in PEERS if p in by]
        best = max(peers, key=lambda r: r["iops"]) if peers else None
        for s in servers:
            if s not in by:
                continue
            r = by[s]
            if best:
                ir = f"{r['iops'] / best['iops']:.2f}"
                cr = f"{r['cpu_us_per_io'] / best['cpu_us_per_io']:.2f}" \
                    if best["cpu_us_per_io"] else "n/a"
            else:
                ir = cr = "n/a"
            mark = " (best peer)" if best is r else ""
            rows.append(f"| {name} | {s}{mark} | {r['iops']:.0f} | {r['mbps']:.1f} "
                        f"| {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['cpu_us_per_io']:.1f} "
                        f"| {ir} | {cr} |")
    return "\n".join(rows)


def draw_plots(result):
    """PNG plots beside the table (bench/plot.py: -iops.png, -p99.png, .data.json). A failure
    only warns: the table is written already and the benchmark's exit status stays."""
    try:
        rc = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "plot.py"), result],
                            timeout=120).returncode
    except (OSError, subprocess.TimeoutExpired) as e:
        rc = f"{e.__class__.__name__}: {e}"
    if rc == 3:
        log("WARNING: no plots: matplotlib is missing (apt-get install python3-matplotlib)")
    elif rc:
        log(f"WARNING: plotting {result} failed ({rc}); the table is intact")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcp", action="store_true", help="TCP on 127.0.0.1 instead of Unix sockets")
    ap.add_argument("--servers", default=os.environ.get("SERVERS", "rbd-nbdd,nbdkit,qemu-nbd"))
    ap.add_argument("--runtime", type=int, default=int(os.environ.get("RUNTIME", 10)))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 1)))
    ap.add_argument("--numjobs", type=int, default=int(os.environ.get("NUMJOBS", 1)))
    ap.add_argument("--size", default=os.environ.get("SIZE", "1G"))
    ap.add_argument("--workers", type=int, default=int(os.environ.get("RBDNBD_WORKERS", 0)))
    ap.add_argument("--workloads", default=os.environ.get("WORKLOADS", ""),
                    help="comma-separated substrings selecting workloads")
    ap.add_argument("--rbdnbd", default=os.environ.get(
        "RBDNBD", os.path.join(ROOT, "build/gateway/control/rbd-nbdd")))
    ap.add_argument("--qemu-aio", default=os.environ.get("QEMU_AIO", "io_uring,threads"),
                    help="qemu-nbd --aio modes to try, in order")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in ("rbd-nbdd",) + PEERS:
            raise SystemExit(f"unknown server {s}")
    if "rbd-nbdd" in servers and not os.access(args.rbdnbd, os.X_OK):
        raise SystemExit(f"no rbd-nbdd at {args.rbdnbd}: build it first (or --servers nbdkit,qemu-nbd)")
    for tool in ["fio", "nbdinfo"] + [s for s in servers if s != "rbd-nbdd"]:
        if not shutil.which(tool):
            raise SystemExit(f"missing {tool}: run deploy/install-deps.sh")
    global WORKLOADS
    if args.workloads:
        keys = [k.strip() for k in args.workloads.split(",")]
        WORKLOADS = [w for w in WORKLOADS if any(k in w[0] for k in keys)]
    args.size_bytes = int(subprocess.run(["numfmt", "--from=iec", args.size], check=True,
                                         capture_output=True, text=True).stdout)

    load_start = os.getloadavg()
    work = tempfile.mkdtemp(prefix="rbdnbd-bench.", dir="/tmp")
    args.shm = tempfile.mkdtemp(prefix="rbdnbd-bench.", dir="/dev/shm")
    started = []
    results = []
    try:
        objs = {s: Server(s, args, work) for s in servers}
        for s in servers:
            objs[s].start()
            started.append(objs[s])
        for s in servers:
            log(f"prefill {s}: one sequential 1M write over {args.size}")
            fio(objs[s], args, "prefill", "write", "1M", 8, 0, os.path.join(work, f"prefill-{s}.json"))
        for wi, wl in enumerate(WORKLOADS):
            for rnd in range(args.rounds):
                k = (wi + rnd) % len(servers)
                order = servers[k:] + servers[:k]
                for s in order:
                    r = measure(objs[s], args, wl, rnd, work)
                    results.append(r)
                    log(f"{wl[0]:<18} {s:<9} {r['iops']:>9.0f} IOPS  p50 {r['p50_us']:.1f} µs  "
                        f"CPU {r['cpu_us_per_io']:.1f} µs/IO")
                    if objs[s].proc.poll() is not None:
                        raise SystemExit(f"{s} exited during the run")
    finally:
        for o in started:
            o.stop()
        shutil.rmtree(args.shm, ignore_errors=True)

    date = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    transport = "TCP 127.0.0.1" if args.tcp else "Unix sockets"
    head = [
        f"# NBD peers: {', '.join(servers)} ({date})",
        "",
        f"- Host: {os.cpu_count()} cores, {platform.release()}; client and servers share them. "
        f"Load average (1 min) {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
        "(anything above ~1 means other work competed for the cores).",
        f"- fio {subprocess.run(['fio', '--version'], capture_output=True, text=True).stdout.strip()}"
        f" --ioengine=nbd over {transport}; {args.numjobs} job(s) = connection(s); "
        f"{args.runtime} s per run; {args.rounds} round(s), median by IOPS; export size {args.size}, "
        "prefilled with a full sequential write.",
        "- Interleaved: each workload runs every server in turn, order rotated per workload.",
        "- Server CPU: utime+stime of the whole process (all threads) from /proc/PID/stat "
        f"around each fio run ({CLK_TCK} ticks/s), divided by the I/Os fio completed.",
        "- Ratios are against the best peer (nbdkit or qemu-nbd, whichever had more IOPS).",
        "- Servers:",
    ] + [f"  - {o.kind}: `{o.cmdline}` — {o.notes}" for o in started] + [""]
    text = "\n".join(head) + "\n" + table(results, servers) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"nbd-peers-{date}.md")
    with open(path, "w") as f:
        f.write(text)
    with open(path[:-3] + ".json", "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {path}")
    shutil.rmtree(work, ignore_errors=True)
    draw_plots(path[:-3] + ".json")


if __name__ == "__main__":
    main()
