"""Checks of the CSI controller's manifests and the dynamic examples (called by test_manifests.py).

What is checked, against csi/controller/README.md and the external sidecars' own rules:
  - the controller Deployment (csi-controller.yaml): 2 replicas, every sidecar elected, images
    pinned, the socket shared through an emptyDir, the same image and driver name as the node
    side, the cluster ConfigMap mounted, no privilege and no host path;
  - RBAC: the controller's own ServiceAccount holds what each sidecar needs (SIDECAR_RBAC,
    from each sidecar's upstream rbac.yaml at the pinned version), leases for the election,
    and `get` on exactly the Secrets the classes name for the controller, nothing cluster-wide
    on Secrets; the node plugin's account gains nothing;
  - the StorageClasses and the VolumeSnapshotClass: driver names, parameters the controller
    documents, every image feature, complete secret pairs with templates the sidecars resolve,
    Secrets that exist and hold no admin key;
  - the dynamic PVC, the VolumeSnapshot and the PVC restored from it.
The `t` argument carries test_manifests.py's helpers (check, get, arg_value, ...).
"""

import os
import posixpath
import re

CONTROLLER_BIN = "rbd-nbdd-csi-controller"
SIDECAR_REPO = "registry.k8s.io/sig-storage/"
# Sidecar image name -> the lowest release this deployment relies on (CSI spec 1.9 support:
# external-provisioner v5, external-resizer v1.10, external-snapshotter v8).
SIDECARS = {"csi-provisioner": (5, 0, 0), "csi-resizer": (1, 10, 0), "csi-snapshotter": (8, 0, 0)}
LIVENESS = "livenessprobe"
PINNED = re.compile(r"^(?P<repo>[^:@]+):v(?P<ver>\d+\.\d+\.\d+)$")

