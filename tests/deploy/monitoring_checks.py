"""Checks of metrics, probes and monitoring (called by test_manifests.py).

What is checked, against gateway/metrics/METRICS.md (the metric contract):
  - the Grafana dashboard (deploy/kubernetes/monitoring/grafana-dashboard.json): valid JSON,
    unique integer panel ids (rows' nested panels too), every query parses as PromQL (own
    bracket scan; `promtool check rules` too when installed), names only metrics of the
    contract (a histogram X also allows X_bucket, X_sum, X_count), filters and groups only
    by labels those metrics carry (or the scrape's target labels), takes histogram_quantile
    over a rate of X_bucket grouped by le, uses only template variables it defines, and
    covers what an operator needs (REQUIRED);
  - the three workloads (daemon, CSI node plugin, controller): `--metrics-address` on the
    suggested port of METRICS.md, bound where kubelet and Prometheus reach it, the same port
    as the container port `metrics` and the prometheus.io/* annotations;
  - probes: liveness and readiness everywhere, thresholds that never kill a daemon during a
    reattach, the CSI livenessprobe sidecar's timeout below the probe's;
  - the PodMonitor (monitoring/podmonitor.yaml): selects all three pods in the namespace and
    scrapes their `metrics` port at /metrics; it and monitoring/ stay out of the base;
  - deploy/kubernetes/README.md documents all this.
The `t` argument carries test_manifests.py's helpers (check, get, arg_value, ...).
"""

import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile

METRICS_MD = os.path.join("gateway", "metrics", "METRICS.md")
DASHBOARD = os.path.join("monitoring", "grafana-dashboard.json")
PODMONITOR = os.path.join("monitoring", "podmonitor.yaml")
# Labels Prometheus adds to every scraped series (the scrape config's target labels): the
# standard ones, those of the Prometheus Operator's PodMonitor, and ours (podmonitor.yaml).
TARGET_LABELS = {"instance", "job", "node", "pod", "namespace", "container", "endpoint"}
# Grafana's own variables.
GRAFANA_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                "__from", "__to", "__dashboard", "__name", "__org", "__user", "__all"}
# What the dashboard must show (the brief of issue 14): one query at least names each.
REQUIRED = ["rbdnbd_device_ops_total", "rbdnbd_device_bytes_total", "rbdnbd_device_op_duration_seconds_bucket",
            "rbdnbd_device_inflight_requests", "rbdnbd_device_errors_total", "rbdnbd_device_reattaches_total",
            "rbdnbd_device_stalled_seconds_total", "rbdnbd_devices", "rbdnbd_control_requests_total",
            "rbdnbd_csi_rpcs_total", "rbdnbd_csi_rpc_duration_seconds_bucket"]
# The reattach timeout the daemon's liveness must outlast with margin (seconds): a
# generous reattachTimeout (the default is 60 s); the liveness window must be twice that.
REATTACH_S = 120
# The metrics endpoint serves one client at a time and drops a silent one after 5 s
# (gateway/metrics/http_endpoint.h): a probe on it must wait longer than that.
ENDPOINT_DROP_S = 5
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan", "atan2", "start", "end"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
               "quantile", "limitk", "limit_ratio"}


# --- the contract ------------------------------------------------------------------------
def parse_metrics_md(path):
    """METRICS.md -> ({name: (type, set(labels))}, {role: port}) from its tables and ports line."""
    metrics = {}
    text = open(path).read()
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        m = re.search(r"Labels on every series:(.*?)(?:\n\n|\Z)", section, re.S)
        # The label names in backticks, not the examples in parentheses (`nbd3`).
        section_labels = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", m.group(1)))) if m else set()
        for line in section.splitlines():
            if not line.startswith("| rbdnbd_"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3:
                continue
            name, kind, labels = cells[0], cells[1], cells[2]
            lset = {x.strip() for x in labels.split(",") if re.fullmatch(r"\w+", x.strip())} | section_labels
            old = metrics.get(name, (kind, set()))
            metrics[name] = (kind if old[0] == kind else "conflict", old[1] | lset)
    ports = {}
    m = re.search(r"Suggested ports:(.*?)(?:;|\n\n)", text, re.S)
    for port, role in re.findall(r"(\d+)\s+\(([^)]+)\)", m.group(1) if m else ""):
        ports[" ".join(role.split())] = int(port)
    return metrics, ports


def series_names(metrics):
    """Every series name a query may use -> (base metric, extra labels)."""
    out = {}
    for name, (kind, _) in metrics.items():
        out[name] = (name, set())
        if kind == "histogram":
            out[name + "_bucket"] = (name, {"le"})
            out[name + "_sum"] = (name, set())
            out[name + "_count"] = (name, set())
    return out


# --- PromQL, scanned well enough to name its metrics and labels ----------------------------
TOKEN = re.compile(r'\s+|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`|[A-Za-z_:][A-Za-z0-9_:]*'
                   r'|\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*|\.\d+|=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],@]')


def substitute_vars(expr):
    """Grafana variables -> something PromQL parses: intervals to durations, others to text."""
    expr = re.sub(r"\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}", "5m", expr)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: "var_" + (m.group(1) or m.group(2)), expr)


