#!/usr/bin/python3
"""Root-only smoke test of rbd-nbdd-csi on this host, without Ceph or the nbd driver.

    sudo /usr/bin/python3 csi/dev/loop_smoke.py build-csi/csi/rbd-nbdd-csi

fake_loop_daemon.py stands in for `rbd-nbdd daemon` on its control socket and "maps" each
spec to a loop device over a sparse file, so the plugin's real blkid/mkfs/fsck/mount/bind
mount/statvfs/xfs_growfs/resize2fs/umount paths run against real block devices. Covers
ext4 and xfs (format, idempotent stage, conflicting stage, publish rw and ro, stats,
expand, unpublish, unstage, restage keeps data), block volumes, a blank read-only volume,
a partition table, a plugin restart between stage and unstage, and that the key never
reaches the log or the state dir. Prints PASS/FAIL lines; exits 1 on any FAIL.
Note: ext4 online grow needs CAP_SYS_RESOURCE; without it "ext4 expand" fails (EPERM).
"""
import grpc, json, os, socket, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "csi"))
import gen_stubs  # noqa: E402
sys.path.insert(0, gen_stubs.generate(os.path.join(ROOT, "csi", "proto", "csi.proto")))
import csi_pb2 as pb, csi_pb2_grpc as rpc
W = os.environ.get("CSI_SMOKE_DIR", "/tmp/rbd-nbdd-csi-smoke")
subprocess.run(["rm", "-rf", W]); os.makedirs(W)
KEY = "AQBsecretKEYsecretKEYsecretKEY00000000=="
daemon = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fake_loop_daemon.py"), W + "/control.sock", W])
time.sleep(0.5)
json.dump([{"clusterID": "dev", "monitors": ["127.0.0.1:1"]}], open(W + "/config.json", "w"))
plugin = subprocess.Popen([sys.argv[1], "--endpoint", "unix://" + W + "/csi.sock", "--node-id", "n1",
                           "--control-socket", W + "/control.sock", "--state-dir", W + "/state",
                           "--cluster-config", W + "/config.json", "--log-level", "debug"],
                          stderr=open(W + "/plugin.log", "w"))
for _ in range(50):
    if os.path.exists(W + "/csi.sock"): break
    time.sleep(0.1)
ch = grpc.insecure_channel("unix://" + W + "/csi.sock")
idn, node = rpc.IdentityStub(ch), rpc.NodeStub(ch)
failures = 0
def check(name, fn, code=grpc.StatusCode.OK):
    t = time.time()
    try:
        r = fn(); got = grpc.StatusCode.OK; msg = ""
    except grpc.RpcError as e:
        r = None; got = e.code(); msg = e.details()
    ok = got == code
    expect(ok, name, got.name, msg, "%.0f ms" % ((time.time() - t) * 1000))
    return r
def expect(cond, *what):
    global failures
    failures += not cond
    print("PASS" if cond else "FAIL", *what)
def ctl(req):
    s = socket.socket(socket.AF_UNIX); s.connect(W + "/control.sock"); s.sendall((json.dumps(req) + "\n").encode())
    return json.loads(s.makefile().readline())
def mounted(p):
    return any(l.split()[4] == p for l in open("/proc/self/mountinfo"))
def cap(mode="mount", fs="ext4", am=pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER, flags=()):
    c = pb.VolumeCapability(access_mode=pb.VolumeCapability.AccessMode(mode=am))
    if mode == "mount": c.mount.fs_type = fs; c.mount.mount_flags.extend(flags)
    else: c.block.SetInParent()
    return c
def stage(vol, image, c, staging, ctx_extra={}):
    ctx = {"clusterID": "dev", "pool": "kube", "imageName": image}; ctx.update(ctx_extra)
    return node.NodeStageVolume(pb.NodeStageVolumeRequest(volume_id=vol, staging_target_path=staging,
        volume_capability=c, volume_context=ctx, secrets={"userID": "kube", "userKey": KEY}))

