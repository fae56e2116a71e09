#!/usr/bin/python3
"""A CSI (csi.v1) client for tests: a real gRPC channel to a plugin's Unix socket.

Run with /usr/bin/python3 (Debian's python3-grpcio and python3-protobuf); the stubs are
generated from csi/proto/csi.proto at first use (gen_stubs.py, never committed).

    csi_client.py [--endpoint unix:///run/csi/csi.sock] [--timeout 120] [--expect CODE] VERB ...

Verbs (each prints ONE JSON line: {"method", "code", "details", "elapsed", "response"}):
    call METHOD [JSON|-] [--secrets FILE]
                                any RPC, the request as JSON (proto field names); '-' = stdin;
                                --secrets merges a JSON object file into its "secrets"
    stage     --vol ID --staging DIR (--fs TYPE | --block) [--mode M] [--ctx K=V]... [--secrets FILE]
    unstage   --vol ID --staging DIR
    publish   --vol ID --staging DIR --target PATH (--fs TYPE | --block) [--mode M] [--readonly] [--ctx K=V]...
    unpublish --vol ID --target PATH
    stats     --vol ID --path PATH [--staging DIR]
    expand    --vol ID --path PATH --bytes N [--staging DIR] [--fs TYPE | --block]
    batch [--parallel]          JSON lines on stdin: {"name", "method", "request", "expect"},
                                and "endpoint" for an item sent elsewhere than --endpoint
                                (two plugin processes raced in one batch); one result line
                                each, with "name" and "ok"
    repl                        commands as JSON lines on stdin, answers on stdout (see repl()):
                                Python and grpc start once per test, not once per call
Request shaping for error tests: --drop FIELD (dotted: volume_context.pool, secrets.userKey,
volume_capability.access_mode) removes a field after the request is built; --set FIELD=JSON
sets one. The exit code is 0 when the gRPC status is the expected one (--expect, default OK;
ANY accepts every status), 1 when it is not (a line on stderr says what came instead), 2 on
a usage or setup error. Secrets never reach argv (they come from a file) or the output.
"""
import argparse
import concurrent.futures
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_stubs  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

SERVICES = {
    "Identity": ["GetPluginInfo", "GetPluginCapabilities", "Probe"],
    "Controller": ["CreateVolume", "DeleteVolume", "ControllerPublishVolume",
                   "ControllerUnpublishVolume", "ValidateVolumeCapabilities", "ListVolumes",
                   "GetCapacity", "ControllerGetCapabilities", "CreateSnapshot",
                   "DeleteSnapshot", "ListSnapshots", "ControllerExpandVolume",
                   "ControllerGetVolume", "ControllerModifyVolume"],
    "Node": ["NodeStageVolume", "NodeUnstageVolume", "NodePublishVolume",
             "NodeUnpublishVolume", "NodeGetVolumeStats", "NodeExpandVolume",
             "NodeGetCapabilities", "NodeGetInfo"],
}
SECRET_FIELDS = ("secrets",)


def _load_stubs(proto=None):
    d = gen_stubs.generate(proto or os.environ.get("CSI_PROTO", gen_stubs.DEFAULT_PROTO))
    if d not in sys.path:
        sys.path.insert(0, d)
    import csi_pb2  # noqa: E402
    import csi_pb2_grpc  # noqa: E402
    return csi_pb2, csi_pb2_grpc


class Csi:
    """Calls to one endpoint; call() never raises on a gRPC status. Each call (or batch)
    opens its own channel: a channel kept across a plugin restart would sit in gRPC's
    reconnect backoff and fail calls with UNAVAILABLE after the plugin is back."""

    def __init__(self, endpoint, timeout=120.0, proto=None):
        self.pb, self.pb_grpc = _load_stubs(proto)
        if endpoint.startswith("/"):
            endpoint = "unix://" + endpoint
        self.endpoint = endpoint
        self.timeout = timeout
        self.service_of = {m: s for s, ms in SERVICES.items() for m in ms}

    def channel(self):
        return grpc.insecure_channel(self.endpoint)

    def request(self, method, body):
        svc = self.pb.DESCRIPTOR.services_by_name[self.service_of[method]]
        cls = getattr(self.pb, svc.methods_by_name[method].input_type.name)
        return json_format.ParseDict(body or {}, cls(), ignore_unknown_fields=False)

    def call(self, method, body=None, timeout=None, channel=None):
        """(code name, details, response dict or None, seconds)."""
        if method not in self.service_of:
            raise ValueError(f"unknown CSI method {method}")
        req = self.request(method, body)
        ch = channel or self.channel()
        try:
            stub = getattr(self.pb_grpc, self.service_of[method] + "Stub")(ch)
            fn = getattr(stub, method)
            t0 = time.monotonic()
            try:
                resp = fn(req, timeout=timeout or self.timeout, wait_for_ready=False)
                out = json_format.MessageToDict(resp, preserving_proto_field_name=True,
                                                including_default_value_fields=False)
                return "OK", "", out, time.monotonic() - t0
            except grpc.RpcError as e:
                return e.code().name, e.details() or "", None, time.monotonic() - t0
        finally:
            if channel is None:
                ch.close()


