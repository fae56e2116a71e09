#!/usr/bin/python3
"""Static checks of the Kubernetes manifests (deploy/kubernetes) and the systemd unit.

Parses every YAML file under deploy/kubernetes (multi-document), then checks the
fields that decide whether the node side works: the CSIDriver, the CSI node plugin
DaemonSet, the separate rbd-nbdd daemon DaemonSet, the paths they share, the
examples against csi/README.md, the Secret and ConfigMap templates, the
kustomization, and deploy/rbd-nbdd.service; then the controller side
(controller_checks.py): the controller Deployment, its sidecars and RBAC, the
StorageClasses and VolumeSnapshotClass against csi/controller/README.md, and the
dynamic examples; then metrics, probes and monitoring (monitoring_checks.py): the
Grafana dashboard's queries against gateway/metrics/METRICS.md, --metrics-address,
ports and scrape annotations, probe thresholds, the PodMonitor.

Usage: test_manifests.py [--root REPO] [--quiet]
Prints one line per check and "N passed, N failed"; exit 0 pass, 1 fail, 77 skip.
/usr/bin/python3 on purpose: it has python3-yaml (the first python3 on PATH may not).
"""

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import types

try:
    import yaml
except ImportError:
    print("skip - python3-yaml is not installed (apt-get install python3-yaml)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import controller_checks  # noqa: E402  (after the yaml probe: exit 77 first)
import monitoring_checks  # noqa: E402

DRIVER = "rbd-nbdd.csi.ceph.io"
NAMESPACE = "rbd-nbdd"
IMAGE = "rbd-nbdd:0.1.0"
REGISTRAR_IMAGE = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.9.0"
KUBELET_DIR = "/var/lib/kubelet"

passed = 0
failed = 0
quiet = False


def check(name, ok, detail=""):
    """Records one check. `ok` is a bool; `detail` explains a failure."""
    global passed, failed
    if ok:
        passed += 1
        if not quiet:
            print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
    return ok


def skip(name, why):
    if not quiet:
        print(f"skip - {name}: {why}")


def get(obj, *path, default=None):
    """obj[path[0]][path[1]]... or default when any step is missing."""
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and 0 <= p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def arg_value(argv, flag):
    """The value of `--flag value` or `--flag=value` in argv, else None."""
    argv = argv or []
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if isinstance(a, str) and a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def argv_of(container):
    return [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]


# Fields the Kubernetes API knows, for the objects these manifests use: a typo
# (mountPropogation, hostpath) would otherwise be dropped silently by the server.
KNOWN = {
    "container": {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
                  "volumeMounts", "volumeDevices", "securityContext", "resources", "livenessProbe",
                  "readinessProbe", "startupProbe", "lifecycle", "workingDir", "terminationMessagePath",
                  "terminationMessagePolicy", "stdin", "stdinOnce", "tty", "resizePolicy", "restartPolicy"},
    "volumeMount": {"name", "mountPath", "readOnly", "mountPropagation", "subPath", "subPathExpr",
                    "recursiveReadOnly"},
    "volume": {"name", "hostPath", "configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
               "downwardAPI"},
    "hostPath": {"path", "type"},
    "probe": {"exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
              "failureThreshold", "successThreshold", "terminationGracePeriodSeconds"},
    "podSpec": {"containers", "initContainers", "volumes", "serviceAccountName", "automountServiceAccountToken",
                "priorityClassName", "hostNetwork", "hostPID", "hostIPC", "dnsPolicy", "nodeSelector",
                "tolerations", "affinity", "terminationGracePeriodSeconds", "securityContext", "restartPolicy",
                "imagePullSecrets", "nodeName", "hostUsers"},
    "daemonSetSpec": {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},
    "deploymentSpec": {"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
                       "progressDeadlineSeconds", "paused"},
    "storageClass": {"apiVersion", "kind", "metadata", "provisioner", "parameters", "reclaimPolicy",
                     "allowVolumeExpansion", "volumeBindingMode", "mountOptions", "allowedTopologies"},
    "volumeSnapshotClass": {"apiVersion", "kind", "metadata", "driver", "deletionPolicy", "parameters"},
    "csiDriverSpec": {"attachRequired", "podInfoOnMount", "volumeLifecycleModes", "fsGroupPolicy",
                      "storageCapacity", "tokenRequests", "requiresRepublish", "seLinuxMount"},
    "csiPV": {"driver", "volumeHandle", "fsType", "readOnly", "volumeAttributes", "nodeStageSecretRef",
              "nodePublishSecretRef", "controllerPublishSecretRef", "controllerExpandSecretRef",
              "nodeExpandSecretRef"},
    "pvSpec": {"capacity", "accessModes", "persistentVolumeReclaimPolicy", "volumeMode", "storageClassName",
               "claimRef", "csi", "mountOptions", "nodeAffinity"},
    "pvcSpec": {"accessModes", "volumeMode", "storageClassName", "volumeName", "resources", "selector",
                "dataSource", "dataSourceRef"},
}
HOSTPATH_TYPES = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                  "BlockDevice"}


