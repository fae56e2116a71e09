#!/bin/bash
# install-deps.sh - install every build, test and benchmark dependency of rbd-nbdd on
# Debian 12 (bookworm). Idempotent; safe to run again. Runs as root, or as a user with sudo.
#
#   deploy/install-deps.sh                  install what is missing, then check it all
#   deploy/install-deps.sh --list-missing   print what is missing, install nothing
#
# "Installed" means dpkg status "install ok installed" (deploy/lib/packages.sh), and a
# kubectl that already works is kept, whatever package it came from.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/packages.sh"
LIST_ONLY=0
case "${1:-}" in
  --list-missing) LIST_ONLY=1 ;;
  "") ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps: unknown argument $1" >&2; exit 2 ;;
esac
SUDO=
if [ "$(id -u)" != 0 ] && [ "$LIST_ONLY" = 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: needs root, and there is no sudo: run it as root" >&2; exit 2; }
  SUDO=sudo
fi
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
  # kernel end-to-end harness: user-mode Linux 6.1, and Debian's 6.12 kernel under qemu
  # TCG (tests/e2e/qemu/: the kernel itself is fetched with apt-get download, never
  # installed; its initramfs is busybox-static)
  user-mode-linux kmod iproute2 procps util-linux e2fsprogs xfsprogs
  qemu-system-x86 busybox-static
  # CSI tests
  python3-grpcio python3-protobuf python3-yaml jq
  # metrics tests (promtool check metrics, a real Prometheus server scraping the daemon)
  # and the benchmarks' PNG plots
  prometheus python3-matplotlib
  # kubectl (tests/deploy: kubectl kustomize): any working one; else kubernetes-client
  kubectl
)
mapfile -t missing < <(missing_packages "${PKGS[@]}")
if [ "$LIST_ONLY" = 1 ]; then
  [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
  exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all ${#PKGS[@]} packages present"; exit 0; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Verify: a package that dpkg unpacked and rolled back still exits apt-get 0 in some
# cases; trust only the status field.
mapfile -t still < <(missing_packages "${PKGS[@]}")
if [ ${#still[@]} -ne 0 ]; then
  echo "install-deps: still not installed after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: all ${#PKGS[@]} packages present"