# ---------------------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------------------
def capability(fs=None, block=False, mode="SINGLE_NODE_WRITER", mount_flags=()):
    cap = {"access_mode": {"mode": mode}}
    if block:
        cap["block"] = {}
    else:
        m = {}
        if fs:
            m["fs_type"] = fs
        if mount_flags:
            m["mount_flags"] = list(mount_flags)
        cap["mount"] = m
    return cap


def _kv(items):
    out = {}
    for it in items or ():
        k, sep, v = it.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE, got {it!r}")
        out[k] = v
    return out


def read_secrets(path):
    if not path:
        return {}
    with open(path) as f:
        s = json.load(f)
    if not isinstance(s, dict):
        raise ValueError(f"{path}: secrets must be a JSON object")
    return {str(k): str(v) for k, v in s.items()}


def _drop(body, dotted):
    parts = dotted.split(".")
    cur = body
    for p in parts[:-1]:
        cur = cur.get(p)
        if not isinstance(cur, dict):
            return
    cur.pop(parts[-1], None)


def _set(body, assignment):
    dotted, sep, val = assignment.partition("=")
    if not sep:
        raise ValueError(f"--set wants FIELD=JSON, got {assignment!r}")
    parts = dotted.split(".")
    cur = body
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = json.loads(val)


def build(a):
    """(method, request dict) for a verb's parsed arguments."""
    v = a.verb
    cap = None
    if getattr(a, "fs", None) is not None or getattr(a, "block", False):
        cap = capability(a.fs, a.block, getattr(a, "mode", "SINGLE_NODE_WRITER"),
                         getattr(a, "mount_flag", ()))
    if v == "stage":
        body = {"volume_id": a.vol, "staging_target_path": a.staging,
                "volume_capability": cap or capability(mode=a.mode),
                "secrets": read_secrets(a.secrets), "volume_context": _kv(a.ctx),
                "publish_context": _kv(a.pctx)}
        m = "NodeStageVolume"
    elif v == "unstage":
        body = {"volume_id": a.vol, "staging_target_path": a.staging}
        m = "NodeUnstageVolume"
    elif v == "publish":
        body = {"volume_id": a.vol, "staging_target_path": a.staging, "target_path": a.target,
                "volume_capability": cap or capability(mode=a.mode), "readonly": a.readonly,
                "volume_context": _kv(a.ctx), "publish_context": _kv(a.pctx)}
        if a.secrets:
            body["secrets"] = read_secrets(a.secrets)
        m = "NodePublishVolume"
    elif v == "unpublish":
        body = {"volume_id": a.vol, "target_path": a.target}
        m = "NodeUnpublishVolume"
    elif v == "stats":
        body = {"volume_id": a.vol, "volume_path": a.path}
        if a.staging:
            body["staging_target_path"] = a.staging
        m = "NodeGetVolumeStats"
    elif v == "expand":
        body = {"volume_id": a.vol, "volume_path": a.path,
                "capacity_range": {"required_bytes": str(a.bytes)}}
        if a.staging:
            body["staging_target_path"] = a.staging
        if cap:
            body["volume_capability"] = cap
        m = "NodeExpandVolume"
    else:
        raise ValueError(v)
    # proto3: an empty string or map is "missing" on the wire anyway
    for k in [k for k, val in body.items() if val in ("", {}, None)]:
        body.pop(k)
    for d in a.drop or ():
        _drop(body, d)
    for s in a.set or ():
        _set(body, s)
    return m, body


def _result(method, code, details, resp, elapsed, name=None, expect=None):
    r = {"method": method, "code": code, "details": details, "elapsed": round(elapsed, 3),
         "response": resp}
    if name is not None:
        r = {"name": name, **r}
    if expect is not None:
        r["expect"] = expect
        r["ok"] = expect in ("ANY", code)
    return r


