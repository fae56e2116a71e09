#!/usr/bin/python3
# Fake rbd-nbdd control socket for loop_smoke.py: maps a spec to a loop device over a sparse file.
import json, os, socket, subprocess, sys
sock_path, data_dir = sys.argv[1], sys.argv[2]
devices = {}  # spec -> dict
log = open(os.path.join(data_dir, "requests.log"), "a")
try: os.unlink(sock_path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX); s.bind(sock_path); s.listen(16)
while True:
    c, _ = s.accept()
    buf = b""
    while not buf.endswith(b"\n"):
        d = c.recv(65536)
        if not d: break
        buf += d
    req = json.loads(buf)
    redacted = dict(req)
    for k in ("key", "passphrase"):
        if k in redacted: redacted[k] = "<%d bytes>" % len(redacted[k])
    log.write(json.dumps(redacted) + "\n"); log.flush()
    op = req.get("op")
    if op in ("status", "list"):
        rep = {"ok": True, "devices": list(devices.values()), "pid": os.getpid(), "nbd_driver": True}
    elif op == "map":
        spec = req["spec"]
        if spec in devices:
            rep = {"ok": False, "errno": 17, "error": spec + " is already mapped"}
        else:
            f = os.path.join(data_dir, spec.replace("/", "_") + ".img")
            if not os.path.exists(f):
                with open(f, "wb") as fh: fh.truncate(512 << 20)
            args = ["losetup", "-f", "--show"] + (["-r"] if req.get("read_only") else []) + [f]
            dev = subprocess.check_output(args, text=True).strip()
            devices[spec] = {"device": dev, "spec": spec, "cookie": "c-" + dev, "size": os.path.getsize(f),
                             "read_only": bool(req.get("read_only"))}
            rep = {"ok": True, "device": dev, "cookie": "c-" + dev}
    elif op == "unmap":
        t = req["target"]
        hit = [k for k, v in devices.items() if v["device"] == t or k == t]
        if not hit:
            rep = {"ok": False, "errno": 2, "error": t + " is not mapped by this daemon"}
        else:
            r = subprocess.run(["losetup", "-d", devices[hit[0]]["device"]], capture_output=True, text=True)
            if r.returncode: rep = {"ok": False, "errno": 16, "error": r.stderr.strip()}
            else:
                del devices[hit[0]]; rep = {"ok": True}
    elif op == "resize":  # test helper: grow the backing file and tell the loop device
        v = devices[req["spec"]]
        f = os.path.join(data_dir, req["spec"].replace("/", "_") + ".img")
        with open(f, "r+b") as fh: fh.truncate(req["size"])
        subprocess.check_call(["losetup", "-c", v["device"]])
        v["size"] = req["size"]; rep = {"ok": True}
    else:
        rep = {"ok": False, "errno": 22, "error": "unknown op"}
    c.sendall((json.dumps(rep) + "\n").encode()); c.close()