def scan_promql(expr):
    """-> (selectors [(metric, [labels matched])], groupings [[labels]], error or None)."""
    text = substitute_vars(expr)
    toks, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            return [], [], f"unexpected {text[pos:pos + 10]!r}"
        if not m.group().isspace():
            toks.append(m.group())
        pos = m.end()
    depth, pairs = [], {")": "(", "}": "{", "]": "["}
    for tk in toks:
        if tk in "({[":
            depth.append(tk)
        elif tk in ")}]":
            if not depth or depth.pop() != pairs[tk]:
                return [], [], f"unbalanced {tk!r}"
    if depth:
        return [], [], f"unclosed {depth[-1]!r}"
    selectors, groupings = [], []
    i = 0
    while i < len(toks):
        tk = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if tk == "[":  # range or subquery: durations only
            i = toks.index("]", i) + 1
            continue
        if tk in GROUPING and nxt == "(":
            j = toks.index(")", i)
            groupings.append([x for x in toks[i + 2:j] if x != ","])
            i = j + 1
            continue
        if tk == "{":  # a selector without a metric name ({__name__=...}): its labels
            j = toks.index("}", i)
            labels = [toks[k] for k in range(i + 1, j) if toks[k + 1] in ("=", "!=", "=~", "!~")]
            selectors.append((None, labels))
            i = j + 1
            continue
        if tk in AGGREGATORS and nxt in ("by", "without"):  # sum by (...) (...)
            i += 1
            continue
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", tk) and tk not in KEYWORDS and nxt != "(":
            labels = []
            if nxt == "{":
                j = toks.index("}", i)
                labels = [toks[k] for k in range(i + 2, j) if toks[k + 1] in ("=", "!=", "=~", "!~")]
                i = j
            selectors.append((tk, labels))
        i += 1
    return selectors, groupings, None


def promtool_errors(exprs):
    """{expr: error} from `promtool check rules` on the expressions, or None without promtool.
    One run for all of them; only when that fails, one run per expression to name the culprit."""
    promtool = shutil.which("promtool")
    if not promtool:
        return None

    def run(batch, d):
        path = os.path.join(d, "rules.yaml")
        rules = [{"record": f"r{i}", "expr": substitute_vars(e)} for i, e in enumerate(batch)]
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "g", "rules": rules}]}, f)
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
        return None if r.returncode == 0 else (r.stderr.strip() or r.stdout.strip()).replace("\n", " ")[:200]

    with tempfile.TemporaryDirectory() as d:
        if run(exprs, d) is None:
            return {}
        errors = {e: run([e], d) for e in exprs}
        return {e: m for e, m in errors.items() if m} or {"(all)": run(exprs, d)}


def all_panels(panels):
    for p in panels or []:
        if isinstance(p, dict):
            yield p
            yield from all_panels(p.get("panels"))


