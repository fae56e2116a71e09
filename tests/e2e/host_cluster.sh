# shellcheck shell=bash
# tests/e2e/host_cluster.sh - sourced by run-all.sh (on the host): the dev cluster of one
# guest (a batch's, or a lone scenario's) on the HOST, as a node's external Ceph cluster is,
# instead of inside the guest.
#
# Why: inside a guest the mon and the OSD run emulated (every UML syscall is a ptrace round
# trip, every 6.12 instruction TCG's): a cluster start took 20-55 s in UML and 12-31 s in
# the 6.12 guest, and every I/O paid the OSD's emulated cost on top of the client's. On the
# host the same cluster starts in about a second.
#
# Isolation: the cluster runs in a network namespace made for this guest, with loopback and
# one tap device; the mon and the OSD bind to the tap's address (deploy/dev-cluster.sh
# DEV_CLUSTER_ADDR), and the guest (UML or qemu, run in that namespace) gets the tap as its
# eth0. Test traffic goes to that namespace only. Every namespace is the same private
# 10.214.0.0/24 (namespaces do not share addresses), so guests never reach each other's.
#
#   host_cluster_up ID OUT   # namespace e2e<ID>, tap e2e<ID>t (ID: [0-9a-z], <= 10 chars)
#   ... VM_NETNS=$HC_NETNS VM_TAP=$HC_TAP VM_GUEST_ADDR=$HC_GUEST_ADDR E2E_HOST_CLUSTER_DIR=$HC_DIR
#   host_cluster_down OUT
#
# host_cluster_up starts a fresh memstore cluster in a new /tmp/e2e-hc.XXXXXX (HC_DIR), its
# output in OUT/host-cluster.log, and returns non-zero (with everything undone) when it
# cannot. The guest's lib_map.sh cluster_up then uses it (E2E_HOST_CLUSTER_DIR: a guest-local
# copy of its conf and keyrings) instead of starting one. host_cluster_down keeps the end of
# the cluster's logs in OUT/ceph-log, wipes the cluster, kills whatever still runs in the
# namespace and deletes the namespace (its tap goes with it); it is safe to call twice, and
# after a failed or no host_cluster_up. Each host_cluster_up also appends "NETNS DIR" to
# HC_REGISTRY (a file run-all.sh names); host_cluster_sweep kills and removes whatever is
# left of every one listed there (run-all.sh's net, at its end and on an interrupt).

HC_HOST_ADDR=10.214.0.1
# shellcheck disable=SC2034  # read by run-all.sh
HC_GUEST_ADDR=10.214.0.2/24
HC_PORT=14200
HC_NETNS='' HC_TAP='' HC_DIR=''

host_cluster_up() {
  local id=$1 out=$2 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  HC_NETNS=e2e$id HC_TAP=e2e${id}t
  HC_DIR=$(mktemp -d /tmp/e2e-hc.XXXXXX) || { HC_DIR=; return 1; }
  [ -z "${HC_REGISTRY:-}" ] || echo "$HC_NETNS $HC_DIR" >> "$HC_REGISTRY"
  {
    echo "host cluster: namespace $HC_NETNS, tap $HC_TAP, mon $HC_HOST_ADDR:$HC_PORT, dir $HC_DIR"
    ip netns add "$HC_NETNS" &&
      ip -n "$HC_NETNS" link set lo up &&
      ip -n "$HC_NETNS" tuntap add dev "$HC_TAP" mode tap &&
      ip -n "$HC_NETNS" addr add "$HC_HOST_ADDR/24" dev "$HC_TAP" &&
      ip -n "$HC_NETNS" link set "$HC_TAP" up &&
      ip netns exec "$HC_NETNS" env RBDNBD_CLUSTER_DIR="$HC_DIR" DEV_CLUSTER_ADDR="$HC_HOST_ADDR" \
        DEV_CLUSTER_PORT="$HC_PORT" DEV_CLUSTER_TIMEOUT=120 DEV_CLUSTER_TRACE=1 \
        timeout -k 10 300 bash "$root/deploy/dev-cluster.sh" start "$HC_DIR"
  } >> "$out/host-cluster.log" 2>&1 < /dev/null && return 0
  echo "host cluster: could not be made (above)" >> "$out/host-cluster.log"
  host_cluster_down "$out"
  return 1
}

host_cluster_down() {
  local out=$1 root f
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  {
    if [ -n "$HC_DIR" ] && [ -d "$HC_DIR" ]; then
      if [ -d "$HC_DIR/log" ]; then
        mkdir -p "$out/ceph-log"
        for f in "$HC_DIR"/log/*; do [ -f "$f" ] && tail -n 2000 "$f" > "$out/ceph-log/${f##*/}"; done
      fi
      if [ -n "$HC_NETNS" ] && [ -f "$HC_DIR/cluster.env" ]; then
        ip netns exec "$HC_NETNS" timeout -k 10 60 bash "$root/deploy/dev-cluster.sh" wipe "$HC_DIR"
      fi
      rm -rf "$HC_DIR"
    fi
    [ -z "$HC_NETNS" ] || _hc_remove_netns "$HC_NETNS"
  } >> "$out/host-cluster.log" 2>&1 < /dev/null
  HC_NETNS='' HC_TAP='' HC_DIR=''
  return 0
}

# _hc_remove_netns NS : kills whatever still runs in namespace NS (a guest, a Ceph daemon:
# this guest's) and deletes it, with its tap; nothing when there is no such namespace.
_hc_remove_netns() {
  local p
  ip netns list 2>/dev/null | grep -qw "$1" || return 0
  for p in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$1"
}

host_cluster_sweep() {
  local ns dir
  [ -n "${HC_REGISTRY:-}" ] && [ -f "$HC_REGISTRY" ] || return 0
  while read -r ns dir; do
    _hc_remove_netns "$ns" 2>/dev/null
    case $dir in /tmp/e2e-hc.*) rm -rf "$dir" ;; esac
  done < "$HC_REGISTRY"
  return 0
}
