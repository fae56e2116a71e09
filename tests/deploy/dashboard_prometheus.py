#!/usr/bin/python3
"""Runs every query of the Grafana dashboard on a real Prometheus server.

test_manifests.py checks the dashboard's queries statically against gateway/metrics/METRICS.md;
this one executes them. A small HTTP server serves a synthetic /metrics built from METRICS.md
(every metric with its labels, counters and histogram buckets growing with time, one series
with an error errno, a non-ok control result and a non-OK gRPC code, so that the
error panels' filters match something); Debian's prometheus scrapes it every second; after a
few scrapes every panel query and every variable query (label_values) runs through the HTTP
API with the variables set to "all". Each must succeed and return data, and a quantile or a
ratio must be a finite number. So a query that parses but matches nothing, because of a
label value or a label that the contract's series do not have, fails here.

Usage: dashboard_prometheus.py [--root REPO]
No cluster, no build, no root. Exit 0 pass, 1 fail, 77 skip (no /usr/bin/prometheus).
Prints one line per query and "N passed, N failed".
"""

import http.server
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import monitoring_checks  # noqa: E402

# Label values of the synthetic series (the first is the common one; the second marks the
# series an error filter must find).
VALUES = {"device": ["nbd0", "nbd1"], "pool": ["kube"], "rados_namespace": [""], "image": ["img0"],
          "op": ["read", "write", "flush", "trim", "write_zeroes"], "errno": ["EIO"], "state": ["mapped", "reattaching"],
          "result": ["ok", "ENOENT"], "method": ["NodeStageVolume", "CreateVolume"], "code": ["OK", "NOT_FOUND"],
          "version": ["0.1.0"], "compiler": ["gcc 12.2"]}
BUCKETS = [0.0001, 0.001, 0.01, 0.1, 1.0]
START = time.time()


def label_sets(labels):
    sets = [{}]
    for name in sorted(labels):
        sets = [dict(s, **{name: v}) for s in sets for v in VALUES.get(name, ["x"])]
    return sets


def fmt_labels(d):
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}" if d else ""


def exposition(metrics):
    t = time.time() - START
    out = []
    for name, (kind, labels) in sorted(metrics.items()):
        out.append(f"# TYPE {name} {kind}")
        for i, ls in enumerate(label_sets(labels)):
            rate = 10.0 * (i + 1)
            if kind == "counter":
                out.append(f"{name}{fmt_labels(ls)} {rate * t:.3f}")
            elif kind == "gauge":
                v = time.time() - 2 if name.endswith("_timestamp_seconds") else 1 + i % 3
                out.append(f"{name}{fmt_labels(ls)} {v:.3f}")
            elif kind == "histogram":
                n = rate * t
                for j, le in enumerate(BUCKETS):
                    out.append(f'{name}_bucket{fmt_labels(dict(ls, le=repr(le)))} {n * (j + 1) / (len(BUCKETS) + 1):.3f}')
                out.append(f'{name}_bucket{fmt_labels(dict(ls, le="+Inf"))} {n:.3f}')
                out.append(f"{name}_sum{fmt_labels(ls)} {n * 0.01:.3f}")
                out.append(f"{name}_count{fmt_labels(ls)} {n:.3f}")
    return "\n".join(out) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    root = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv else ROOT
    prom = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(prom, os.X_OK):
        print("skip - prometheus is not installed (apt-get install prometheus)")
        return 77
    metrics, _ = monitoring_checks.parse_metrics_md(os.path.join(root, monitoring_checks.METRICS_MD))
    dash = json.load(open(os.path.join(root, "deploy", "kubernetes", monitoring_checks.DASHBOARD)))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            body = exposition(metrics).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="rbd-nbdd-dashboard.")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                   "scrape_configs": [{"job_name": "rbd-nbdd", "static_configs": [
                       {"targets": [f"127.0.0.1:{target.server_address[1]}"], "labels": {"node": "node-1"}}]}]}, f)
    proc = subprocess.Popen([prom, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "prometheus.log"), "w"))
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   - {name}")
        else:
            failed += 1
            print(f"FAIL - {name}" + (f": {detail}" if detail else ""))

    try:
        # Enough samples for rates over 5 s: wait until up{} has 6 scrapes behind it.
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(1)
            try:
                r = query(base, 'count_over_time(up{job="rbd-nbdd"}[1m])')
                if r.get("data", {}).get("result") and float(r["data"]["result"][0]["value"][1]) >= 6:
                    break
            except OSError:
                continue
        else:
            check("prometheus starts and scrapes the synthetic target", False,
                  open(os.path.join(tmp, "prometheus.log")).read()[-400:])
            return 1
        subst = {"__rate_interval": "5s", "__interval": "1s", "__range": "1m"}

        def expand(expr):
            expr = re.sub(r"\$\{?(__rate_interval|__interval|__range)\}?", lambda m: subst[m.group(1)], expr)
            return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", ".*", expr)

        for v in (dash.get("templating") or {}).get("list") or []:
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else str(q or "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
            if v.get("type") != "query" or not m:
                continue
            expr = expand(m.group(1))
            r = query(base, f"count by ({m.group(2)}) ({expr})")
            vals = [x["metric"].get(m.group(2)) for x in r.get("data", {}).get("result", [])]
            check(f"variable {v.get('name')}: {q} has values", r.get("status") == "success" and any(vals),
                  str(r)[:200])
        for p in monitoring_checks.all_panels(dash.get("panels")):
            for t in p.get("targets") or []:
                expr = t.get("expr") or ""
                r = query(base, expand(expr))
                res = r.get("data", {}).get("result", [])
                values = [float(x["value"][1]) for x in res] if isinstance(res, list) else []
                finite = any(math.isfinite(v) for v in values)
                check(f"panel {p.get('id')} {p.get('title')!r}: {expr[:70]} returns data",
                      r.get("status") == "success" and bool(values) and finite,
                      r.get("error") or f"{len(values)} series, values {values[:4]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        target.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