def _parser():
    ap = argparse.ArgumentParser(prog="csi_client.py", description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default=os.environ.get("CSI_ENDPOINT", "unix:///run/csi/csi.sock"))
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("CSI_TIMEOUT", 120)))
    ap.add_argument("--expect", default="OK", help="expected gRPC status name (or ANY)")
    ap.add_argument("--proto", default=None)
    sub = ap.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("call")
    p.add_argument("method")
    p.add_argument("json", nargs="?", default="{}")
    p.add_argument("--secrets", default=None, help="a JSON object file merged into the request's secrets")

    def common(p, fs=True, target=False, staging=True):
        p.add_argument("--vol", default="")
        if staging:
            p.add_argument("--staging", default="")
        if target:
            p.add_argument("--target", default="")
        if fs:
            g = p.add_mutually_exclusive_group()
            g.add_argument("--fs", default=None, help="mount access type with this fs_type ('' = none)")
            g.add_argument("--block", action="store_true")
            p.add_argument("--mode", default="SINGLE_NODE_WRITER")
            p.add_argument("--mount-flag", action="append", default=[])
        p.add_argument("--drop", action="append", default=[])
        p.add_argument("--set", action="append", default=[])

    p = sub.add_parser("stage"); common(p)
    p.add_argument("--ctx", action="append", default=[])
    p.add_argument("--pctx", action="append", default=[])
    p.add_argument("--secrets", default=os.environ.get("CSI_SECRETS_FILE"))
    p = sub.add_parser("unstage"); common(p, fs=False)
    p = sub.add_parser("publish"); common(p, target=True)
    p.add_argument("--readonly", action="store_true")
    p.add_argument("--ctx", action="append", default=[])
    p.add_argument("--pctx", action="append", default=[])
    p.add_argument("--secrets", default=None)
    p = sub.add_parser("unpublish"); common(p, fs=False, target=True, staging=False)
    p = sub.add_parser("stats"); common(p, fs=False)
    p.add_argument("--path", default="")
    p = sub.add_parser("expand"); common(p)
    p.add_argument("--path", default="")
    p.add_argument("--bytes", type=int, required=True)
    p = sub.add_parser("batch")
    p.add_argument("--parallel", action="store_true")
    sub.add_parser("repl")
    return ap


_CSI_CACHE = {}


def _csi_for(a):
    key = (a.endpoint, a.timeout, a.proto)
    if key not in _CSI_CACHE:
        _CSI_CACHE[key] = Csi(a.endpoint, a.timeout, a.proto)
    return _CSI_CACHE[key]


def run_batch(csi, items, parallel=False):
    """(rc, result dicts, error lines) for batch items {name, method, request, expect,
    endpoint}: one channel per endpoint, shared by its items."""
    def endpoint_of(it):
        ep = it.get("endpoint") or csi.endpoint
        return "unix://" + ep if ep.startswith("/") else ep

    channels = {}
    for it in items:
        if endpoint_of(it) not in channels:
            channels[endpoint_of(it)] = grpc.insecure_channel(endpoint_of(it))

    def one(it):
        code, det, resp, el = csi.call(it["method"], it.get("request", {}), channel=channels[endpoint_of(it)])
        return _result(it["method"], code, det, resp, el, it.get("name", it["method"]),
                       it.get("expect", "OK"))
    try:
        if parallel and items:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(items)) as ex:
                results = list(ex.map(one, items))
        else:
            results = [one(it) for it in items]
    finally:
        for ch in channels.values():
            ch.close()
    errs = [f"csi_client: {r['name']}: {r['method']} returned {r['code']} ({r['details']}),"
            f" expected {r['expect']}" for r in results if not r["ok"]]
    return (1 if errs else 0), results, errs


def _parse(argv):
    """_parser().parse_args, with `call METHOD --secrets FILE JSON` accepted too: argparse
    takes `call`'s two positionals as one run, so an option between them would leave the
    JSON unclaimed. The option (and its value) moves behind the positionals."""
    argv = list(argv)
    if "call" in argv:
        i = argv.index("call")
        head, tail = argv[:i + 1], argv[i + 1:]
        opts, rest = [], []
        while tail:
            w = tail.pop(0)
            if w == "--secrets" and tail:
                opts += [w, tail.pop(0)]
            elif w.startswith("--secrets="):
                opts.append(w)
            else:
                rest.append(w)
        argv = head + rest + opts
    return _parser().parse_args(argv)