# What each sidecar needs: (apiGroup, resource) -> verbs, from its upstream deploy/kubernetes
# rbac (external-provisioner v5.2.0, external-resizer v1.13.1, external-snapshotter v8.2.0
# rbac-csi-snapshotter.yaml), without the optional parts this deployment does not use
# (capacity, group snapshots, secrets: those are checked per Secret below).
SIDECAR_RBAC = {
    "csi-provisioner": {
        ("", "persistentvolumes"): {"get", "list", "watch", "create", "patch", "delete"},
        ("", "persistentvolumeclaims"): {"get", "list", "watch", "update"},
        ("storage.k8s.io", "storageclasses"): {"get", "list", "watch"},
        ("", "events"): {"list", "watch", "create", "update", "patch"},
        ("snapshot.storage.k8s.io", "volumesnapshots"): {"get", "list"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): {"get", "list"},
        ("storage.k8s.io", "csinodes"): {"get", "list", "watch"},
        ("", "nodes"): {"get", "list", "watch"},
        ("storage.k8s.io", "volumeattachments"): {"get", "list", "watch"},
    },
    "csi-resizer": {
        ("", "persistentvolumes"): {"get", "list", "watch", "patch"},
        ("", "persistentvolumeclaims"): {"get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "persistentvolumeclaims/status"): {"patch"},
        ("", "events"): {"list", "watch", "create", "update", "patch"},
    },
    "csi-snapshotter": {
        ("", "events"): {"list", "watch", "create", "update", "patch"},
        ("snapshot.storage.k8s.io", "volumesnapshotclasses"): {"get", "list", "watch"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): {"create", "get", "list", "watch", "update", "delete",
                                                                "patch"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents/status"): {"update", "patch"},
    },
}
LEASE_VERBS = {"get", "watch", "list", "delete", "update", "create"}

# StorageClass keys under csi.storage.k8s.io/ that the external-provisioner knows (it rejects
# any other key in that prefix), and the secret kinds: which sidecar reads each, and whether
# the controller (not kubelet) gets it.
SECRET_KINDS_SC = {"provisioner": True, "controller-publish": True, "controller-expand": True,
                   "node-stage": False, "node-publish": False, "node-expand": False}
SC_RESERVED = {"csi.storage.k8s.io/fstype"} | {f"csi.storage.k8s.io/{k}-secret-{f}" for k in SECRET_KINDS_SC
                                               for f in ("name", "namespace")}
# The secret pairs a StorageClass of this driver must give: the controller needs client.kube
# for create/delete and expand, the node plugin for stage. (publish: no controller publish.)
REQUIRED_SC_SECRETS = ("provisioner", "controller-expand", "node-stage")
# Templates each field may use (kubernetes-csi docs: "StorageClass Secrets" and
# "VolumeSnapshotClass Secrets").
SC_TEMPLATES = {"name": {"pv.name", "pvc.namespace", "pvc.name", "pvc.annotations"},
                "namespace": {"pv.name", "pvc.namespace"}}
VSC_TEMPLATES = {"name": {"volumesnapshotcontent.name", "volumesnapshot.namespace", "volumesnapshot.name"},
                 "namespace": {"volumesnapshotcontent.name", "volumesnapshot.namespace"}}
# VolumeSnapshotClass secrets: snapshotter (CreateSnapshot, DeleteSnapshot; required here) and
# snapshotter-list (ListSnapshots, for pre-provisioned contents), both read by csi-snapshotter.
VSC_SECRET_KINDS = ("snapshotter", "snapshotter-list")
QUIESCE = ("best-effort", "required", "skip")
CEPHX_KEY = re.compile(r"AQ[A-Za-z0-9+/]{38}==")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def controller_readme(root):
    """(StorageClass parameter keys, image features, whole text) from csi/controller/README.md."""
    path = os.path.join(root, "csi", "controller", "README.md")
    if not os.path.exists(path):
        return None, None, ""
    text = open(path).read()
    m = re.search(r"^## StorageClass parameters.*?$(.*?)^## ", text, re.S | re.M)
    keys, features = set(), []
    for line in (m.group(1) if m else "").splitlines():
        cols = [c.strip() for c in line.split("|")]
        if not line.startswith("|") or len(cols) < 4 or set(cols[1]) <= set("- "):
            continue
        # A row names its key(s) in the first column; a row without one (the node keys)
        # lists them in the second.
        names = re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", cols[1])
        keys.update(names or re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", cols[2]))
        if "`imageFeatures`" in cols[1]:
            f = re.search(r"from ([a-z ,-]+?);", cols[2])
            features = [x for x in re.split(r",\s*|\s+and\s+", f.group(1)) if x] if f else []
    return keys, features, text


def version_of(image):
    m = PINNED.match(image or "")
    return (m.group("repo"), tuple(int(x) for x in m.group("ver").split("."))) if m else (None, None)


def flag_on(argv, flag, t):
    """--flag or --flag=true."""
    v = t.arg_value(argv, flag)
    return flag in argv or (v is not None and v.lower() == "true")


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)", text or "")
    return None if not m else int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


class Rbac:
    """The effective permissions of ServiceAccounts, from every Role/ClusterRole and binding."""

    def __init__(self, t, files):
        self.roles = {("ClusterRole", None, t.get(d, "metadata", "name")): d for _, d in t.find("ClusterRole", files)}
        self.roles.update({("Role", t.get(d, "metadata", "namespace"), t.get(d, "metadata", "name")): d
                           for _, d in t.find("Role", files)})
        self.bindings = [d for _, d in t.find("ClusterRoleBinding", files) + t.find("RoleBinding", files)]
        self.t = t

    def rules_of(self, sa_ns, sa_name):
        """[(namespace or None for cluster-wide, rule)] granted to the ServiceAccount."""
        out = []
        for b in self.bindings:
            if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and s.get("namespace") == sa_ns
                       for s in b.get("subjects") or []):
                continue
            kind, name = self.t.get(b, "roleRef", "kind"), self.t.get(b, "roleRef", "name")
            scope = None if b.get("kind") == "ClusterRoleBinding" else self.t.get(b, "metadata", "namespace")
            role = self.roles.get((kind, None if kind == "ClusterRole" else scope, name))
            out += [(scope, r) for r in (role or {}).get("rules") or []]
        return out

    @staticmethod
    def allows(granted, group, resource, verb, namespace=None, name=None):
        for scope, r in granted:
            if scope is not None and scope != namespace:
                continue
            if group in (r.get("apiGroups") or []) and resource in (r.get("resources") or []) \
                    and verb in (r.get("verbs") or []) and (not r.get("resourceNames") or name in r["resourceNames"]):
                return True
        return False


def check_controller(t, files, base, driver_name, image, nodeplugin_sa):
    check, get = t.check, t.get
    deployments = [(r, d) for r, d in t.find("Deployment", base)
                   if any(posixpath.basename((t.argv_of(c) or [""])[0]) == CONTROLLER_BIN
                          for c in get(d, "spec", "template", "spec", "containers", default=[]) or [])]
    check(f"exactly one Deployment runs {CONTROLLER_BIN} (csi-controller.yaml)",
          len(deployments) == 1 and deployments[0][0] == "csi-controller.yaml", str([r for r, _ in deployments]))
    dep = deployments[0][1] if deployments else {}
    spec = get(dep, "spec", "template", "spec", default={}) or {}
    containers = spec.get("containers") or []
    cc = next((c for c in containers if posixpath.basename((t.argv_of(c) or [""])[0]) == CONTROLLER_BIN), {})
    cargv = t.argv_of(cc)
    bad = t.unknown_keys(dep.get("spec"), "deploymentSpec")
    check("controller Deployment: spec fields are known", not bad, str(bad))
    sel = get(dep, "spec", "selector", "matchLabels", default={}) or {}
    labels = get(dep, "spec", "template", "metadata", "labels", default={}) or {}
    check("controller Deployment: selector matches the pod template labels",
          bool(sel) and all(labels.get(k) == v for k, v in sel.items()), f"{sel} vs {labels}")
    ds_selectors = [get(d, "spec", "selector") for _, d in t.find("DaemonSet", base)]
    check("controller Deployment: its selector is not a DaemonSet's", get(dep, "spec", "selector") not in ds_selectors)
    if dep:
        t.check_pod_spec("controller Deployment", spec)

    # --- the controller container ---
    check(f"controller: image {image}, the same build as the DaemonSets", cc.get("image") == image, repr(cc.get("image")))
    ctl_driver = t.arg_value(cargv, "--driver-name") or "rbd-nbdd.csi.ceph.io"  # the controller's default
    check("controller: --driver-name equals the CSIDriver name", ctl_driver == driver_name, f"{ctl_driver} vs {driver_name}")
    endpoint = t.arg_value(cargv, "--endpoint") or ""
    sock = endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint
    check("controller: --endpoint unix:///csi/csi.sock", endpoint == "unix:///csi/csi.sock", repr(endpoint))
    sock_mount, sock_vol = t.mount_source(spec, cc, posixpath.dirname(sock) or "/nonexistent")
    check("controller: the socket dir is an emptyDir (private to the pod)",
          sock_vol is not None and "emptyDir" in sock_vol, f"mount {sock_mount}, volume {sock_vol}")
    cluster_config = t.arg_value(cargv, "--cluster-config") or "/nonexistent/x"
    cm_mount, cm_vol = t.mount_source(spec, cc, posixpath.dirname(cluster_config))
    cms = {get(d, "metadata", "name"): d for _, d in t.find("ConfigMap", base)}
    check("controller: --cluster-config is a key of the node plugin's ConfigMap, mounted read-only",
          cm_vol is not None and get(cm_vol, "configMap", "name") in cms and bool(cm_mount.get("readOnly"))
          and posixpath.basename(cluster_config) in (cms[get(cm_vol, "configMap", "name")].get("data") or {}),
          f"{cluster_config}: mount {cm_mount}, volume {cm_vol}")
    privileged = [c.get("name") for c in containers if get(c, "securityContext", "privileged") is True
                  or get(c, "securityContext", "allowPrivilegeEscalation", default=True) is not False]
    check("controller pod: no container privileged, none may escalate", not privileged, str(privileged))
    host = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    check("controller pod: no hostPath volume", not host, str(host))
    check("controller pod: no hostNetwork, hostPID, hostIPC",
          not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
    sa = spec.get("serviceAccountName")
    sas = {get(d, "metadata", "name") for _, d in t.find("ServiceAccount", base)}
    ds_sas = {get(d, "spec", "template", "spec", "serviceAccountName") for _, d in t.find("DaemonSet", base)}
    check("controller: a ServiceAccount of its own (defined, not a DaemonSet's)",
          sa in sas and sa not in ds_sas, f"{sa!r}, DaemonSets use {sorted(x for x in ds_sas if x)}")

    # --- sidecars ---
    replicas = get(dep, "spec", "replicas")
    check("controller Deployment: replicas 2", replicas == 2, repr(replicas))
    by_image = {}
    for c in containers:
        repo, _ = version_of(c.get("image"))
        by_image.setdefault(repo or str(c.get("image")), []).append(c)
    for c in containers:
        if c is cc:
            continue
        check(f"controller sidecar {c.get('name')}: image pinned to a vX.Y.Z tag of {SIDECAR_REPO}",
              version_of(c.get("image"))[0] is not None and str(c.get("image")).startswith(SIDECAR_REPO),
              repr(c.get("image")))
        args = t.argv_of(c)
        check(f"controller sidecar {c.get('name')}: --csi-address is the controller's socket, on the same volume",
              (t.arg_value(args, "--csi-address") or "").removeprefix("unix://") == sock and sock_mount is not None
              and t.get(t.mount_source(spec, c, posixpath.dirname(sock))[0], "name") == sock_mount.get("name"),
              f"{t.arg_value(args, '--csi-address')} vs {sock}")
    sidecar = {}
    for name, minimum in SIDECARS.items():
        found = by_image.get(SIDECAR_REPO + name, [])
        sc = found[0] if len(found) == 1 else {}
        sidecar[name] = sc
        _, ver = version_of(sc.get("image"))
        check(f"controller: one {name} sidecar, v{'.'.join(map(str, minimum))} or later",
              len(found) == 1 and ver is not None and ver >= minimum, str([c.get("image") for c in found]))
        args = t.argv_of(sc)
        check(f"{name}: --leader-election (two replicas, one acts)", flag_on(args, "--leader-election", t), str(args))
        lns = t.arg_value(args, "--leader-election-namespace")
        check(f"{name}: leases in the pod's namespace", lns in (None, t.NAMESPACE), repr(lns))
        to = seconds(t.arg_value(args, "--timeout"))
        check(f"{name}: --timeout of at least 60s (clones, flattens, quiesce)", to is not None and to >= 60,
              repr(t.arg_value(args, "--timeout")))
    pargs = t.argv_of(sidecar["csi-provisioner"])
    check("csi-provisioner: --extra-create-metadata (pvc/name, pvc/namespace, pv/name reach CreateVolume)",
          flag_on(pargs, "--extra-create-metadata", t), str(pargs))
    probe = cc.get("livenessProbe")
    lp = by_image.get(SIDECAR_REPO + LIVENESS, [])
    if probe:
        port = get(probe, "httpGet", "port")
        if isinstance(port, str):
            port = next((p.get("containerPort") for p in cc.get("ports") or [] if p.get("name") == port), None)
        lp_args = t.argv_of(lp[0]) if len(lp) == 1 else []
        check("controller: the livenessprobe sidecar serves the probed port",
              len(lp) == 1 and (t.arg_value(lp_args, "--http-endpoint") or "").rsplit(":", 1)[-1] == str(port),
              f"port {port}, sidecar args {lp_args}")

    # --- RBAC ---
    rbac = Rbac(t, files)
    granted = rbac.rules_of(t.NAMESPACE, sa)
    for name, table in SIDECAR_RBAC.items():
        missing = [f"{verb} {group or 'core'}/{res}" for (group, res), verbs in sorted(table.items())
                   for verb in sorted(verbs) if not rbac.allows(granted, group, res, verb, t.NAMESPACE)]
        check(f"RBAC: the controller's ServiceAccount has what {name} needs", not missing, str(missing))
    missing = [v for v in sorted(LEASE_VERBS) if not rbac.allows(granted, "coordination.k8s.io", "leases", v, t.NAMESPACE)]
    check(f"RBAC: leader election: leases in {t.NAMESPACE}", not missing, str(missing))
    wild = [r for _, r in granted if any("*" in (r.get(k) or []) for k in ("apiGroups", "resources", "verbs"))]
    check("RBAC: no wildcard in the controller's rules", not wild, str(wild))
    wide = [r for scope, r in granted if scope is None and "secrets" in (r.get("resources") or [])]
    check("RBAC: no cluster-wide access to Secrets for the controller", not wide, str(wide))
    node_extra = [r for _, r in rbac.rules_of(t.NAMESPACE, nodeplugin_sa)
                  if r != {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    check("RBAC: the node plugin's account gains nothing from the controller's roles", not node_extra, str(node_extra))
    return rbac, granted


def template_fields(value):
    return re.findall(r"\$\{([a-z.]+)(?:\[[^\]]*\])?\}", value)


def check_secret_ref(t, where, kind, ref_name, ref_ns, templates, controller_side, granted, secrets):
    """One secret pair: complete, templates valid, the Secret reachable and free of admin keys."""
    check = t.check
    ok = bool(ref_name) and bool(ref_ns)
    check(f"{where}: {kind}-secret has both name and namespace", ok, f"name {ref_name!r}, namespace {ref_ns!r}")
    if not ok:
        return
    for field, value, pattern in (("name", ref_name, DNS_NAME), ("namespace", ref_ns, DNS_LABEL)):
        used = template_fields(value)
        bad = [u for u in used if u not in templates[field]]
        literal = re.sub(r"\$\{[^}]*\}", "x", value)
        check(f"{where}: {kind}-secret-{field} uses only templates the sidecar resolves",
              not bad and pattern.fullmatch(literal.lower() if used else literal) is not None,
              f"{value!r}: not allowed {bad}, allowed {sorted(templates[field])}")
    templated = bool(template_fields(ref_name) or template_fields(ref_ns))
    if controller_side:
        check(f"{where}: the controller may `get` its {kind}-secret {ref_ns}/{ref_name} (and no template needs more)",
              not templated and Rbac.allows(granted, "", "secrets", "get", ref_ns, ref_name), f"{ref_ns}/{ref_name}")
    if not templated:
        sec = secrets.get((ref_ns, ref_name))
        data = dict((sec or {}).get("data") or {}, **((sec or {}).get("stringData") or {}))
        check(f"{where}: the {kind}-secret {ref_ns}/{ref_name} is defined, with userID and userKey",
              sec is not None and {"userID", "userKey"} <= set(data), str(sorted(data)))


def check_no_admin_key(t, files, root):
    check, get = t.check, t.get
    for rel, docs in files.items():
        for d in docs:
            if not (isinstance(d, dict) and d.get("kind") == "Secret"):
                continue
            data = dict(d.get("data") or {}, **(d.get("stringData") or {}))
            user = str(data.get("userID", "")).removeprefix("client.")
            check(f"{rel} Secret/{get(d, 'metadata', 'name')}: not the admin user, no real key in the file",
                  user != "admin" and not any(CEPHX_KEY.search(str(v)) for v in data.values()), f"userID {user!r}")
    for rel in ("README.md", os.path.join("deploy", "kubernetes", "README.md")):
        path = os.path.join(root, rel)
        text = open(path).read() if os.path.exists(path) else ""
        m = re.search(r"^#+ A dynamic volume.*?(?=^#+ (?!\d)|\Z)", text, re.S | re.M)
        walk = m.group(0) if m else ""
        check(f"{rel}: the dynamic walk-through creates client.kube and uses no admin key",
              "ceph auth get-or-create client.kube mon 'profile rbd' osd 'profile rbd pool=kube'" in walk
              and not re.search(r"client\.admin|userID: admin|admin\.keyring", walk), f"{len(walk)} chars")


def check_classes(t, files, driver_name, cluster_ids, root, granted):
    check, get = t.check, t.get
    keys, features, readme = controller_readme(root)
    if not check("csi/controller/README.md: the StorageClass parameter table parses (pool, clusterID, imageFeatures)",
                 keys is not None and {"pool", "clusterID", "imageFeatures"} <= keys and len(features) >= 5,
                 f"keys {sorted(keys or [])}, features {features}"):
        keys, features = keys or set(), features or []
    secrets = {(get(d, "metadata", "namespace"), get(d, "metadata", "name")): d for _, d in t.find("Secret", files)}
    classes = t.find("StorageClass", files)
    check("examples: a StorageClass in examples/storageclass.yaml",
          any(r == os.path.join("examples", "storageclass.yaml") for r, _ in classes), str([r for r, _ in classes]))
    sc_by_name = {}
    for rel, sc in classes:
        name = get(sc, "metadata", "name")
        where = f"StorageClass {name}"
        sc_by_name[name] = sc
        bad = t.unknown_keys(sc, "storageClass")
        check(f"{where}: fields are known, apiVersion storage.k8s.io/v1",
              not bad and sc.get("apiVersion") == "storage.k8s.io/v1", str(bad))
        check(f"{where}: provisioner is the CSIDriver name", sc.get("provisioner") == driver_name,
              repr(sc.get("provisioner")))
        params = sc.get("parameters") or {}
        nonstr = [k for k, v in params.items() if not isinstance(v, str)]
        check(f"{where}: every parameter value is a string", not nonstr, str(nonstr))
        own = {k for k in params if not k.startswith("csi.storage.k8s.io/")}
        check(f"{where}: every parameter is one csi/controller/README.md documents", own <= keys,
              f"unknown: {sorted(own - keys)}")
        reserved = {k for k in params if k.startswith("csi.storage.k8s.io/")}
        check(f"{where}: every csi.storage.k8s.io/ key is one the external-provisioner knows", reserved <= SC_RESERVED,
              f"unknown: {sorted(reserved - SC_RESERVED)}")
        check(f"{where}: pool set, clusterID one of the ConfigMap's",
              bool(params.get("pool")) and params.get("clusterID") in cluster_ids,
              f"pool {params.get('pool')!r}, clusterID {params.get('clusterID')!r} vs {sorted(cluster_ids)}")
        listed = [f.strip() for f in str(params.get("imageFeatures", "")).split(",") if f.strip()]
        check(f"{where}: imageFeatures lists every feature, journaling included", sorted(listed) == sorted(features)
              and "journaling" in listed, f"{listed} vs {features}")
        check(f"{where}: allowVolumeExpansion true (the controller has EXPAND_VOLUME)",
              sc.get("allowVolumeExpansion") is True, repr(sc.get("allowVolumeExpansion")))
        for kind, controller_side in SECRET_KINDS_SC.items():
            n = params.get(f"csi.storage.k8s.io/{kind}-secret-name")
            ns = params.get(f"csi.storage.k8s.io/{kind}-secret-namespace")
            if n is None and ns is None and kind not in REQUIRED_SC_SECRETS:
                continue
            check_secret_ref(t, where, kind, n, ns, SC_TEMPLATES, controller_side, granted, secrets)

    vscs = t.find("VolumeSnapshotClass", files)
    check("examples: a VolumeSnapshotClass in examples/volumesnapshotclass.yaml",
          any(r == os.path.join("examples", "volumesnapshotclass.yaml") for r, _ in vscs), str([r for r, _ in vscs]))
    quiesce_doc = re.search(r"^## Quiesce.*?(?=^## |\Z)", readme, re.S | re.M)
    vsc_by_name = {}
    for rel, vsc in vscs:
        where = f"VolumeSnapshotClass {get(vsc, 'metadata', 'name')}"
        vsc_by_name[get(vsc, "metadata", "name")] = vsc
        bad = t.unknown_keys(vsc, "volumeSnapshotClass")
        check(f"{where}: fields are known, apiVersion snapshot.storage.k8s.io/v1",
              not bad and vsc.get("apiVersion") == "snapshot.storage.k8s.io/v1", str(bad))
        check(f"{where}: driver is the CSIDriver name", vsc.get("driver") == driver_name, repr(vsc.get("driver")))
        check(f"{where}: deletionPolicy Delete or Retain", vsc.get("deletionPolicy") in ("Delete", "Retain"),
              repr(vsc.get("deletionPolicy")))
        params = vsc.get("parameters") or {}
        allowed = {"quiesce"} | {f"csi.storage.k8s.io/{k}-secret-{f}" for k in VSC_SECRET_KINDS for f in ("name", "namespace")}
        check(f"{where}: parameters are quiesce and the snapshotter secrets only", set(params) <= allowed,
              f"unknown: {sorted(set(params) - allowed)}")
        q = params.get("quiesce", "best-effort")
        check(f"{where}: quiesce is one csi/controller/README.md documents",
              q in QUIESCE and quiesce_doc is not None and f"`{q}`" in quiesce_doc.group(0), repr(q))
        for kind in VSC_SECRET_KINDS:
            n = params.get(f"csi.storage.k8s.io/{kind}-secret-name")
            ns = params.get(f"csi.storage.k8s.io/{kind}-secret-namespace")
            if n is None and ns is None and kind != "snapshotter":
                continue
            check_secret_ref(t, where, kind, n, ns, VSC_TEMPLATES, True, granted, secrets)
    return sc_by_name, vsc_by_name


def storage_of(pvc):
    v = str((((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", ""))
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", v)
    return None if not m else int(m.group(1)) << {"": 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40}[m.group(2) or ""]


def check_dynamic_examples(t, files, driver_name, sc_by_name, vsc_by_name):
    check, get = t.check, t.get
    pvcs = {(get(d, "metadata", "namespace", default="default"), get(d, "metadata", "name")): d
            for _, d in t.find("PersistentVolumeClaim", files)}
    for example, restored in (("examples/dynamic-pvc.yaml", False), ("examples/pvc-from-snapshot.yaml", True)):
        docs = files.get(example.replace("/", os.sep))
        if not check(f"{example}: exists", docs is not None):
            continue
        ex = {example: docs}
        claims, pods = t.find("PersistentVolumeClaim", ex), t.find("Pod", ex)
        if not check(f"{example}: one PVC, one Pod", len(claims) == len(pods) == 1):
            continue
        pvc, pod = claims[0][1], pods[0][1]
        ns = get(pvc, "metadata", "namespace", default="default")
        bad = t.unknown_keys(pvc.get("spec"), "pvcSpec")
        check(f"{example}: PVC fields are known", not bad, str(bad))
        sc = sc_by_name.get(get(pvc, "spec", "storageClassName"))
        check(f"{example}: PVC names a StorageClass of this driver, and no volumeName (dynamic)",
              sc is not None and sc.get("provisioner") == driver_name and "volumeName" not in (pvc.get("spec") or {}),
              repr(get(pvc, "spec", "storageClassName")))
        check(f"{example}: PVC requests a size", storage_of(pvc) is not None, repr(get(pvc, "spec", "resources")))
        pod_spec = pod.get("spec") or {}
        t.check_pod_spec(example, pod_spec)
        vols = {v.get("name") for v in pod_spec.get("volumes") or []
                if get(v, "persistentVolumeClaim", "claimName") == get(pvc, "metadata", "name")}
        uses = [m for c in pod_spec.get("containers") or [] for m in c.get("volumeMounts") or [] if m.get("name") in vols]
        check(f"{example}: Pod mounts the PVC, in the PVC's namespace",
              len(uses) == 1 and get(pod, "metadata", "namespace", default="default") == ns)
        if not restored:
            continue
        src = get(pvc, "spec", "dataSource", default={}) or {}
        snaps = {(get(d, "metadata", "namespace", default="default"), get(d, "metadata", "name")): d
                 for _, d in t.find("VolumeSnapshot", files)}
        snap = snaps.get((ns, src.get("name")))
        check(f"{example}: dataSource is a VolumeSnapshot of the examples, in the PVC's namespace",
              src.get("kind") == "VolumeSnapshot" and src.get("apiGroup") == "snapshot.storage.k8s.io"
              and snap is not None, str(src))
        if snap is None:
            continue
        vsc = vsc_by_name.get(get(snap, "spec", "volumeSnapshotClassName"))
        check("VolumeSnapshot: apiVersion snapshot.storage.k8s.io/v1, a VolumeSnapshotClass of this driver",
              snap.get("apiVersion") == "snapshot.storage.k8s.io/v1" and vsc is not None
              and vsc.get("driver") == driver_name, repr(get(snap, "spec", "volumeSnapshotClassName")))
        source = pvcs.get((ns, get(snap, "spec", "source", "persistentVolumeClaimName")))
        check("VolumeSnapshot: its source is the dynamic PVC, in its namespace",
              source is not None and source is not pvc and get(source, "spec", "storageClassName") in sc_by_name,
              repr(get(snap, "spec", "source")))
        if source is not None:
            check(f"{example}: the restored PVC is at least as large as the snapshot's source",
                  (storage_of(pvc) or 0) >= (storage_of(source) or 1 << 62), f"{storage_of(pvc)} vs {storage_of(source)}")


def run(t, files, base, driver_name, image, cluster_ids, root, nodeplugin_sa):
    _, granted = check_controller(t, files, base, driver_name, image, nodeplugin_sa)
    sc_by_name, vsc_by_name = check_classes(t, files, driver_name, cluster_ids, root, granted)
    check_dynamic_examples(t, files, driver_name, sc_by_name, vsc_by_name)
    check_no_admin_key(t, files, root)