def unknown_keys(obj, kind):
    return sorted(set(obj or {}) - KNOWN[kind]) if isinstance(obj, dict) else ["<not a mapping>"]


def check_pod_spec(where, spec):
    """Generic pod spec sanity: known fields, mounts name real volumes, hostPath types, probes."""
    check(f"{where}: pod spec fields are known", not unknown_keys(spec, "podSpec"), str(unknown_keys(spec, "podSpec")))
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    used = set()
    for v in spec.get("volumes") or []:
        bad = unknown_keys(v, "volume")
        check(f"{where}: volume {v.get('name')} fields are known", not bad, str(bad))
        if "hostPath" in v:
            hp = v["hostPath"]
            check(f"{where}: volume {v.get('name')} hostPath is absolute with a valid type",
                  not unknown_keys(hp, "hostPath") and str(hp.get("path", "")).startswith("/")
                  and hp.get("type", "") in HOSTPATH_TYPES, str(hp))
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        cname = c.get("name")
        bad = unknown_keys(c, "container")
        check(f"{where}/{cname}: container fields are known", not bad, str(bad))
        for m in c.get("volumeMounts") or []:
            bad = unknown_keys(m, "volumeMount")
            ok = not bad and m.get("name") in volumes and str(m.get("mountPath", "")).startswith("/")
            ok = ok and m.get("mountPropagation", "None") in ("None", "HostToContainer", "Bidirectional")
            check(f"{where}/{cname}: mount {m.get('mountPath')} names a volume, fields valid", ok,
                  f"unknown {bad}, volume {m.get('name')!r} in {sorted(volumes)}")
            used.add(m.get("name"))
        for d in c.get("volumeDevices") or []:
            used.add(d.get("name"))
        for p in ("livenessProbe", "readinessProbe", "startupProbe"):
            if p in c:
                bad = unknown_keys(c[p], "probe")
                check(f"{where}/{cname}: {p} fields are known", not bad, str(bad))
    check(f"{where}: every volume is mounted by some container", set(volumes) <= used,
          f"unused: {sorted(set(volumes) - used)}")


def mount_source(spec, container, mount_path):
    """(volumeMount, volume) for the mount at exactly mount_path, else (None, None)."""
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        if m.get("mountPath") == mount_path:
            return m, volumes.get(m.get("name"))
    return None, None


def host_path_of(spec, container, mount_path):
    """The hostPath path behind the mount at mount_path, else None."""
    _, vol = mount_source(spec, container, mount_path)
    return get(vol, "hostPath", "path")


def check_host_mount(where, spec, container, path, read_only=None, host_path=None, types=None):
    """The container mounts hostPath `host_path` (default: the same path) at `path`."""
    m, vol = mount_source(spec, container, path)
    want = host_path or path
    ok = m is not None and get(vol, "hostPath", "path") == want
    detail = f"mount {m}, volume {vol}"
    if ok and read_only is not None:
        ok = bool(m.get("readOnly", False)) == read_only
    if ok and types is not None:
        ok = get(vol, "hostPath", "type", default="") in types
    ro = "" if read_only is None else (" (ro)" if read_only else " (rw)")
    return check(f"{where}: {path} is hostPath {want}{ro}", ok, detail)


def load_yaml_dir(k8s):
    files = {}
    for dirpath, _, names in os.walk(k8s):
        for n in sorted(names):
            if n.endswith((".yaml", ".yml")):
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, k8s)
                try:
                    with open(p) as f:
                        docs = [d for d in yaml.safe_load_all(f) if d is not None]
                    check(f"{rel}: parses ({len(docs)} document(s))", len(docs) > 0, "no documents")
                    files[rel] = docs
                except yaml.YAMLError as e:
                    check(f"{rel}: parses", False, str(e).replace("\n", " "))
                    files[rel] = []
    return files


def documented_volume_context_keys(csi_readme):
    """The keys of the volume_context table in csi/README.md (first column, in backticks)."""
    keys = set()
    with open(csi_readme) as f:
        text = f.read()
    m = re.search(r"^## volume_context.*?$(.*?)^## ", text, re.S | re.M)
    if not m:
        return keys, text
    for line in m.group(1).splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            keys.update(re.findall(r"`([A-Za-z]+)`", first))
    return keys, text


