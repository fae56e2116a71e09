#!/usr/bin/python3
"""Self-check of test_manifests.py: every check must catch the breakage it exists for.

Each mutation copies deploy/kubernetes, deploy/rbd-nbdd.service, README.md, csi/README.md,
csi/controller/README.md and gateway/metrics/METRICS.md into a temporary tree, replaces one exact string (which must occur exactly once), runs
test_manifests.py --root TMP, and requires exit 1 with a FAIL line containing the
expected check name. A mutation the test does not catch is a failure here.
Prints one line per mutation and "N passed, N failed"; exit 0/1.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
K = "deploy/kubernetes/"
NP = K + "csi-nodeplugin.yaml"
DS = K + "rbd-nbdd-daemon.yaml"
PV = K + "examples/static-pv.yaml"
BLK = K + "examples/static-block.yaml"
UNIT = "deploy/rbd-nbdd.service"
RO = "readOnly: true"
CTL = K + "csi-controller.yaml"
CRB = K + "csi-controller-rbac.yaml"
SC = K + "examples/storageclass.yaml"
SCN = K + "examples/storageclass-per-namespace.yaml"
VSC = K + "examples/volumesnapshotclass.yaml"
SEC = K + "examples/kube-secret.yaml"
DYN = K + "examples/dynamic-pvc.yaml"
SNAP = K + "examples/volumesnapshot.yaml"
RST = K + "examples/pvc-from-snapshot.yaml"
CTL_DOC = "csi/controller/README.md"
METRICS_DOC = "gateway/metrics/METRICS.md"
DASH = K + "monitoring/grafana-dashboard.json"
PM = K + "monitoring/podmonitor.yaml"
K_README = K + "README.md"
# Copied into each tree besides deploy/kubernetes (a missing one fails test_manifests.py).
DOCS = ("README.md", "csi/README.md", CTL_DOC, METRICS_DOC)
# Shaped like a cephx key (AQ + 38 base64 characters + ==): no file may hold one.
FAKE_KEY = "AQ" + "B" * 38 + "=="

# (file, old, new, a substring of the FAIL line that must appear)
MUTATIONS = [
    (K + "csidriver.yaml", "  attachRequired: false", "  attachRequired: true", "attachRequired is the boolean false"),
    (K + "csidriver.yaml", "  attachRequired: false", '  attachRequired: "false"', "attachRequired is the boolean false"),
    (K + "csidriver.yaml", "name: rbd-nbdd.csi.ceph.io", "name: rbd.csi.ceph.com", "CSIDriver: name is"),
    (K + "csidriver.yaml", "  fsGroupPolicy: File", "  fsGroupPolicy: [File", "parses"),
    (K + "csidriver.yaml", "  fsGroupPolicy: File", "  fsGroupPolicy: None", "fsGroupPolicy File"),
    (K + "namespace.yaml", "  name: rbd-nbdd\n  labels", "  labels", "has apiVersion, kind, metadata.name"),
    (NP, "mountPropagation: Bidirectional", "mountPropagation: HostToContainer", "mountPropagation Bidirectional"),
    (NP, "mountPropagation: Bidirectional", "mountPropogation: Bidirectional", "fields valid"),
    (NP, "privileged: true", "privileged: false", "rbd-nbdd-csi is privileged"),
    (NP, "--kubelet-registration-path=/var/lib/kubelet/plugins/rbd-nbdd.csi.ceph.io/csi.sock",
     "--kubelet-registration-path=/var/lib/kubelet/plugins/rbd.csi.ceph.com/csi.sock", "--kubelet-registration-path"),
    (NP, "path: /var/lib/kubelet/plugins_registry", "path: /var/lib/kubelet/plugins-registry", "registration-dir"),
    (NP, "- --csi-address=/csi/csi.sock\n            - --kubelet", "- --csi-address=/csi/plugin.sock\n            - --kubelet",
     "registrar: --csi-address"),
    (NP, "- /run/rbd-nbdd/control.sock", "- /run/rbd-nbdd/ctl.sock", "--control-socket identical"),
    (NP, "path: /run/rbd-nbdd\n", "path: /run/rbd-nbdd-csi-run\n", "same hostPath as the daemon's"),
    (NP, "hostPath:\n            path: /var/lib/rbd-nbdd-csi\n            type: DirectoryOrCreate", "emptyDir: {}",
     "nodeplugin (state dir survives the pod)"),
    (NP, "path: /dev\n", "path: /host-dev\n", "nodeplugin: /dev is hostPath /dev"),
    (NP, "mountPath: /lib/modules\n              " + RO, "mountPath: /lib/modules", "nodeplugin: /lib/modules"),
    (NP, "path: /var/lib/kubelet/plugins/rbd-nbdd.csi.ceph.io\n            type: DirectoryOrCreate",
     "path: /var/lib/kubelet/plugins/rbd-nbdd.csi.ceph.io\n            type: DirectoryOrCreat", "valid type"),
    (NP, "- --driver-name\n            - rbd-nbdd.csi.ceph.io", "- --driver-name\n            - rbd.csi.ceph.com",
     "--driver-name equals"),
    (NP, "name: rbd-nbdd-csi-config", "name: rbd-csi-config", "--cluster-config"),
    (NP, "name: NODE_ID\n              valueFrom:\n                fieldRef:\n                  fieldPath: spec.nodeName",
     "name: NODE_ID\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name",
     "--node-id"),
    (NP, "--http-endpoint=:9812", "--http-endpoint=:9808", "livenessprobe sidecar"),
    (NP, "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.9.0",
     "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.8.0", "node-driver-registrar sidecar"),
    (NP, "hostNetwork: true", "hostNetwork: false", "nodeplugin: hostNetwork"),
    (DS, "type: OnDelete", "type: RollingUpdate", "updateStrategy OnDelete"),
    (DS, "hostPath:\n            path: /var/lib/rbd-nbdd\n            type: DirectoryOrCreate", "emptyDir: {}",
     "daemon (state dir survives the pod)"),
    (DS, "hostNetwork: true", "hostNetwork: false", "daemon: hostNetwork"),
    (DS, "hostPID: false", "hostPID: true", "hostPID"),
    (DS, "priorityClassName: system-node-critical", "priorityClassName: system-cluster-critical", "priorityClassName"),
    (DS, "mountPath: /lib/modules\n              " + RO, "mountPath: /lib/modules", "daemon: /lib/modules"),
    (DS, "path: /sys\n", "path: /host-sys\n", "daemon: /sys is hostPath"),
    (DS, "- rbd-nbdd\n            - daemon", "- rbd-nbdd-csi\n            - daemon", "exactly one DaemonSet runs `rbd-nbdd daemon`"),
    (DS, "imagePullPolicy: IfNotPresent", "imagePullPolicy: Always", "imagePullPolicy IfNotPresent"),
    (DS, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 5", "terminationGracePeriodSeconds"),
    (DS, "name: state\n              mountPath", "name: stat\n              mountPath", "names a volume"),
    (DS, "  nodeSelector:\n        kubernetes.io/os: linux", "  nodeSelector:\n        kubernetes.io/os: windows",
     "placed on the same nodes"),
    (PV, "driver: rbd-nbdd.csi.ceph.io", "driver: rbd.csi.ceph.com", "PV csi.driver"),
    (PV, "volumeHandle: pvc-static", "volumeHandle: pvc-other", "volumeHandle is the image name"),
    (PV, "      pool: kube", "      poolName: kube", "has clusterID, pool, imageName"),
    (PV, "      pool: kube", "      pool: kube\n      imageFeature: layering", "documented in csi/README.md"),
    (PV, "name: rbd-nbdd-csi-secret", "name: csi-rbd-secret", "nodeStageSecretRef"),
    (PV, "clusterID: ceph-cluster-1", "clusterID: ceph-cluster-2", "clusterID is one of the ConfigMap's"),
    (PV, '      staticVolume: "true"', "      staticVolume: true", "staticVolume is the string"),
    (PV, "fsType: ext4", "fsType: xfs", "fsType ext4"),
    (PV, 'storageClassName: ""\n  volumeName', "volumeName", "storageClassName"),
    (PV, "volumeName: rbd-nbdd-static", "volumeName: rbd-nbdd-other", "PVC volumeName is the PV"),
    (PV, "claimName: rbd-nbdd-static", "claimName: rbd-nbdd-other", "Pod uses the PVC"),
    (BLK, '  volumeMode: Block\n  storageClassName: ""\n  claimRef', '  volumeMode: Filesystem\n  storageClassName: ""\n  claimRef',
     "volumeMode Block"),
    (BLK, "volumeDevices:", "volumeMounts:", "fields valid"),
    (K + "secret.yaml", "  userKey:", "  key:", "has userID and userKey"),
    (K + "secret.yaml", "userID: kube", "userID: client.kube", "no 'client.' prefix"),
    (K + "configmap.yaml", '"monitors": [', '"mons": [', "config.json"),
    (K + "configmap.yaml", '"clusterID": "ceph-cluster-1",', '"clusterID": "ceph-cluster-1"', "config.json parses"),
    (K + "configmap.yaml", "namespace: rbd-nbdd", "namespace: default", "namespace rbd-nbdd"),
    (K + "kustomization.yaml", "  - secret.yaml\n", "  - secrets.yaml\n", "every resource exists"),
    (K + "kustomization.yaml", "  - csidriver.yaml\n", "", "lists every base manifest"),
    (K + "rbac.yaml", 'resources: ["nodes"]', 'resources: ["nodes", "secrets"]', "only `get nodes`"),
    (K + "rbac.yaml", "    name: rbd-nbdd-csi-nodeplugin\n    namespace: rbd-nbdd",
     "    name: default\n    namespace: rbd-nbdd", "bound to the ClusterRole"),
    (UNIT, "KillMode=process", "KillMode=none", "KillMode"),
    (UNIT, "KillSignal=SIGTERM", "KillSignal=SIGKILL", "KillSignal"),
    (UNIT, "bin/rbd-nbdd daemon", "bin/rbd-nbdd serve", "ExecStart"),
    (UNIT, "--state-dir /var/lib/rbd-nbdd", "--state-dir /var/lib/rbd-nbdd2", "same control socket and state dir"),
    (UNIT, "Restart=always", "Restart=no", "Restart=always"),
    # --- the controller Deployment ---
    (CTL, "  replicas: 2", "  replicas: 1", "replicas 2"),
    (CTL, "- --leader-election\n            # CreateVolume", "# CreateVolume", "csi-provisioner: --leader-election"),
    (CTL, "- --leader-election\n            - --timeout=150s", "- --leader-election=false\n            - --timeout=150s",
     "csi-resizer: --leader-election"),
    (CTL, "csi-snapshotter:v8.2.0", "csi-snapshotter:latest", "image pinned"),
    (CTL, "csi-provisioner:v5.2.0", "csi-provisioner:v3.6.0", "csi-provisioner sidecar, v5.0.0 or later"),
    (CTL, "            - --extra-create-metadata\n", "", "--extra-create-metadata"),
    (CTL, "- --driver-name\n            - rbd-nbdd.csi.ceph.io", "- --driver-name\n            - rbd.csi.ceph.com",
     "controller: --driver-name equals"),
    (CTL, "- --csi-address=/csi/csi.sock\n            - --leader-election\n            - --timeout=150s",
     "- --csi-address=/csi/resizer.sock\n            - --leader-election\n            - --timeout=150s",
     "csi-resizer: --csi-address"),
    (CTL, "- unix:///csi/csi.sock", "- unix:///csi/ctl.sock", "--endpoint unix:///csi/csi.sock"),
    (CTL, "- name: socket-dir\n          emptyDir: {}",
     "- name: socket-dir\n          hostPath:\n            path: /var/lib/rbd-nbdd-ctl\n            type: DirectoryOrCreate",
     "socket dir is an emptyDir"),
    (CTL, "privileged: false", "privileged: true", "no container privileged"),
    (CTL, "image: rbd-nbdd:0.1.0", "image: rbd-nbdd:0.2.0", "controller: image rbd-nbdd:0.1.0"),
    (CTL, "serviceAccountName: rbd-nbdd-csi-controller", "serviceAccountName: rbd-nbdd-csi-nodeplugin",
     "a ServiceAccount of its own"),
    (CTL, "serviceAccountName: rbd-nbdd-csi-controller",
     "serviceAccountName: rbd-nbdd-csi-controller\n      hostNetwork: true", "no hostNetwork"),
    (CTL, "- /etc/rbd-nbdd-csi/config.json", "- /etc/rbd-nbdd-csi/clusters.json", "--cluster-config is a key"),
    (CTL, "- --timeout=150s\n            - --retry", "- --timeout=15s\n            - --retry", "csi-provisioner: --timeout"),
    (CTL, "--http-endpoint=:9808", "--http-endpoint=:9809", "livenessprobe sidecar serves the probed port"),
    # --- its RBAC ---
    (CRB, 'verbs: ["get", "list", "watch", "create", "patch", "delete"]', 'verbs: ["get", "list", "watch", "patch", "delete"]',
     "what csi-provisioner needs"),
    (CRB, 'resources: ["volumesnapshotcontents/status"]', 'resources: ["volumesnapshotcontent/status"]',
     "what csi-snapshotter needs"),
    (CRB, 'resources: ["persistentvolumeclaims/status"]\n    verbs: ["patch"]',
     'resources: ["persistentvolumeclaims/status"]\n    verbs: ["update"]', "what csi-resizer needs"),
    (CRB, 'resources: ["leases"]', 'resources: ["endpoints"]', "leader election: leases"),
    (CRB, 'resources: ["storageclasses"]', 'resources: ["storageclasses", "secrets"]', "no cluster-wide access to Secrets"),
    (CRB, 'resources: ["pods"]', 'resources: ["*"]', "no wildcard"),
    (CRB, "  kind: ClusterRole\n  name: rbd-nbdd-csi-resizer\n  apiGroup",
     "  kind: ClusterRole\n  name: rbd-nbdd-csi-resizr\n  apiGroup", "what csi-resizer needs"),
    (CRB, "    name: rbd-nbdd-csi-controller\n    namespace: rbd-nbdd\nroleRef:\n  kind: ClusterRole\n  name: rbd-nbdd-csi-snapshotter",
     "    name: rbd-nbdd-csi-nodeplugin\n    namespace: rbd-nbdd\nroleRef:\n  kind: ClusterRole\n  name: rbd-nbdd-csi-snapshotter",
     "node plugin's account gains nothing"),
    (K + "kustomization.yaml", "  - csi-controller.yaml\n", "", "lists every base manifest"),
    # --- StorageClasses, VolumeSnapshotClass, the Secret ---
    (SC, "provisioner: rbd-nbdd.csi.ceph.io", "provisioner: rbd.csi.ceph.com",
     "StorageClass rbd-nbdd: provisioner is the CSIDriver name"),
    (SC, "  csi.storage.k8s.io/provisioner-secret-namespace: rbd-nbdd-secrets\n", "",
     "provisioner-secret has both name and namespace"),
    (SC, "  csi.storage.k8s.io/node-stage-secret-namespace: rbd-nbdd-secrets\n", "",
     "node-stage-secret has both name and namespace"),
    (SC, "  pool: kube\n", '  pool: kube\n  imageFormat: "2"\n', "every parameter is one csi/controller/README.md documents"),
    (SC, "csi.storage.k8s.io/fstype: ext4", "csi.storage.k8s.io/fs-type: ext4", "one the external-provisioner knows"),
    (SC, ",deep-flatten,journaling", ",deep-flatten", "imageFeatures lists every feature"),
    (SC, "clusterID: ceph-cluster-1", "clusterID: ceph-cluster-2", "clusterID one of the ConfigMap's"),
    (SC, "controller-expand-secret-namespace: rbd-nbdd-secrets", "controller-expand-secret-namespace: default",
     "the controller may `get` its controller-expand-secret"),
    (SC, "provisioner-secret-namespace: rbd-nbdd-secrets", "provisioner-secret-namespace: ${pvc.namespace}",
     "the controller may `get` its provisioner-secret"),
    (SC, "allowVolumeExpansion: true", "allowVolumeExpansion: false", "allowVolumeExpansion true"),
    (SCN, "csi.storage.k8s.io/node-stage-secret-namespace: ${pvc.namespace}",
     "csi.storage.k8s.io/node-stage-secret-namespace: ${pvc.name}",
     "node-stage-secret-namespace uses only templates"),
    (SCN, "node-stage-secret-name: rbd-nbdd-node", "node-stage-secret-name: ${pvc.uid}",
     "node-stage-secret-name uses only templates"),
    (VSC, "driver: rbd-nbdd.csi.ceph.io", "driver: rbd.csi.ceph.com", "VolumeSnapshotClass rbd-nbdd: driver is"),
    (VSC, "  csi.storage.k8s.io/snapshotter-secret-namespace: rbd-nbdd-secrets\n", "",
     "snapshotter-secret has both name and namespace"),
    (VSC, "quiesce: best-effort", "quiesce: always", "quiesce is one"),
    (VSC, "quiesce: best-effort", "quiesce: best-effort\n  consistency: fs", "quiesce and the snapshotter secrets only"),
    (VSC, "  csi.storage.k8s.io/snapshotter-list-secret-name: rbd-nbdd-kube\n", "",
     "snapshotter-list-secret has both name and namespace"),
    (VSC, "csi.storage.k8s.io/snapshotter-secret-name: rbd-nbdd-kube", "csi.storage.k8s.io/snapshotter-secret-name: rbd-nbdd-admin",
     "the controller may `get` its snapshotter-secret"),
    (SEC, "userID: kube", "userID: admin", "not the admin user"),
    (SEC, 'userKey: "<output of: ceph auth get-key client.kube>"', f'userKey: "{FAKE_KEY}"', "no real key in the file"),
    (SEC, 'resourceNames: ["rbd-nbdd-kube"]', 'resourceNames: ["rbd-nbdd-other"]',
     "the controller may `get` its provisioner-secret"),
    (SEC, 'verbs: ["get"]', 'verbs: ["list"]', "the controller may `get` its provisioner-secret"),
    (SEC, "    name: rbd-nbdd-csi-controller\n    namespace: rbd-nbdd", "    name: default\n    namespace: rbd-nbdd",
     "may `get` its"),
    # --- the dynamic examples ---
    (DYN, "storageClassName: rbd-nbdd", "storageClassName: rbd-nbd", "PVC names a StorageClass of this driver"),
    (DYN, "claimName: rbd-nbdd-dynamic", "claimName: rbd-nbdd-other", "Pod mounts the PVC"),
    (SNAP, "persistentVolumeClaimName: rbd-nbdd-dynamic", "persistentVolumeClaimName: rbd-nbdd-gone",
     "VolumeSnapshot: its source"),
    (SNAP, "volumeSnapshotClassName: rbd-nbdd", "volumeSnapshotClassName: csi-rbdplugin-snapclass",
     "a VolumeSnapshotClass of this driver"),
    (RST, "    kind: VolumeSnapshot", "    kind: PersistentVolumeClaim", "dataSource is a VolumeSnapshot"),
    (RST, "      storage: 1Gi", "      storage: 512Mi", "at least as large"),
    # --- metrics and probes of the three workloads ---
    (DS, "- $(POD_IP):9480", "- $(POD_IP):9481", "daemon: --metrics-address HOST:PORT on the port METRICS.md"),
    (DS, "- $(POD_IP):9480", "- 127.0.0.1:9480", "daemon: --metrics-address reachable"),
    (DS, "fieldPath: status.podIP", "fieldPath: metadata.name", "daemon: --metrics-address reachable"),
    (DS, 'prometheus.io/port: "9480"', 'prometheus.io/port: "9481"', "daemon: annotations prometheus.io/scrape"),
    (DS, "- name: metrics\n              containerPort: 9480", "- name: metrics\n              containerPort: 9812",
     "no two containers use the same node port"),
    (DS, "path: /readyz", "path: /healthz", "daemon: readinessProbe is an httpGet on /readyz"),
    (DS, "timeoutSeconds: 10\n            failureThreshold: 10", "timeoutSeconds: 10\n            failureThreshold: 3",
     "daemon: liveness acts after >= 240 s"),
    (DS, "timeoutSeconds: 10\n            failureThreshold: 10", "timeoutSeconds: 3\n            failureThreshold: 10",
     "daemon: livenessProbe: timeoutSeconds > 5"),
    (DS, "failureThreshold: 30", "failureThreshold: 3", "5 min before liveness counts"),
    (DS, "path: /healthz\n              port: metrics\n            periodSeconds: 30",
     "path: /healthz\n              port: 9481\n            periodSeconds: 30",
     "daemon: livenessProbe is an httpGet on /healthz at a port of the container (9480)"),
    (NP, "- $(POD_IP):9482", "- $(POD_IP):9480", "nodeplugin: --metrics-address HOST:PORT on the port"),
    (NP, "containerPort: 9482", "containerPort: 9484", "nodeplugin: container port `metrics`"),
    (NP, "failureThreshold: 12", "failureThreshold: 3", "nodeplugin: liveness window outlasts the daemon's startup"),
    (NP, "--probe-timeout=8s", "--probe-timeout=20s", "nodeplugin: readinessProbe timeoutSeconds above"),
    (NP, "          readinessProbe:\n            httpGet:\n              path: /healthz\n              port: healthz\n"
         "            periodSeconds: 10\n            timeoutSeconds: 10\n            failureThreshold: 3\n", "",
     "nodeplugin: has a livenessProbe and a readinessProbe"),
    (CTL, 'prometheus.io/scrape: "true"', 'prometheus.io/scrape: "false"', "controller: annotations prometheus.io/scrape"),
    (CTL, "prometheus.io/path: /metrics", "prometheus.io/path: /stats", "controller: annotations prometheus.io/scrape"),
    (CTL, "            - --metrics-address\n            - $(POD_IP):9483\n", "",
     "controller: --metrics-address HOST:PORT"),
    (CTL, "          readinessProbe:\n            httpGet:\n              path: /healthz\n              port: healthz\n"
          "            periodSeconds: 10\n            timeoutSeconds: 5\n            failureThreshold: 3\n", "",
     "controller: has a livenessProbe and a readinessProbe"),
    # --- the PodMonitor and the monitoring kustomization ---
    (PM, "    - port: metrics", "    - port: http-metrics", "PodMonitor: scrapes the daemon pods' port 9480"),
    (PM, "          - rbd-nbdd-csi-controller\n", "", "PodMonitor: selects the controller pods"),
    (PM, "    matchNames:\n      - rbd-nbdd", "    matchNames:\n      - default", "PodMonitor: looks in namespace"),
    (PM, "apiVersion: monitoring.coreos.com/v1", "apiVersion: monitoring.coreos.com/v1alpha1", "one PodMonitor"),
    (PM, "scrapeTimeout: 10s", "scrapeTimeout: 2s", "scrapeTimeout <= interval"),
    (K + "kustomization.yaml", "  - csi-controller.yaml\n", "  - csi-controller.yaml\n  - monitoring/podmonitor.yaml\n",
     "base kustomization: nothing of monitoring/"),
    (K + "monitoring/kustomization.yaml", "      - grafana-dashboard.json", "      - dashboard.json",
     "monitoring/kustomization.yaml: the PodMonitor and the dashboard"),
    # --- the Grafana dashboard against METRICS.md ---
    (DASH, "rate(rbdnbd_device_bytes_total{", "rate(rbdnbd_device_byte_total{", "names only metrics of METRICS.md"),
    (DASH, "rbdnbd_device_inflight_requests{", "rbdnbd_device_inflight_requests_bucket{", "names only metrics of METRICS.md"),
    (DASH, "sum by (method, code) (", "sum by (method, errno) (", "filters and groups only by labels"),
    (DASH, 'rbdnbd_csi_rpcs_total{instance=~\\"$instance\\", code!=', 'rbdnbd_csi_rpcs_total{instance=~\\"$instance\\", errno!=',
     "filters and groups only by labels"),
    (DASH, "sum by (method, le) (", "sum by (method) (", "grouped by le"),
    (DASH, "> 0)\"", "> 0\"", "PromQL parses"),
    (DASH, '(rate(rbdnbd_device_stalled_seconds_total{instance=~\\"$instance\\", device=~\\"$device\\"}',
     '(rate(rbdnbd_device_stalled_seconds_total{instance=~\\"$instance\\", device=~\\"$dev\\"}',
     "uses only defined variables"),
    (DASH, "(rate(rbdnbd_device_stalled_seconds_total{", "(rate(rbdnbd_device_reattaches_total{", "covers IOPS"),
    (DASH, '"id": 26,', '"id": 25,', "unique"),
    (DASH, '"uid": "rbd-nbdd",', '"uid": "rbd-nbdd"', "valid JSON"),
    (DASH, '"query": "label_values(rbdnbd_uptime_seconds, instance)"', '"query": "label_values(rbdnbd_uptime, instance)"',
     "dashboard variable instance: label_values of a contract metric"),
    (METRICS_DOC, "| rbdnbd_device_reattaches_total |", "| rbdnbd_device_reattach_total |",
     "names only metrics of METRICS.md"),
    (METRICS_DOC, "| rbdnbd_csi_rpcs_total | counter | method, code |", "| rbdnbd_csi_rpcs_total | counter | method |",
     "filters and groups only by labels"),
    (K_README, "## Monitoring", "## Metrics", "a Monitoring section"),
] + ([
    # Balanced brackets, names and labels all fine, but not PromQL: only promtool sees it.
    (DASH, "histogram_quantile(0.99, sum by (method, le) (", "histogram_quantile(0.99, sum by (method, le) + (",
     "promtool check rules parses"),
] if shutil.which("promtool") else []) + [
    # --- the documents the checks read ---
    ("README.md", "then `ceph auth get-key client.kube`.", "then `ceph auth get-key client.admin`.",
     "README.md: the dynamic walk-through"),
    (CTL_DOC, "deep-flatten and journaling;", "deep-flatten;", "imageFeatures lists every feature"),
]


def run_one(tmp, i, rel, old, new, expect):
    """Breaks one copy of the tree and runs the checks on it: (caught, line to print)."""
    tree = os.path.join(tmp, str(i))
    shutil.copytree(os.path.join(ROOT, "deploy", "kubernetes"), os.path.join(tree, "deploy", "kubernetes"))
    shutil.copy(os.path.join(ROOT, UNIT), os.path.join(tree, UNIT))
    for doc in DOCS:
        if os.path.exists(os.path.join(ROOT, doc)):  # else test_manifests.py fails on it
            os.makedirs(os.path.dirname(os.path.join(tree, doc)), exist_ok=True)
            shutil.copy(os.path.join(ROOT, doc), os.path.join(tree, doc))
    path = os.path.join(tree, rel)
    text = open(path).read()
    label = f"{rel}: {old.splitlines()[0]!r} -> {new.splitlines()[0] if new else '(removed)'!r}"
    try:
        if text.count(old) != 1:
            return False, f"FAIL - {label}: the original text occurs {text.count(old)} times (stale mutation)"
        with open(path, "w") as f:
            f.write(text.replace(old, new))
        r = subprocess.run([sys.executable, os.path.join(HERE, "test_manifests.py"), "--root", tree, "--quiet"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, RBD_NBDD_TEST_NO_KUBECTL="1"))
        fails = [l for l in r.stdout.splitlines() if l.startswith("FAIL")]
        if r.returncode == 1 and any(expect in l for l in fails):
            return True, f"ok   - caught: {label}"
        return False, (f"FAIL - not caught: {label} (rc {r.returncode}, expected a FAIL with {expect!r}; "
                       f"got {fails[:3]})")
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main():
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="rbd-nbdd-deploy-test.")
    try:
        # Each mutation has its own tree: run them a core each (the checks are CPU-bound
        # Python and promtool), print in the table's order.
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = [pool.submit(run_one, tmp, i, *m) for i, m in enumerate(MUTATIONS, 1)]
            for f in futures:
                caught, line = f.result()
                print(line)
                if caught:
                    passed += 1
                else:
                    failed += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
