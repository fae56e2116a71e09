#!/usr/bin/python3
"""Generate the Python gRPC stubs for csi/proto/csi.proto (package csi.v1) into a work dir.

    /usr/bin/python3 tests/csi/gen_stubs.py [--proto csi/proto/csi.proto] [--out DIR]

Prints the directory that holds csi_pb2.py and csi_pb2_grpc.py. The stubs are generated at
test time and never committed: the plugin's own proto is the single source of truth, so a
field renumbered there is tested as the plugin really speaks it. The output directory is
keyed by the proto's sha256 (default $CSI_PY_DIR, else /tmp/csi-py-<hash>), so a changed
proto is regenerated and an unchanged one is reused.

Needs protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc); the
stubs import grpc (python3-grpcio) and google.protobuf (python3-protobuf).
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PROTO = os.path.join(ROOT, "csi", "proto", "csi.proto")
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"


def generate(proto=DEFAULT_PROTO, out=None):
    """Generate (or reuse) the stubs; returns the directory to put on sys.path."""
    proto = os.path.abspath(proto)
    if not os.path.isfile(proto):
        raise FileNotFoundError(f"no CSI proto at {proto}")
    with open(proto, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    if out is None:
        out = os.environ.get("CSI_PY_DIR") or os.path.join(
            tempfile.gettempdir(), f"csi-py-{digest}")
    stamp = os.path.join(out, ".proto-sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest and os.path.isfile(os.path.join(out, "csi_pb2_grpc.py")):
                return out
    except OSError:
        pass
    os.makedirs(out, exist_ok=True)
    # protoc wants the proto under an include dir; copy it alone so that the generated
    # module is csi_pb2 whatever the source tree looks like.
    tmp = tempfile.mkdtemp(prefix="csi-proto-", dir=out)
    try:
        shutil.copy(proto, os.path.join(tmp, "csi.proto"))
        cmd = ["protoc", f"-I{tmp}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
               f"--plugin=protoc-gen-grpc_python={GRPC_PLUGIN}", os.path.join(tmp, "csi.proto")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"protoc failed ({r.returncode}): {r.stderr.strip()}")
        for name in ("csi_pb2.py", "csi_pb2_grpc.py"):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proto", default=os.environ.get("CSI_PROTO", DEFAULT_PROTO))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    try:
        print(generate(a.proto, a.out))
    except Exception as e:  # noqa: BLE001 - a CLI: one clear line
        print(f"gen_stubs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
