#!/bin/bash
# install-deps.sh - install every build, test and benchmark dependency of rbd-nbdd on
# Debian 12 (bookworm). Idempotent; safe to run again. Needs root (or sudo).
set -euo pipefail
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libgtest-dev libgmock-dev
  liburing-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libnl-3-dev libnl-genl-3-dev
  librbd-dev librados-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libssl-dev
  # NBD peers and clients used by tests and benchmarks
  libnbd-bin python3-libnbd nbdkit qemu-utils qemu-block-extra fio nbd-client
  # Ceph dev cluster (deploy/dev-cluster.sh) and the rbd-nbd / krbd peers
  ceph-mon ceph-osd ceph-common rbd-nbd uuid-runtime bc
  # librados/librbd for Python: dev-cluster.sh makes its pools with them, the e2e tests
  # their images (ceph-common pulls them in today; we use them directly, so name them)
  python3-rados python3-rbd
  # kernel end-to-end harness
  user-mode-linux kmod iproute2 procps util-linux e2fsprogs xfsprogs
  # CSI tests
  python3-grpcio python3-protobuf python3-yaml jq kubernetes-client
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all ${#PKGS[@]} packages present"; exit 0; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