def run_argv(argv, stdin=None):
    """(rc, stdout lines, stderr lines) of one command line; never exits."""
    try:
        a = _parse(argv)
    except SystemExit as e:
        return (e.code if isinstance(e.code, int) else 2), [], [f"csi_client: bad arguments {argv!r}"]
    try:
        csi = _csi_for(a)
    except Exception as e:  # noqa: BLE001
        return 2, [], [f"csi_client: setup failed: {e}"]
    if a.verb == "repl":
        return 2, [], ["csi_client: repl is not a command inside the repl"]
    if a.verb == "batch":
        try:
            items = [json.loads(l) for l in (stdin if stdin is not None else sys.stdin) if l.strip()]
        except ValueError as e:
            return 2, [], [f"csi_client: batch: {e}"]
        rc, results, errs = run_batch(csi, items, a.parallel)
        return rc, [json.dumps(r, sort_keys=True) for r in results], errs
    try:
        if a.verb == "call":
            body = json.loads((stdin if stdin is not None else sys.stdin).read() if a.json == "-" else a.json)
            method = a.method
            if a.secrets:  # e.g. CreateVolume's provisioner secrets, from a file (never argv)
                body.setdefault("secrets", {}).update(read_secrets(a.secrets))
        else:
            method, body = build(a)
        code, det, resp, el = csi.call(method, body)
    except (ValueError, OSError, KeyError) as e:
        return 2, [], [f"csi_client: {e}"]
    r = _result(method, code, det, resp, el)
    if a.expect not in ("ANY", code):
        return 1, [json.dumps(r, sort_keys=True)], [
            f"csi_client: {method} returned {code} ({det}) in {el:.2f}s, expected {a.expect}"]
    return 0, [json.dumps(r, sort_keys=True)], []


US, RS = "\x1f", "\x1e"   # field and record separators of the repl's lines


def _flat(text):
    return str(text).replace("\n", " ").replace(US, " ").replace(RS, " ")


def repl(inp, out):
    """Commands in, one answer line each, for as long as inp is open, so that a test pays
    Python's and grpc's start-up once, not per call. Lines are fields joined by US (0x1f),
    so that a shell needs no JSON tool (in a UML guest every exec costs about a second):
        R US STDIN US ARG...       run `csi_client.py ARG...`; STDIN (a batch's lines
                                   joined by RS, 0x1e) may be empty
        S<id> US STDIN US ARG...   the same in the background; answers at once
        P<id>                      answers rc 0 once <id> has ended, else 1
        C<id>                      waits for <id>, answers as R would
    Answer: RC US CODE US ELAPSED US DETAILS US STDOUT US STDERR (output lines joined by RS;
    CODE, ELAPSED and DETAILS from a single call's result, empty for a batch)."""
    pending = {}
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=16)

    def run(fields):
        st = fields[1] if len(fields) > 1 else ""
        argv = fields[2:]
        # never None here: a command must not read the repl's own input
        rc, o, e = run_argv(argv, io.StringIO(st.replace(RS, "\n")))
        code = el = det = ""
        if o and "batch" not in argv:
            try:
                r = json.loads(o[0])
                code, el, det = r["code"], str(r["elapsed"]), r["details"]
            except (ValueError, KeyError):
                pass
        return [str(rc), code, el, _flat(det), RS.join(_flat(x) for x in o), RS.join(_flat(x) for x in e)]

    for line in inp:
        line = line.rstrip("\n")
        if not line:
            continue
        try:
            fields = line.split(US)
            op = fields[0]
            if op == "R":
                reply = run(fields)
            elif op.startswith("S"):
                pending[op[1:]] = ex.submit(run, fields)
                reply = ["0", "SUBMITTED", "", "", "", ""]
            elif op.startswith("P"):
                fut = pending.get(op[1:])
                reply = ["0" if fut is None or fut.done() else "1", "", "", "", "", ""]
            elif op.startswith("C"):
                fut = pending.pop(op[1:], None)
                reply = fut.result() if fut else ["2", "", "", "", "", f"nothing submitted as {op[1:]}"]
            else:
                reply = ["2", "", "", "", "", f"csi_client repl: unknown request {op!r}"]
        except Exception as e:  # noqa: BLE001 - the repl must answer every line
            reply = ["2", "", "", "", "", _flat(f"csi_client repl: {type(e).__name__}: {e}")]
        out.write(US.join(reply) + "\n")
        out.flush()
    ex.shutdown(wait=False, cancel_futures=True)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        a = _parse(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    if a.verb == "repl":
        try:
            _csi_for(a)   # generate/import the stubs before the first request
        except Exception as e:  # noqa: BLE001
            print(f"csi_client: setup failed: {e}", file=sys.stderr)
            return 2
        return repl(sys.stdin, sys.stdout)
    rc, o, e = run_argv(argv)
    for l in o:
        print(l, flush=True)
    for l in e:
        print(l, file=sys.stderr, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