def parse_unit(path):
    """systemd unit -> {key: [values]} (keys may repeat)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")) or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def main():
    global quiet
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    argv = sys.argv[1:]
    if "--quiet" in argv:
        quiet = True
        argv.remove("--quiet")
    if "--root" in argv:
        root = argv[argv.index("--root") + 1]
    k8s = os.path.join(root, "deploy", "kubernetes")
    if not os.path.isdir(k8s):
        check("deploy/kubernetes exists", False, k8s)
        return finish()

    files = load_yaml_dir(k8s)
    # monitoring/ (PodMonitor, dashboard) is applied apart: its CRD may be absent.
    base = {rel: docs for rel, docs in files.items() if not rel.startswith(("examples" + os.sep, "monitoring" + os.sep))
            and rel != "kustomization.yaml"}

    # --- every document: apiVersion, kind, metadata.name --------------------------------
    for rel, docs in files.items():
        for i, d in enumerate(docs):
            ok = isinstance(d, dict) and all(isinstance(d.get(k), str) and d.get(k) for k in ("apiVersion", "kind")) \
                and isinstance(get(d, "metadata", "name"), str) and get(d, "metadata", "name")
            check(f"{rel}[{i}] {get(d, 'kind')}/{get(d, 'metadata', 'name')}: has apiVersion, kind, metadata.name",
                  bool(ok), str(d)[:120])

    def find(kind, docs_by_file=None):
        out = []
        for rel, docs in (docs_by_file or files).items():
            out += [(rel, d) for d in docs if isinstance(d, dict) and d.get("kind") == kind]
        return out

    cluster_scoped = {"Namespace", "CSIDriver", "ClusterRole", "ClusterRoleBinding", "Kustomization", "StorageClass",
                      "VolumeSnapshotClass"}
    for rel, docs in base.items():
        for d in docs:
            if isinstance(d, dict) and d.get("kind") not in cluster_scoped:
                ns = get(d, "metadata", "namespace")
                check(f"{rel} {d.get('kind')}/{get(d, 'metadata', 'name')}: namespace {NAMESPACE}", ns == NAMESPACE,
                      f"namespace {ns!r}")
    nss = find("Namespace", base)
    check(f"Namespace {NAMESPACE} allows privileged pods (Pod Security Admission)",
          len(nss) == 1 and get(nss[0][1], "metadata", "name") == NAMESPACE
          and get(nss[0][1], "metadata", "labels", "pod-security.kubernetes.io/enforce") == "privileged",
          str(nss))

    # --- CSIDriver ------------------------------------------------------------------------
    drivers = find("CSIDriver", base)
    drv = drivers[0][1] if len(drivers) == 1 else {}
    check("CSIDriver: exactly one, in csidriver.yaml",
          len(drivers) == 1 and drivers[0][0] == "csidriver.yaml", str([r for r, _ in drivers]))
    driver_name = get(drv, "metadata", "name")
    check("CSIDriver: apiVersion storage.k8s.io/v1", drv.get("apiVersion") == "storage.k8s.io/v1", drv.get("apiVersion"))
    check(f"CSIDriver: name is {DRIVER} (domain style, <= 63 characters)",
          driver_name == DRIVER and len(driver_name) <= 63
          and re.fullmatch(r"[a-z]([a-z0-9.-]*[a-z0-9])?", driver_name or "") is not None, driver_name)
    check("CSIDriver: attachRequired is the boolean false", get(drv, "spec", "attachRequired") is False,
          repr(get(drv, "spec", "attachRequired")))
    check("CSIDriver: podInfoOnMount is false", get(drv, "spec", "podInfoOnMount") is False,
          repr(get(drv, "spec", "podInfoOnMount")))
    check("CSIDriver: volumeLifecycleModes [Persistent]", get(drv, "spec", "volumeLifecycleModes") == ["Persistent"],
          repr(get(drv, "spec", "volumeLifecycleModes")))
    check("CSIDriver: fsGroupPolicy File", get(drv, "spec", "fsGroupPolicy") == "File",
          repr(get(drv, "spec", "fsGroupPolicy")))
    bad = unknown_keys(drv.get("spec"), "csiDriverSpec")
    check("CSIDriver: spec fields are known", not bad, str(bad))

    # --- the two DaemonSets ---------------------------------------------------------------
    daemonsets = find("DaemonSet", base)

    def runs(ds, pred):
        return [c for c in get(ds, "spec", "template", "spec", "containers", default=[]) or [] if pred(argv_of(c))]

    def is_daemon(a):
        return len(a) >= 2 and posixpath.basename(a[0]) == "rbd-nbdd" and a[1] == "daemon"

    def is_plugin(a):
        return len(a) >= 1 and posixpath.basename(a[0]) == "rbd-nbdd-csi"

    daemon_ds = [(r, d) for r, d in daemonsets if runs(d, is_daemon)]
    plugin_ds = [(r, d) for r, d in daemonsets if runs(d, is_plugin)]
    check("exactly one DaemonSet runs `rbd-nbdd daemon` (rbd-nbdd-daemon.yaml)",
          len(daemon_ds) == 1 and daemon_ds[0][0] == "rbd-nbdd-daemon.yaml", str([r for r, _ in daemon_ds]))
    check("exactly one DaemonSet runs rbd-nbdd-csi (csi-nodeplugin.yaml)",
          len(plugin_ds) == 1 and plugin_ds[0][0] == "csi-nodeplugin.yaml", str([r for r, _ in plugin_ds]))
    dds = daemon_ds[0][1] if daemon_ds else {}
    pds = plugin_ds[0][1] if plugin_ds else {}
    check("the daemon and the CSI plugin are separate DaemonSets (no pod runs both)",
          bool(dds) and bool(pds) and dds is not pds and not runs(dds, is_plugin) and not runs(pds, is_daemon))
    for label, ds in (("daemon", dds), ("nodeplugin", pds)):
        bad = unknown_keys(ds.get("spec"), "daemonSetSpec")
        check(f"{label} DaemonSet: spec fields are known", not bad, str(bad))
        sel = get(ds, "spec", "selector", "matchLabels", default={}) or {}
        labels = get(ds, "spec", "template", "metadata", "labels", default={}) or {}
        check(f"{label} DaemonSet: selector matches the pod template labels",
              bool(sel) and all(labels.get(k) == v for k, v in sel.items()), f"{sel} vs {labels}")
        if ds:
            check_pod_spec(f"{label} DaemonSet", get(ds, "spec", "template", "spec", default={}))
    check("daemon and nodeplugin selectors differ (neither adopts the other's pods)",
          get(dds, "spec", "selector") != get(pds, "spec", "selector"))

    # --- daemon DaemonSet -----------------------------------------------------------------
    dspec = get(dds, "spec", "template", "spec", default={}) or {}
    dc = (runs(dds, is_daemon) or [{}])[0]
    dargv = argv_of(dc)
    check("daemon: updateStrategy OnDelete (a rollout never restarts it under I/O)",
          get(dds, "spec", "updateStrategy", "type") == "OnDelete", repr(get(dds, "spec", "updateStrategy")))
    check("daemon: privileged", get(dc, "securityContext", "privileged") is True)
    check("daemon: hostNetwork true (Ceph, and nbd netlink lives in the host netns)", dspec.get("hostNetwork") is True)
    check("daemon: hostPID not set", not dspec.get("hostPID", False))
    check("daemon: keeps the host user namespace (kernel keyring, uid-0 control socket)",
          dspec.get("hostUsers", True) is not False)
    check("daemon: priorityClassName system-node-critical", dspec.get("priorityClassName") == "system-node-critical")
    check("daemon: terminationGracePeriodSeconds >= 30 (time to finish control requests and detach)",
          isinstance(dspec.get("terminationGracePeriodSeconds"), int) and dspec["terminationGracePeriodSeconds"] >= 30,
          repr(dspec.get("terminationGracePeriodSeconds")))
    check(f"daemon: image {IMAGE}, imagePullPolicy IfNotPresent (a restart needs no registry)",
          dc.get("image") == IMAGE and dc.get("imagePullPolicy") == "IfNotPresent",
          f"{dc.get('image')} {dc.get('imagePullPolicy')}")
    for p in ("/dev", "/sys"):
        check_host_mount("daemon", dspec, dc, p)
    check_host_mount("daemon", dspec, dc, "/lib/modules", read_only=True)
    control = arg_value(dargv, "--control-socket")
    state = arg_value(dargv, "--state-dir")
    check("daemon: --control-socket is an absolute path", bool(control) and control.startswith("/"), repr(control))
    check("daemon: --state-dir is an absolute path", bool(state) and state.startswith("/"), repr(state))
    if control:
        check_host_mount("daemon (control socket dir)", dspec, dc, posixpath.dirname(control),
                         types={"DirectoryOrCreate"})
    if state:
        check_host_mount("daemon (state dir survives the pod)", dspec, dc, state, read_only=False,
                         types={"DirectoryOrCreate"})
    check("daemon: does not mount /var/lib/kubelet (never holds pods' mounts)",
          not any(str(m.get("mountPath", "")).startswith(KUBELET_DIR) for m in dc.get("volumeMounts") or []))
    # The daemon's probes (exec `rbd-nbdd status` or HTTP): monitoring_checks.py.
    check("daemon: ServiceAccount defined in rbac.yaml",
          any(get(d, "metadata", "name") == dspec.get("serviceAccountName") for _, d in find("ServiceAccount", base)),
          repr(dspec.get("serviceAccountName")))

    # --- CSI node plugin DaemonSet ----------------------------------------------------------
    pspec = get(pds, "spec", "template", "spec", default={}) or {}
    containers = pspec.get("containers") or []
    pc = (runs(pds, is_plugin) or [{}])[0]
    pargv = argv_of(pc)
    check("nodeplugin: container named rbd-nbdd-csi", pc.get("name") == "rbd-nbdd-csi", repr(pc.get("name")))
    check("nodeplugin: rbd-nbdd-csi is privileged", get(pc, "securityContext", "privileged") is True)
    check("nodeplugin: hostNetwork true", pspec.get("hostNetwork") is True)
    check(f"nodeplugin: image {IMAGE} (the same build as the daemon)",
          pc.get("image") == IMAGE and pc.get("image") == dc.get("image"), f"{pc.get('image')} vs {dc.get('image')}")
    plugin_driver = arg_value(pargv, "--driver-name") or "rbd-nbdd.csi.ceph.io"  # the plugin's default
    check("nodeplugin: --driver-name equals the CSIDriver name", plugin_driver == driver_name,
          f"{plugin_driver} vs {driver_name}")
    endpoint = arg_value(pargv, "--endpoint") or ""
    sock = endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint
    check("nodeplugin: --endpoint unix:///csi/csi.sock", endpoint == "unix:///csi/csi.sock", repr(endpoint))
    plugin_dir = f"{KUBELET_DIR}/plugins/{driver_name}"
    check_host_mount("nodeplugin (CSI socket dir)", pspec, pc, posixpath.dirname(sock) or "/csi", host_path=plugin_dir,
                     types={"DirectoryOrCreate"})
    node_id = arg_value(pargv, "--node-id")
    env = {e.get("name"): e for e in pc.get("env") or []}
    m = re.fullmatch(r"\$\((\w+)\)", node_id or "")
    check("nodeplugin: --node-id $(VAR) with VAR from spec.nodeName",
          m is not None and get(env.get(m.group(1)), "valueFrom", "fieldRef", "fieldPath") == "spec.nodeName",
          f"{node_id} {env}")
    pcontrol = arg_value(pargv, "--control-socket")
    check("nodeplugin: --control-socket identical to the daemon's", pcontrol is not None and pcontrol == control,
          f"{pcontrol} vs {control}")
    if pcontrol:
        d = posixpath.dirname(pcontrol)
        check("nodeplugin: control socket dir is the same hostPath as the daemon's",
              host_path_of(pspec, pc, d) is not None and host_path_of(pspec, pc, d) == host_path_of(dspec, dc, d),
              f"{host_path_of(pspec, pc, d)} vs {host_path_of(dspec, dc, d)}")
    pstate = arg_value(pargv, "--state-dir")
    check("nodeplugin: --state-dir is absolute and not the daemon's", bool(pstate) and pstate.startswith("/")
          and pstate != state, f"{pstate} vs {state}")
    if pstate:
        check_host_mount("nodeplugin (state dir survives the pod)", pspec, pc, pstate, read_only=False,
                         types={"DirectoryOrCreate"})
    m_kubelet, v_kubelet = mount_source(pspec, pc, KUBELET_DIR)
    check(f"nodeplugin: {KUBELET_DIR} is hostPath {KUBELET_DIR} with mountPropagation Bidirectional",
          m_kubelet is not None and m_kubelet.get("mountPropagation") == "Bidirectional"
          and get(v_kubelet, "hostPath", "path") == KUBELET_DIR, f"{m_kubelet} {v_kubelet}")
    for p in ("/dev", "/sys"):
        check_host_mount("nodeplugin", pspec, pc, p)
    check_host_mount("nodeplugin", pspec, pc, "/lib/modules", read_only=True)
    cluster_config = arg_value(pargv, "--cluster-config")
    cm_mount, cm_vol = mount_source(pspec, pc, posixpath.dirname(cluster_config or "/nonexistent/x"))
    cms = find("ConfigMap", base)
    cm = cms[0][1] if len(cms) == 1 else {}
    check("nodeplugin: --cluster-config is a key of the ConfigMap (configmap.yaml) mounted as a volume",
          cm_vol is not None and get(cm_vol, "configMap", "name") == get(cm, "metadata", "name")
          and posixpath.basename(cluster_config) in (cm.get("data") or {}),
          f"{cluster_config}: mount {cm_mount}, volume {cm_vol}, configmaps {[get(d, 'metadata', 'name') for _, d in cms]}")
    probe = pc.get("livenessProbe")
    check("nodeplugin: rbd-nbdd-csi has a livenessProbe", isinstance(probe, dict) and bool(probe))
    if get(probe, "httpGet"):
        port = get(probe, "httpGet", "port")
        if isinstance(port, str):
            port = next((p.get("containerPort") for p in pc.get("ports") or [] if p.get("name") == port), None)
        lp = [c for c in containers if "livenessprobe" in str(c.get("image", ""))]
        lp_args = argv_of(lp[0]) if lp else []
        endpoint_arg = arg_value(lp_args, "--http-endpoint") or ""
        check("nodeplugin: livenessprobe sidecar serves the probed port and watches the CSI socket",
              len(lp) == 1 and endpoint_arg.rsplit(":", 1)[-1] == str(port)
              and arg_value(lp_args, "--csi-address") == sock, f"port {port}, sidecar args {lp_args}")
    reg = [c for c in containers if str(c.get("image", "")).startswith(REGISTRAR_IMAGE.split(":")[0])]
    rc = reg[0] if len(reg) == 1 else {}
    rargs = argv_of(rc)
    check(f"nodeplugin: node-driver-registrar sidecar {REGISTRAR_IMAGE}", rc.get("image") == REGISTRAR_IMAGE,
          repr(rc.get("image")))
    check("registrar: --csi-address is the plugin's socket", arg_value(rargs, "--csi-address") == sock,
          f"{arg_value(rargs, '--csi-address')} vs {sock}")
    check("registrar: sees the plugin's socket dir (same volume)",
          get(mount_source(pspec, rc, posixpath.dirname(sock))[0], "name")
          == get(mount_source(pspec, pc, posixpath.dirname(sock))[0], "name") is not None)
    check(f"registrar: --kubelet-registration-path={plugin_dir}/csi.sock (the host path of the socket)",
          arg_value(rargs, "--kubelet-registration-path") == f"{plugin_dir}/csi.sock"
          == f"{host_path_of(pspec, pc, posixpath.dirname(sock))}/{posixpath.basename(sock)}",
          repr(arg_value(rargs, "--kubelet-registration-path")))
    check_host_mount("registrar (registration-dir)", pspec, rc, "/registration",
                     host_path=f"{KUBELET_DIR}/plugins_registry")
    check("nodeplugin: ServiceAccount bound to the ClusterRole",
          any(get(b, "roleRef", "kind") == "ClusterRole"
              and any(s.get("kind") == "ServiceAccount" and s.get("name") == pspec.get("serviceAccountName")
                      and s.get("namespace") == NAMESPACE for s in b.get("subjects") or [])
              for _, b in find("ClusterRoleBinding", base)), repr(pspec.get("serviceAccountName")))
    check("nodeplugin and daemon are placed on the same nodes (nodeSelector, tolerations, affinity)",
          all(pspec.get(k) == dspec.get(k) for k in ("nodeSelector", "tolerations", "affinity")))

    # --- RBAC of the node side: the minimum ------------------------------------------------------
    roles = find("ClusterRole", base)
    node_sa = pspec.get("serviceAccountName")
    node_roles = {get(b, "roleRef", "name") for _, b in find("ClusterRoleBinding", base)
                  if any(s.get("kind") == "ServiceAccount" and s.get("name") == node_sa for s in b.get("subjects") or [])}
    rules = [r for _, role in roles if get(role, "metadata", "name") in node_roles for r in role.get("rules") or []]
    check("nodeplugin ClusterRole: only `get nodes` (no secrets, no configmaps, no wildcards)",
          len(node_roles) == 1 and rules == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}], str(rules))
    for _, b in find("ClusterRoleBinding", base):
        check(f"ClusterRoleBinding {get(b, 'metadata', 'name')}: binds a ClusterRole defined here",
              any(get(r, "metadata", "name") == get(b, "roleRef", "name") for _, r in roles))

    # --- ConfigMap: ceph-csi config.json --------------------------------------------------------
    cluster_ids = set()
    try:
        conf = json.loads(get(cm, "data", "config.json", default=""))
        ok = isinstance(conf, list) and len(conf) > 0
        for entry in conf if ok else []:
            ok = ok and isinstance(entry, dict) and isinstance(entry.get("clusterID"), str) and entry["clusterID"] \
                and isinstance(entry.get("monitors"), list) and len(entry["monitors"]) > 0 \
                and all(isinstance(x, str) and re.fullmatch(r"\S+:\d+", x) for x in entry["monitors"])
            if ok:
                cluster_ids.add(entry["clusterID"])
        check('ConfigMap: config.json is ceph-csi\'s [{"clusterID": ..., "monitors": ["host:port", ...]}]',
              bool(ok), str(conf)[:200])
    except (TypeError, ValueError) as e:
        check("ConfigMap: config.json parses as JSON", False, str(e))

    # --- Secret template ------------------------------------------------------------------------
    secrets = find("Secret", base)
    sec = secrets[0][1] if len(secrets) == 1 else {}
    sdata = dict(sec.get("data") or {}, **(sec.get("stringData") or {}))
    check("Secret: one, in secret.yaml, type Opaque", len(secrets) == 1 and secrets[0][0] == "secret.yaml"
          and sec.get("type", "Opaque") == "Opaque", str([r for r, _ in secrets]))
    check("Secret: has userID and userKey", {"userID", "userKey"} <= set(sdata), str(sorted(sdata)))
    check("Secret: userID has no 'client.' prefix", not str(sdata.get("userID", "")).startswith("client."),
          repr(sdata.get("userID")))

    # --- examples against csi/README.md -----------------------------------------------------------
    csi_readme = os.path.join(root, "csi", "README.md")
    if os.path.exists(csi_readme):
        doc_keys, readme_text = documented_volume_context_keys(csi_readme)
        check("csi/README.md: volume_context table lists pool, imageName, clusterID",
              {"pool", "imageName", "clusterID"} <= doc_keys, str(sorted(doc_keys)))
        if "staticVolume" in readme_text:
            doc_keys.add("staticVolume")
    else:
        check("csi/README.md exists (documents volume_context)", False, csi_readme)
        doc_keys = set()
    for example, mode in (("examples/static-pv.yaml", "Filesystem"), ("examples/static-block.yaml", "Block")):
        docs = files.get(example.replace("/", os.sep))
        if not check(f"{example}: exists", docs is not None):
            continue
        ex = {example: docs}
        pvs, pvcs, pods = find("PersistentVolume", ex), find("PersistentVolumeClaim", ex), find("Pod", ex)
        if not check(f"{example}: one PV, one PVC, one Pod", len(pvs) == len(pvcs) == len(pods) == 1):
            continue
        pv, pvc, pod = pvs[0][1], pvcs[0][1], pods[0][1]
        csi = get(pv, "spec", "csi", default={}) or {}
        attrs = csi.get("volumeAttributes") or {}
        bad = unknown_keys(pv.get("spec"), "pvSpec") + unknown_keys(csi, "csiPV") + unknown_keys(pvc.get("spec"), "pvcSpec")
        check(f"{example}: PV/PVC fields are known", not bad, str(bad))
        check(f"{example}: PV csi.driver is the CSIDriver name", csi.get("driver") == driver_name, repr(csi.get("driver")))
        check(f"{example}: PV volumeHandle is the image name", bool(csi.get("volumeHandle"))
              and csi.get("volumeHandle") == attrs.get("imageName"), f"{csi.get('volumeHandle')} vs {attrs.get('imageName')}")
        check(f"{example}: volumeAttributes has clusterID, pool, imageName", {"clusterID", "pool", "imageName"} <= set(attrs),
              str(sorted(attrs)))
        check(f"{example}: every volumeAttributes key is documented in csi/README.md", set(attrs) <= doc_keys,
              f"undocumented: {sorted(set(attrs) - doc_keys)}")
        check(f"{example}: staticVolume is the string \"true\"", attrs.get("staticVolume") == "true",
              repr(attrs.get("staticVolume")))
        check(f"{example}: clusterID is one of the ConfigMap's", attrs.get("clusterID") in cluster_ids,
              f"{attrs.get('clusterID')} not in {sorted(cluster_ids)}")
        ref = csi.get("nodeStageSecretRef") or {}
        check(f"{example}: nodeStageSecretRef names the Secret of secret.yaml (name and namespace)",
              ref.get("name") == get(sec, "metadata", "name") and ref.get("namespace") == get(sec, "metadata", "namespace"),
              f"{ref} vs {get(sec, 'metadata', 'name')}/{get(sec, 'metadata', 'namespace')}")
        pv_mode = get(pv, "spec", "volumeMode", default="Filesystem")
        pvc_mode = get(pvc, "spec", "volumeMode", default="Filesystem")
        check(f"{example}: PV and PVC volumeMode {mode}", pv_mode == pvc_mode == mode, f"{pv_mode}/{pvc_mode}")
        if mode == "Filesystem":
            check(f"{example}: PV fsType ext4", csi.get("fsType") == "ext4", repr(csi.get("fsType")))
        else:
            check(f"{example}: block PV has no fsType", "fsType" not in csi, repr(csi.get("fsType")))
        check(f"{example}: PV and PVC storageClassName \"\" (static, no provisioning)",
              get(pv, "spec", "storageClassName") == "" and get(pvc, "spec", "storageClassName") == "",
              f"{get(pv, 'spec', 'storageClassName')!r}/{get(pvc, 'spec', 'storageClassName')!r}")
        check(f"{example}: PVC volumeName is the PV", get(pvc, "spec", "volumeName") == get(pv, "metadata", "name"))
        cref = get(pv, "spec", "claimRef")
        if cref is not None:
            check(f"{example}: PV claimRef is the PVC", cref.get("name") == get(pvc, "metadata", "name")
                  and cref.get("namespace") == get(pvc, "metadata", "namespace", default="default"), str(cref))
        pod_spec = pod.get("spec") or {}
        check_pod_spec(example, pod_spec)
        claim_vols = {v.get("name") for v in pod_spec.get("volumes") or []
                      if get(v, "persistentVolumeClaim", "claimName") == get(pvc, "metadata", "name")}
        key = "volumeMounts" if mode == "Filesystem" else "volumeDevices"
        uses = [x for c in pod_spec.get("containers") or [] for x in c.get(key) or [] if x.get("name") in claim_vols]
        check(f"{example}: Pod uses the PVC through {key}, in the PVC's namespace",
              len(uses) == 1 and get(pod, "metadata", "namespace") == get(pvc, "metadata", "namespace"))

    # --- the controller side (controller_checks.py) ------------------------------------------------
    t = types.SimpleNamespace(check=check, get=get, arg_value=arg_value, argv_of=argv_of, find=find,
                              check_pod_spec=check_pod_spec, mount_source=mount_source, unknown_keys=unknown_keys,
                              NAMESPACE=NAMESPACE)
    controller_checks.run(t, files, base, driver_name, IMAGE, cluster_ids, root, node_sa)

    # --- metrics, probes, monitoring (monitoring_checks.py) ----------------------------------------
    t.skip = skip
    ctl = next(((d, c) for _, d in find("Deployment", base)
                for c in get(d, "spec", "template", "spec", "containers", default=[]) or []
                if posixpath.basename((argv_of(c) or [""])[0]) == controller_checks.CONTROLLER_BIN), ({}, {}))
    monitoring_checks.run(t, k8s, root, files, (dds, dc, get(dspec, "containers", default=[]) or []),
                          (pds, pc, containers),
                          (ctl[0], ctl[1], get(ctl[0], "spec", "template", "spec", "containers", default=[]) or []),
                          control)

    # --- kustomization ----------------------------------------------------------------------------
    kust = files.get("kustomization.yaml", [{}])[0] if files.get("kustomization.yaml") else {}
    res = kust.get("resources") or []
    check("kustomization.yaml: namespace rbd-nbdd", kust.get("namespace") == NAMESPACE, repr(kust.get("namespace")))
    check("kustomization.yaml: every resource exists", bool(res) and all(os.path.isfile(os.path.join(k8s, r)) for r in res),
          str([r for r in res if not os.path.isfile(os.path.join(k8s, r))]))
    check("kustomization.yaml: lists every base manifest (not the examples)",
          set(res) == set(base), f"listed {sorted(res)}, base {sorted(base)}")
    kubectl = shutil.which("kubectl")
    if os.environ.get("RBD_NBDD_TEST_NO_KUBECTL"):
        skip("kubectl kustomize", "RBD_NBDD_TEST_NO_KUBECTL is set")
    elif kubectl:
        try:
            r = subprocess.run([kubectl, "kustomize", k8s], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, KUBECONFIG=os.devnull))
            rendered = [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []
            want = sum(len(base.get(x, [])) for x in res)
            check("kubectl kustomize renders every base object (offline)",
                  r.returncode == 0 and len(rendered) == want, (r.stderr.strip() or f"{len(rendered)} != {want}")[:300])
        except (subprocess.TimeoutExpired, OSError, yaml.YAMLError) as e:
            check("kubectl kustomize renders (offline)", False, str(e))
    else:
        skip("kubectl kustomize", "kubectl not installed")
    readme = os.path.join(k8s, "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    check("deploy/kubernetes/README.md covers apply -k, both examples and the separate daemon",
          all(s in text for s in ("kubectl apply -k", "static-pv.yaml", "static-block.yaml", "rbd-nbdd-daemon.yaml",
                                  "OnDelete")))
    want = ["csi-controller.yaml", "csi-controller-rbac.yaml", "snapshot-controller"] + \
        sorted(os.path.basename(r) for r in files if r.startswith("examples" + os.sep))
    check("deploy/kubernetes/README.md covers the controller, its RBAC, the snapshot add-on and every example",
          all(s in text for s in want), f"missing: {[s for s in want if s not in text]}")

    # --- the systemd unit -------------------------------------------------------------------------
    unit_path = os.path.join(root, "deploy", "rbd-nbdd.service")
    if check("deploy/rbd-nbdd.service exists", os.path.exists(unit_path)):
        unit = parse_unit(unit_path)
        execs = unit.get("ExecStart", [])
        ex = execs[0].split() if len(execs) == 1 else []
        check("unit: one ExecStart running `rbd-nbdd daemon`",
              len(ex) >= 2 and posixpath.basename(ex[0].lstrip("-@:+!")) == "rbd-nbdd" and ex[1] == "daemon", str(execs))
        check("unit: same control socket and state dir as the Kubernetes daemon",
              arg_value(ex, "--control-socket") == control and arg_value(ex, "--state-dir") == state,
              f"{arg_value(ex, '--control-socket')} {arg_value(ex, '--state-dir')} vs {control} {state}")
        check("unit: KillSignal=SIGTERM (the daemon detaches and leaves devices to the next one)",
              unit.get("KillSignal", ["SIGTERM"])[-1] in ("SIGTERM", "TERM", "15"), str(unit.get("KillSignal")))
        check("unit: KillMode=process (only the daemon is signalled)", unit.get("KillMode", [""])[-1] == "process",
              str(unit.get("KillMode")))
        check("unit: Restart=always", unit.get("Restart", [""])[-1] == "always", str(unit.get("Restart")))
        tss = unit.get("TimeoutStopSec", ["90"])[-1]
        check("unit: TimeoutStopSec >= 30", tss.isdigit() and int(tss) >= 30, tss)
        check("unit: RuntimeDirectoryPreserve=yes (/run/rbd-nbdd survives a restart)",
              unit.get("RuntimeDirectoryPreserve", ["no"])[-1] in ("yes", "true"), str(unit.get("RuntimeDirectoryPreserve")))
    return finish()


def finish():
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
