#!/bin/bash
# deploy/quickstart.sh - set up a fresh Debian 12 machine and run the main job.
#
#   deploy/quickstart.sh                 # install deps, build, run the demo (root, or sudo)
#   deploy/quickstart.sh --no-install    # skip apt (deps already there)
#
# The main job runs on the embedded default, the local dev Ceph cluster
# (deploy/dev-cluster.sh: 1 mon, 1 OSD, cephx, on 127.0.0.1):
#   1. start the dev cluster;
#   2. create an image with every feature, journaling included (krbd refuses it);
#   3. serve it with `rbd-nbdd serve --rbd` on a Unix socket; nbdinfo shows it;
#   4. real I/O: nbdcopy writes 256 MiB of random data, `rbd export` (straight from
#      Ceph, not through rbd-nbdd) must return the same checksum, and fio verifies
#      random 4k writes through the gateway;
#   5. SIGTERM: drain, flush, exit 0; the image is removed and the cluster wiped.
# --demo=memory runs the same without Ceph, on a memory export.
set -euo pipefail
# Root, or a user with sudo (the install needs root, and so do the dev cluster's defaults).
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "quickstart: needs root, and there is no sudo: run it as root" >&2; exit 2; }
  exec sudo --preserve-env=DEMO bash "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
DEMO=${DEMO:-rbd}
INSTALL=1
for a in "$@"; do
  case "$a" in
    --no-install) INSTALL=0 ;;
    --demo=*) DEMO=${a#*=} ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown argument $a" >&2; exit 2 ;;
  esac
done

# shellcheck source=../tests/lib/core.sh
. "$ROOT/tests/lib/core.sh"   # on_exit, start_ready, stop_checked: the test suite's own
say() { printf '\n==> %s\n' "$*"; }

if [ "$INSTALL" = 1 ]; then
  say "installing dependencies (deploy/install-deps.sh)"
  bash deploy/install-deps.sh </dev/null
fi

say "building (cmake + ninja, RelWithDebInfo, into build/)"
timeout 1800 cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
timeout 1800 ninja -C "$ROOT/build"
BIN="$ROOT/build/gateway/control/rbd-nbdd"

WORK=$(mktemp -d /tmp/rbdnbd-quickstart.XXXXXX)
DATA=$(mktemp -d /dev/shm/rbdnbd-quickstart.XXXXXX)
SERVER_PID=
on_exit 'rm -rf "$WORK" "$DATA"'

start() {  # start SERVE-ARGS... : rbd-nbdd serve on $WORK/nbd.sock, wait until it listens
  SOCK="$WORK/nbd.sock"
  echo "\$ rbd-nbdd serve --socket $SOCK $*"
  start_ready "rbd-nbdd serve" "$WORK/server.log" 30 test -S "$SOCK" -- "$BIN" serve --socket "$SOCK" "$@"
  SERVER_PID=$STARTED_PID
  on_exit "term_wait $SERVER_PID 30"
}

# same_sha256 LABEL_A FILE_A LABEL_B FILE_B : print both checksums; exit 1 unless equal.
same_sha256() {
  local a b
  a=$(sha256sum <"$2" | cut -d' ' -f1)
  b=$(sha256sum <"$4" | cut -d' ' -f1)
  printf '%-26s sha256 %s\n%-26s sha256 %s\n' "$1" "$a" "$3" "$b"
  [ "$a" = "$b" ] || { echo "MISMATCH"; exit 1; }
}

stop() {  # SIGTERM, wait (bounded), require exit code 0 and no crash in the log
  local pid=$SERVER_PID
  SERVER_PID=
  stop_checked "rbd-nbdd serve" "$pid" "$WORK/server.log" 60
}

demo_memory() {
  say "demo: a 1 GiB memory export over a Unix socket"
  start --export name=demo,backend=memory,size=1G
  URI="nbd+unix:///demo?socket=$SOCK"

  say "nbdinfo $URI"
  timeout 30 nbdinfo "$URI"

  say "nbdcopy: 256 MiB of random data in and back out"
  timeout 60 dd if=/dev/urandom of="$DATA/in" bs=1M count=256 iflag=fullblock status=none
  local t0=$SECONDS
  timeout 300 nbdcopy "$DATA/in" "$URI"
  timeout 300 nbdcopy "$URI" "$DATA/out"
  truncate -s 256M "$DATA/out"   # the export is 1 GiB; compare what was sent
  echo "both copies took $((SECONDS - t0)) s"
  same_sha256 "sent" "$DATA/in" "read back" "$DATA/out"

  say "SIGTERM: drain, flush, exit 0"
  stop
  echo "--- server log"
  cat "$WORK/server.log"
}

demo_rbd() {
  export RBDNBD_CLUSTER_DIR="$WORK/cluster" DEV_CLUSTER_PORT=${DEV_CLUSTER_PORT:-14500}
  say "starting the dev Ceph cluster (deploy/dev-cluster.sh start)"
  on_exit 'bash deploy/dev-cluster.sh wipe "$RBDNBD_CLUSTER_DIR" >/dev/null 2>&1'
  timeout 180 bash deploy/dev-cluster.sh start "$RBDNBD_CLUSTER_DIR"
  eval "$(bash deploy/dev-cluster.sh env "$RBDNBD_CLUSTER_DIR")"
  export CEPH_CONF
  local features=layering,exclusive-lock,object-map,fast-diff,deep-flatten,journaling
  say "rbd create --size 1G --image-feature $features rbd/demo"
  timeout 60 rbd create --size 1G --image-feature "$features" rbd/demo
  timeout 30 rbd info rbd/demo | grep -E "features|size"

  say "serving rbd/demo through librbd (no kernel RBD client, every feature works)"
  start --rbd rbd/demo -c "$CEPH_CONF" -k "$CEPH_KEYRING"
  URI="nbd+unix:///rbd/demo?socket=$SOCK"
  timeout 30 nbdinfo "$URI"

  say "nbdcopy: 256 MiB of random data through rbd-nbdd, then 'rbd export' straight from Ceph"
  timeout 60 dd if=/dev/urandom of="$DATA/in" bs=1M count=256 iflag=fullblock status=none
  local t0=$SECONDS
  timeout 300 nbdcopy --flush "$DATA/in" "$URI"
  echo "written in $((SECONDS - t0)) s"
  say "fio: 4k random writes with crc32c verification through rbd-nbdd"
  timeout 300 fio --name=verify --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
    --offset=512M --size=64M --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output-format=json --output="$WORK/fio.json" >/dev/null
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]
print("fio: %d write IOPS, %d errors, %d MiB verified" % (j["write"]["iops"], j["error"], j["read"]["io_bytes"] >> 20))' "$WORK/fio.json"
  say "SIGTERM: drain, flush, exit 0"
  stop
  timeout 300 rbd export --no-progress rbd/demo "$DATA/out" >/dev/null
  truncate -s 256M "$DATA/out"   # the image is 1 GiB; compare what nbdcopy wrote
  same_sha256 "written through rbd-nbdd" "$DATA/in" "rbd export (from Ceph)" "$DATA/out"
  echo "--- server log"
  cat "$WORK/server.log"
}


case "$DEMO" in
  rbd) demo_rbd ;;
  memory) demo_memory ;;
  *) echo "quickstart: unknown demo '$DEMO' (have: rbd, memory)" >&2; exit 2 ;;
esac
say "quickstart OK. Next: tests/run-all.sh"
