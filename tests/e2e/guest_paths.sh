# shellcheck shell=bash disable=SC2034
# tests/e2e/guest_paths.sh - sourced INSIDE the guest by lib.sh (and so by every scenario)
# and by batch.sh: the paths a scenario may leave state in, and the dev cluster's teardown.
# One list, so that batch.sh's clean slate between two scenarios of one guest removes
# exactly what the scenario libraries create.

E2E_WORK=/run/e2e                  # the scenario's scratch dir (lib.sh)
E2E_SOCK=/run/nbd.sock             # `rbd-nbdd serve` socket (lib.sh)
E2E_MNT=/mnt/e2e                   # the scenarios' mount point
E2E_DISK=/var/tmp/e2e-disk.img     # a file-backend disk image
E2E_BIN_DIR=/run/e2e-bin           # private copies of the binaries (lib.sh private_copy)
MAP_SOCK=/run/rbdnbdd.sock         # the daemon's control socket (lib_map.sh)
MAP_STATE=/run/rbdnbdd-state       # the daemon's state dir (lib_map.sh)
MAP_CLUSTER_DIR=/run/cluster       # the dev cluster (lib_map.sh; shared by a batch)
CSI_DIR=/run/csi                   # the CSI plugin's socket, config, secrets (lib_csi.sh)
CSI_STATE=/run/csi-state           # the CSI plugin's state dir (lib_csi.sh)
CSI_KUBELET=/var/lib/kubelet       # staging and target paths (lib_csi.sh)

# Per-scenario state: what a clean slate removes (the cluster and the binary copies stay).
E2E_SCENARIO_PATHS=("$E2E_WORK" "$E2E_SOCK" "$E2E_MNT" "$E2E_DISK" "$MAP_SOCK" "$MAP_STATE"
                    "$CSI_DIR" "$CSI_STATE" "$CSI_KUBELET")

# cluster_teardown LOG_DIR : keep the last 2000 lines of each of the dev cluster's logs in
# LOG_DIR/ceph-log, then wipe the cluster (bounded). Nothing to do without one.
cluster_teardown() {
  [ -d "$MAP_CLUSTER_DIR" ] || return 0
  # the host's cluster (lib_map.sh cluster_up): only the guest's copy of its conf goes;
  # run-all.sh keeps its logs' ends and wipes it
  if [ -n "${E2E_HOST_CLUSTER_DIR:-}" ]; then rm -rf "$MAP_CLUSTER_DIR"; return 0; fi
  if [ -d "$MAP_CLUSTER_DIR/log" ]; then
    mkdir -p "$1/ceph-log"
    local f
    for f in "$MAP_CLUSTER_DIR"/log/*; do
      [ -f "$f" ] && tail -n 2000 "$f" > "$1/ceph-log/${f##*/}"
    done
  fi
  timeout -k 10 60 bash "$(dirname "${BASH_SOURCE[0]}")/../../deploy/dev-cluster.sh" wipe "$MAP_CLUSTER_DIR" \
    > /dev/null 2>&1
}