def check_dashboard(t, k8s, metrics):
    check = t.check
    path = os.path.join(k8s, DASHBOARD)
    try:
        with open(path) as f:
            dash = json.load(f)
        check("dashboard: grafana-dashboard.json is valid JSON", isinstance(dash, dict), type(dash).__name__)
    except (OSError, ValueError) as e:
        check("dashboard: grafana-dashboard.json is valid JSON", False, str(e))
        return
    if not isinstance(dash, dict):
        return
    panels = list(all_panels(dash.get("panels")))
    ids = [p.get("id") for p in panels]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    check("dashboard: every panel has an integer id, all unique (rows' panels too)",
          bool(ids) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids) and not dup,
          f"duplicates {dup}, ids {ids}")
    check("dashboard: has a uid and a title", bool(dash.get("uid")) and bool(dash.get("title")))
    variables = {v.get("name"): v for v in (t.get(dash, "templating", "list", default=[]) or [])}
    check("dashboard: template variables datasource, instance and device",
          {"datasource", "instance", "device"} <= set(variables), str(sorted(variables)))
    check("dashboard: datasource variable of type datasource (prometheus)",
          t.get(variables.get("datasource"), "type") == "datasource"
          and t.get(variables.get("datasource"), "query") == "prometheus")
    names = series_names(metrics)

    def var_refs(text):
        return {a or b for a, b in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", text)}

    # Variable queries: label_values(metric{...}, label).
    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else str(q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
        sel, _, err = scan_promql(m.group(1)) if m else ([], [], "not label_values(SELECTOR, LABEL)")
        metric = names.get(sel[0][0]) if sel and sel[0][0] else None
        check(f"dashboard variable {name}: label_values of a contract metric and one of its labels",
              err is None and metric is not None
              and m.group(2) in metrics[metric[0]][1] | metric[1] | TARGET_LABELS, f"{q!r} {err or ''}")
        undefined = var_refs(q) - set(variables) - GRAFANA_VARS
        check(f"dashboard variable {name}: uses only defined variables", not undefined, str(sorted(undefined)))

    exprs, used = [], set()
    for p in panels:
        if p.get("type") == "row":
            continue
        where = f"dashboard panel {p.get('id')} {p.get('title')!r}"
        targets = p.get("targets") or []
        check(f"{where}: has queries, datasource ${{datasource}}",
              bool(targets) and all(isinstance(x.get("expr"), str) and x["expr"].strip() for x in targets)
              and t.get(p, "datasource", "uid") == "${datasource}", str(p.get("datasource")))
        for x in targets:
            expr = x.get("expr") or ""
            exprs.append(expr)
            sels, groups, err = scan_promql(expr)
            check(f"{where}: PromQL parses: {expr[:60]}", err is None, err or "")
            if err:
                continue
            unknown = [s for s, _ in sels if s is None or s not in names]
            check(f"{where}: names only metrics of METRICS.md: {expr[:60]}", bool(sels) and not unknown,
                  f"unknown {unknown}" if sels else "names no metric")
            if unknown:
                continue
            used.update(s for s, _ in sels)
            union = set(TARGET_LABELS)
            bad = []
            for s, labels in sels:
                base, extra = names[s]
                allowed = metrics[base][1] | extra | TARGET_LABELS
                union |= allowed
                bad += [f"{s}{{{lab}}}" for lab in labels if lab not in allowed]
            bad += [f"by {lab}" for g in groups for lab in g if lab not in union]
            check(f"{where}: filters and groups only by labels its metrics carry: {expr[:60]}", not bad, str(bad))
            buckets = [s for s, _ in sels if s.endswith("_bucket")]
            if "histogram_quantile" in expr or buckets:
                ok = "histogram_quantile" in expr and len(buckets) == len(sels) \
                    and re.search(r"\b(rate|irate|increase)\s*\(", expr) is not None \
                    and all("le" in g for g in groups if g)
                check(f"{where}: histogram_quantile over a rate of X_bucket, grouped by le: {expr[:60]}", ok, expr)
            undefined = var_refs(expr) - set(variables) - GRAFANA_VARS
            check(f"{where}: uses only defined variables: {expr[:60]}", not undefined, str(sorted(undefined)))
    missing = [m for m in REQUIRED if m not in used]
    check("dashboard: covers IOPS, throughput, p99 latency, in-flight, errors, reattaches, stalls, devices, "
          "control API, CSI RPCs and their p99", not missing, f"missing {missing}")
    errors = promtool_errors(exprs)
    if errors is None:
        t.skip("dashboard: promtool check rules", "promtool is not installed")
    else:
        check(f"dashboard: promtool check rules parses all {len(exprs)} queries", not errors,
              "; ".join(f"{e[:50]}: {m}" for e, m in errors.items())[:400])


# --- the workloads ---------------------------------------------------------------------------
def split_address(addr):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port int or None)."""
    m = re.fullmatch(r"\[([^\]]*)\]:(\d+)|([^:\[\]]*):(\d+)", addr or "")
    if not m:
        return None, None
    return (m.group(1) if m.group(1) is not None else m.group(3)), int(m.group(2) or m.group(4))


def probe_window(probe):
    """Seconds of failures before the probe acts (failureThreshold x periodSeconds)."""
    return (probe or {}).get("failureThreshold", 3) * (probe or {}).get("periodSeconds", 10)


def port_number(container, port):
    if isinstance(port, str):
        return next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port), None)
    return port


def check_workload(t, label, pod_template, container, want_port):
    """--metrics-address, the container port `metrics`, the annotations."""
    check, get = t.check, t.get
    spec = pod_template.get("spec") or {}
    addr = t.arg_value(t.argv_of(container), "--metrics-address")
    host, port = split_address(addr)
    check(f"{label}: --metrics-address HOST:PORT on the port METRICS.md suggests ({want_port})",
          port is not None and port == want_port, f"{addr!r}")
    env = {e.get("name"): e for e in container.get("env") or []}
    var = re.fullmatch(r"\$\((\w+)\)", host or "")
    field = get(env.get(var.group(1)) if var else None, "valueFrom", "fieldRef", "fieldPath")
    loopback = (host or "").startswith("127.") or host in ("localhost", "::1")
    check(f"{label}: --metrics-address reachable by kubelet and Prometheus (the pod IP from status.podIP, "
          "or every address; not loopback)",
          host is not None and not loopback and (var is None or field in ("status.podIP", "status.hostIP")),
          f"host {host!r}, env {var.group(1) if var else None} from {field}")
    ports = {p.get("name"): p for p in container.get("ports") or []}
    check(f"{label}: container port `metrics` is the --metrics-address port (TCP)",
          get(ports.get("metrics"), "containerPort") == port and get(ports.get("metrics"), "protocol", default="TCP") == "TCP",
          f"{ports.get('metrics')} vs {port}")
    ann = get(pod_template, "metadata", "annotations", default={}) or {}
    check(f"{label}: annotations prometheus.io/scrape \"true\", port {port}, path /metrics",
          ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(port)
          and ann.get("prometheus.io/path") == "/metrics",
          str({k: v for k, v in ann.items() if k.startswith("prometheus.io/")}))
    return port


def check_http_probe(t, where, container, probe, port=None, path=None):
    """An httpGet probe names a port of the container (the given one) and a path."""
    got = port_number(container, t.get(probe, "httpGet", "port"))
    return t.check(f"{where} is an httpGet on {path or 'a path'} at a port of the container"
                   + (f" ({port})" if port else ""),
                   got is not None and (port is None or got == port)
                   and (path is None or t.get(probe, "httpGet", "path") == path),
                   f"{t.get(probe, 'httpGet')} -> port {got}")


def check_timeouts(t, where, probe):
    ok = isinstance(probe, dict) and probe.get("timeoutSeconds", 1) <= probe.get("periodSeconds", 10)
    t.check(f"{where}: timeoutSeconds <= periodSeconds", ok, str(probe))


def sidecar_probe_timeout(t, containers):
    lp = [c for c in containers if "livenessprobe" in str(c.get("image", ""))]
    v = t.arg_value(t.argv_of(lp[0]), "--probe-timeout") if len(lp) == 1 else None
    m = re.fullmatch(r"(\d+)(ms|s|m)", v or "1s")
    return None if not m else int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def check_daemon_probes(t, dc, control, port):
    check = t.check
    live, ready, startup = dc.get("livenessProbe"), dc.get("readinessProbe"), dc.get("startupProbe")
    check("daemon: has a livenessProbe and a readinessProbe", isinstance(live, dict) and isinstance(ready, dict))
    for name, probe, path in (("livenessProbe", live, "/healthz"), ("readinessProbe", ready, "/readyz"),
                              ("startupProbe", startup, "/healthz")):
        if not isinstance(probe, dict):
            continue
        where = f"daemon: {name}"
        if "exec" in probe:
            cmd = [str(x) for x in t.get(probe, "exec", "command", default=[]) or []]
            check(f"{where} runs `rbd-nbdd status --control-socket {control}`",
                  len(cmd) >= 2 and posixpath.basename(cmd[0]) == "rbd-nbdd" and cmd[1] == "status"
                  and t.arg_value(cmd, "--control-socket") == control, str(cmd))
        else:
            check_http_probe(t, where, dc, probe, port, path)
            check(f"{where}: timeoutSeconds > {ENDPOINT_DROP_S} (the endpoint drops a silent client after "
                  f"{ENDPOINT_DROP_S} s, one client at a time)", probe.get("timeoutSeconds", 1) > ENDPOINT_DROP_S,
                  repr(probe.get("timeoutSeconds")))
        check_timeouts(t, where, probe)
    check(f"daemon: liveness acts after >= {2 * REATTACH_S} s of failures (failureThreshold x periodSeconds, "
          f"twice a {REATTACH_S} s reattach)", probe_window(live) >= 2 * REATTACH_S, f"{probe_window(live)} s")
    first = probe_window(startup) if isinstance(startup, dict) else (live or {}).get("initialDelaySeconds", 0)
    check("daemon: 5 min before liveness counts (startupProbe window or initialDelaySeconds): reattach at start",
          first >= 300, f"{first} s")
    return probe_window(startup) if isinstance(startup, dict) else 0


def check_csi_probes(t, label, c, containers, daemon_startup_s=None):
    check = t.check
    live, ready = c.get("livenessProbe"), c.get("readinessProbe")
    check(f"{label}: has a livenessProbe and a readinessProbe", isinstance(live, dict) and isinstance(ready, dict))
    sidecar_timeout = sidecar_probe_timeout(t, containers)
    for name, probe in (("livenessProbe", live), ("readinessProbe", ready)):
        if not isinstance(probe, dict):
            continue
        check_http_probe(t, f"{label}: {name}", c, probe)
        check_timeouts(t, f"{label}: {name}", probe)
        if port_number(c, t.get(probe, "httpGet", "port")) != port_number(c, "metrics"):
            check(f"{label}: {name} timeoutSeconds above the livenessprobe sidecar's --probe-timeout",
                  sidecar_timeout is not None and probe.get("timeoutSeconds", 1) > sidecar_timeout,
                  f"{probe.get('timeoutSeconds', 1)} s vs {sidecar_timeout} s")
    if daemon_startup_s is not None and isinstance(live, dict):
        check(f"{label}: liveness window outlasts the daemon's startup window (Probe asks the daemon)",
              probe_window(live) > daemon_startup_s, f"{probe_window(live)} s vs {daemon_startup_s} s")


# --- the PodMonitor ------------------------------------------------------------------------------
def selects(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(k) not in vals) or (op == "NotIn" and labels.get(k) in vals) \
                or (op == "Exists" and k not in labels) or (op == "DoesNotExist" and k in labels) \
                or op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return bool(selector)


def check_podmonitor(t, files, workloads):
    check, get = t.check, t.get
    docs = files.get(PODMONITOR, [])
    pms = [d for d in docs if isinstance(d, dict) and d.get("kind") == "PodMonitor"]
    pm = pms[0] if len(pms) == 1 else {}
    check("monitoring/podmonitor.yaml: one PodMonitor, monitoring.coreos.com/v1",
          len(pms) == 1 and pm.get("apiVersion") == "monitoring.coreos.com/v1", str([d.get("kind") for d in docs]))
    ns = get(pm, "spec", "namespaceSelector", "matchNames", default=[]) or []
    pm_ns = get(pm, "metadata", "namespace")
    check(f"PodMonitor: looks in namespace {t.NAMESPACE}",
          t.NAMESPACE in ns or (not get(pm, "spec", "namespaceSelector") and pm_ns == t.NAMESPACE)
          or get(pm, "spec", "namespaceSelector", "any") is True, f"{ns} / {pm_ns}")
    endpoints = get(pm, "spec", "podMetricsEndpoints", default=[]) or []
    selector = get(pm, "spec", "selector", default={}) or {}
    for label, (template, container, port) in workloads.items():
        labels = get(template, "metadata", "labels", default={}) or {}
        check(f"PodMonitor: selects the {label} pods", selects(selector, labels), f"{selector} vs {labels}")
        names = {p.get("name"): p.get("containerPort") for c in get(template, "spec", "containers", default=[]) or []
                 for p in c.get("ports") or []}
        ok = bool(endpoints) and all(
            (e.get("port") in names and names[e.get("port")] == port or e.get("portNumber") == port)
            and e.get("path", "/metrics") == "/metrics" for e in endpoints)
        check(f"PodMonitor: scrapes the {label} pods' port {port} (container port `metrics`) at /metrics", ok,
              f"{[(e.get('port'), e.get('path')) for e in endpoints]} vs {names}")
    for e in endpoints:
        def secs(v):
            m = re.fullmatch(r"(\d+)(s|m)", str(v or ""))
            return None if not m else int(m.group(1)) * (60 if m.group(2) == "m" else 1)
        iv, to = secs(e.get("interval", "30s")), secs(e.get("scrapeTimeout", "10s"))
        check(f"PodMonitor endpoint {e.get('port')}: scrapeTimeout <= interval, above the endpoint's {ENDPOINT_DROP_S} s drop",
              iv is not None and to is not None and ENDPOINT_DROP_S < to <= iv, f"{e.get('interval')}/{e.get('scrapeTimeout')}")


def check_monitoring_kustomization(t, k8s, files):
    check = t.check
    base_res = t.get((files.get("kustomization.yaml") or [{}])[0], "resources", default=[]) or []
    check("base kustomization: nothing of monitoring/ (the PodMonitor CRD may be absent)",
          not any(str(r).startswith("monitoring") for r in base_res), str(base_res))
    kust = (files.get(os.path.join("monitoring", "kustomization.yaml")) or [{}])[0]
    res = kust.get("resources") or []
    gen = [f for g in kust.get("configMapGenerator") or [] for f in g.get("files") or []]
    mdir = os.path.join(k8s, "monitoring")
    check("monitoring/kustomization.yaml: the PodMonitor and the dashboard (ConfigMap), files exist",
          "podmonitor.yaml" in res and "grafana-dashboard.json" in gen
          and all(os.path.isfile(os.path.join(mdir, f)) for f in res + gen), f"{res} {gen}")
    kubectl = shutil.which("kubectl")
    if os.environ.get("RBD_NBDD_TEST_NO_KUBECTL"):
        t.skip("kubectl kustomize monitoring", "RBD_NBDD_TEST_NO_KUBECTL is set")
    elif kubectl:
        r = subprocess.run([kubectl, "kustomize", mdir], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, KUBECONFIG=os.devnull))
        check("kubectl kustomize deploy/kubernetes/monitoring renders (offline)", r.returncode == 0,
              r.stderr.strip()[:300])
    else:
        t.skip("kubectl kustomize monitoring", "kubectl not installed")


def run(t, k8s, root, files, daemon, plugin, controller, control):
    """daemon/plugin/controller: (workload object, main container, all containers)."""
    check = t.check
    md = os.path.join(root, METRICS_MD)
    if not check("gateway/metrics/METRICS.md exists (the metric contract)", os.path.isfile(md), md):
        return
    metrics, ports = parse_metrics_md(md)
    check("METRICS.md: its tables list metrics, each of one type",
          len(metrics) >= 10 and all(k in ("counter", "gauge", "histogram") for k, _ in metrics.values()),
          str({n: k for n, (k, _) in metrics.items() if k not in ("counter", "gauge", "histogram")}))
    want = {"daemon": ports.get("daemon"), "nodeplugin": ports.get("CSI node plugin"),
            "controller": ports.get("CSI controller")}
    check("METRICS.md: suggested ports of the daemon, CSI node plugin and CSI controller",
          all(want.values()), str(ports))
    check_dashboard(t, k8s, metrics)

    workloads = {}
    for label, (obj, c, _) in (("daemon", daemon), ("nodeplugin", plugin), ("controller", controller)):
        template = t.get(obj, "spec", "template", default={}) or {}
        workloads[label] = (template, c, check_workload(t, label, template, c, want[label]))
    hostnet = [p for label in ("daemon", "nodeplugin")
               for c in t.get(workloads[label][0], "spec", "containers", default=[]) or []
               for p in c.get("ports") or []]
    nums = [p.get("containerPort") for p in hostnet]
    check("daemon and node plugin (hostNetwork): no two containers use the same node port",
          len(nums) == len(set(nums)), str(nums))
    startup = check_daemon_probes(t, daemon[1], control, workloads["daemon"][2])
    check_csi_probes(t, "nodeplugin", plugin[1], plugin[2], daemon_startup_s=startup)
    check_csi_probes(t, "controller", controller[1], controller[2])
    check_podmonitor(t, files, workloads)
    check_monitoring_kustomization(t, k8s, files)
    readme = os.path.join(k8s, "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    sec = re.search(r"^## Monitoring.*?(?=^## |\Z)", text, re.S | re.M)
    body = sec.group(0) if sec else ""
    need = ["podmonitor.yaml", "grafana-dashboard.json", "/healthz", "/readyz", "livenessProbe"] + \
        [str(p) for p in want.values() if p]
    check("deploy/kubernetes/README.md: a Monitoring section (ports, probes, PodMonitor, dashboard)",
          bool(sec) and all(s in body for s in need), f"missing: {[s for s in need if s not in body]}")