check("Probe", lambda: idn.Probe(pb.ProbeRequest()))
for fs in ("ext4", "xfs"):
    vol = "vol-" + fs; st = W + "/staging-" + fs + "/globalmount"; tg = W + "/pods/p1/" + fs + "/mount"
    os.makedirs(st, exist_ok=True)
    check(fs + " stage (mkfs)", lambda: stage(vol, "img-" + fs, cap(fs=fs, flags=["noatime"]), st))
    expect(mounted(st), "staged mount present")
    check(fs + " stage again", lambda: stage(vol, "img-" + fs, cap(fs=fs, flags=["noatime"]), st))
    check(fs + " stage other flags", lambda: stage(vol, "img-" + fs, cap(fs=fs), st), grpc.StatusCode.ALREADY_EXISTS)
    pubreq = pb.NodePublishVolumeRequest(volume_id=vol, staging_target_path=st, target_path=tg, volume_capability=cap(fs=fs))
    check(fs + " publish", lambda: node.NodePublishVolume(pubreq))
    open(tg + "/hello", "w").write("data")
    check(fs + " publish again", lambda: node.NodePublishVolume(pubreq))
    pubreq.readonly = True
    check(fs + " publish ro conflict", lambda: node.NodePublishVolume(pubreq), grpc.StatusCode.ALREADY_EXISTS)
    tg2 = W + "/pods/p2/" + fs + "/mount"
    ro = pb.NodePublishVolumeRequest(volume_id=vol, staging_target_path=st, target_path=tg2, volume_capability=cap(fs=fs), readonly=True)
    check(fs + " publish ro second target", lambda: node.NodePublishVolume(ro))
    try:
        open(tg2 + "/x", "w"); expect(False, "ro target refuses writes")
    except OSError as e: print("PASS ro target refuses writes:", e.strerror)
    r = check(fs + " stats", lambda: node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(volume_id=vol, volume_path=tg)))
    if r: print("   ", [(u.unit, u.total, u.used, u.available) for u in r.usage])
    dev = ctl({"op": "status"})["devices"]
    spec = "kube/img-" + fs
    ctl({"op": "resize", "spec": spec, "size": 1024 << 20})
    r = check(fs + " expand", lambda: node.NodeExpandVolume(pb.NodeExpandVolumeRequest(volume_id=vol, volume_path=tg,
              capacity_range=pb.CapacityRange(required_bytes=1024 << 20))))
    if r: print("    capacity", r.capacity_bytes)
    r = node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(volume_id=vol, volume_path=tg))
    tot = r.usage[0].total
    expect(tot > 800 << 20, fs, "fs total after expand", tot)
    for t in (tg, tg2):
        check(fs + " unpublish " + t, lambda: node.NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(volume_id=vol, target_path=t)))
        expect(not os.path.exists(t), "target removed")
    check(fs + " unpublish again", lambda: node.NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(volume_id=vol, target_path=tg)))
    # restart the plugin between publish and unstage? do it for xfs
    check(fs + " unstage", lambda: node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=vol, staging_target_path=st)))
    expect(not mounted(st), "staging unmounted;", "devices now", ctl({"op": "status"})["devices"])
    check(fs + " unstage again", lambda: node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=vol, staging_target_path=st)))
    # restage: existing filesystem -> fsck, data still there
    check(fs + " restage existing fs", lambda: stage(vol, "img-" + fs, cap(fs=fs), st))
    expect(os.path.exists(st + "/hello"), "data survived")
    check(fs + " unstage 2", lambda: node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=vol, staging_target_path=st)))

# block volume
st = W + "/block-staging/pv"; tg = W + "/pods/p3/volumeDevices/pv"
check("block stage", lambda: stage("vol-blk", "img-blk", cap("block"), st))
check("block publish", lambda: node.NodePublishVolume(pb.NodePublishVolumeRequest(volume_id="vol-blk", staging_target_path=st, target_path=tg, volume_capability=cap("block"))))
out = subprocess.run(["blockdev", "--getsize64", tg], capture_output=True, text=True)
expect(out.stdout.strip() == str(512 << 20), "block target is the device:", out.stdout.strip(), out.stderr.strip())
r = check("block stats", lambda: node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(volume_id="vol-blk", volume_path=tg)))
check("block unpublish", lambda: node.NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(volume_id="vol-blk", target_path=tg)))
check("block unstage", lambda: node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id="vol-blk", staging_target_path=st)))

# read-only blank volume -> FAILED_PRECONDITION, rolled back
check("ro blank", lambda: stage("vol-ro", "img-ro", cap(am=pb.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY), W + "/ro-st"), grpc.StatusCode.FAILED_PRECONDITION)
print("devices after ro failure:", ctl({"op": "status"})["devices"], "state:", os.listdir(W + "/state"))
# partition table
img = W + "/kube_img-pt.img"
with open(img, "wb") as fh: fh.truncate(64 << 20)
with open(img, "r+b") as fh:  # an MBR with one Linux partition from sector 2048
    import struct
    entry = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 2048, (64 << 11) - 2048)
    fh.seek(446); fh.write(entry); fh.seek(510); fh.write(b"\x55\xaa")
check("partition table", lambda: stage("vol-pt", "img-pt", cap(), W + "/pt-st"), grpc.StatusCode.FAILED_PRECONDITION)

print("devices after pt failure:", ctl({"op": "status"})["devices"], "state:", os.listdir(W + "/state"))
# restart between stage and unstage: only the state dir survives
st = W + "/restart-st"
check("restart: stage", lambda: stage("vol-rs", "img-rs", cap(), st))
plugin.terminate(); print("plugin exit on SIGTERM (stage kept):", plugin.wait(timeout=20), "mounted:", mounted(st))
plugin = subprocess.Popen(plugin.args, stderr=open(W + "/plugin2.log", "w"))
time.sleep(1.0)
check("restart: stage again after restart", lambda: stage("vol-rs", "img-rs", cap(), st))
check("restart: unstage", lambda: node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id="vol-rs", staging_target_path=st)))
expect(not mounted(st) and not ctl({"op": "status"})["devices"], "restart: all gone")
plugin.terminate(); rc = plugin.wait(timeout=20)
expect(rc == 0, "plugin exit on SIGTERM", rc)
daemon.kill()
log = open(W + "/plugin.log").read() + open(W + "/plugin2.log").read()
expect(KEY not in log, "key not in plugin log")
expect(all(KEY not in open(os.path.join(W, "state", f)).read() for f in os.listdir(W + "/state")), "key not in state")
print("failures:", failures)
sys.exit(1 if failures else 0)
