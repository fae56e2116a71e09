#!/usr/bin/python3
"""What the CSI controller left in Ceph, seen as client.admin (librados/librbd in process:
one Python start instead of five CLI runs, for checks made after every call).

Run with /usr/bin/python3 (python3-rados, python3-rbd); CEPH_CONF and CEPH_KEYRING name the
cluster and the admin key, as for Ceph's own tools.

    controller_check.py state --pool P [--ns NS]...
        one sorted line per thing the controller could leave behind, in the pool's default
        namespace and each NS given:
          pools <comma-separated pool names>
          image P/NS/NAME          head images
          trash P/NS/NAME ID       trash entries (every source: user, removing, ...)
          key P/NS/OBJECT KEY      omap keys of the name journal objects
        Compare two outputs to prove that a call left nothing behind.
    controller_check.py write --spec P[/NS]/IMAGE --bytes N --seed S
        writes N bytes of seeded pseudo-random data at offset 0 (through librbd, as another
        client than the controller would be) and prints their sha256.

Exit 0, or 1 with one line on stderr saying what failed.
"""
import argparse
import hashlib
import os
import random
import sys

import rados
import rbd

JOURNALS = ("rbd-nbdd-csi.volumes", "rbd-nbdd-csi.snapshots")


def connect():
    c = rados.Rados(conffile=os.environ.get("CEPH_CONF", ""),
                    conf={"keyring": os.environ.get("CEPH_KEYRING", "")})
    c.conf_set("client_mount_timeout", "30")
    c.connect(timeout=30)
    return c


def omap_keys(io, obj):
    with rados.ReadOpCtx() as op:
        it, _ = io.get_omap_keys(op, "", 100000)
        try:
            io.operate_read_op(op, obj)
        except rados.ObjectNotFound:
            return []
        return [k for k, _ in it]


def state(c, pool, namespaces):
    lines = [f"pools {','.join(sorted(c.list_pools()))}"]
    io = c.open_ioctx(pool)
    try:
        for ns in [""] + [n for n in namespaces if n]:
            io.set_namespace(ns)
            where = f"{pool}/{ns}"
            try:
                names = rbd.RBD().list(io)
            except rbd.ObjectNotFound:   # a namespace that is gone
                continue
            lines += [f"image {where}/{n}" for n in names]
            lines += [f"trash {where}/{t['name']} {t['id']}" for t in rbd.RBD().trash_list(io)]
            for obj in JOURNALS:
                lines += [f"key {where}/{obj} {k}" for k in omap_keys(io, obj)]
    finally:
        io.close()
    return sorted(lines)


def write(c, spec, nbytes, seed):
    parts = spec.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"--spec wants POOL[/NS]/IMAGE, got {spec!r}")
    pool, image = parts[0], parts[-1]
    data = random.Random(seed).randbytes(nbytes)
    io = c.open_ioctx(pool)
    try:
        if len(parts) == 3:
            io.set_namespace(parts[1])
        with rbd.Image(io, image) as img:
            img.write(data, 0)
            img.flush()
    finally:
        io.close()
    return hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("state")
    p.add_argument("--pool", required=True)
    p.add_argument("--ns", action="append", default=[])
    p = sub.add_parser("write")
    p.add_argument("--spec", required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    try:
        c = connect()
        try:
            if a.cmd == "state":
                print("\n".join(state(c, a.pool, a.ns)))
            else:
                print(write(c, a.spec, a.bytes, a.seed))
        finally:
            c.shutdown()
    except (rados.Error, rbd.Error, ValueError, OSError) as e:
        print(f"controller_check.py {a.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
