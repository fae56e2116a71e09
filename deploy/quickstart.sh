#!/bin/bash
# deploy/quickstart.sh - set up a fresh Debian 12 machine and run the main job.
#
#   sudo deploy/quickstart.sh            # install deps, build, run the demo
#   deploy/quickstart.sh --no-install    # skip apt (deps already there)
#
# The demo is the embedded default: `rbd-nbdd serve` with a 1 GiB memory export on a Unix
# socket; nbdinfo shows what it advertises; nbdcopy sends 256 MiB of random data in and
# reads it back, and the checksums must match; SIGTERM must stop it with exit code 0.
# (Planned: a demo against a local Ceph dev cluster with an RBD export. Add it as another
# demo_* function and a case below.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
DEMO=${DEMO:-memory}
INSTALL=1
for a in "$@"; do
  case "$a" in
    --no-install) INSTALL=0 ;;
    --demo=*) DEMO=${a#*=} ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown argument $a" >&2; exit 2 ;;
  esac
done

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
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT

start() {  # start SERVE-ARGS... : rbd-nbdd serve on $WORK/nbd.sock, wait until it listens
  SOCK="$WORK/nbd.sock"
  echo "\$ rbd-nbdd serve --socket $SOCK $*"
  "$BIN" serve --socket "$SOCK" "$@" >"$WORK/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 300); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; echo "server exited"; exit 1; }
    sleep 0.1
  done
  cat "$WORK/server.log"; echo "server socket did not appear"; exit 1
}

stop() {  # SIGTERM, wait (bounded), require exit code 0
  kill -TERM "$SERVER_PID"
  local rc=0
  timeout 60 tail --pid="$SERVER_PID" -f /dev/null || { echo "server did not stop"; exit 1; }
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=
  echo "server exited with code $rc after SIGTERM"
  [ "$rc" = 0 ] || { cat "$WORK/server.log"; exit 1; }
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
  local a b
  a=$(sha256sum <"$DATA/in" | cut -d' ' -f1)
  b=$(sha256sum <"$DATA/out" | cut -d' ' -f1)
  echo "sent      sha256 $a"
  echo "read back sha256 $b   ($((SECONDS - t0)) s for both copies)"
  [ "$a" = "$b" ] || { echo "MISMATCH"; exit 1; }

  say "SIGTERM: drain, flush, exit 0"
  stop
  echo "--- server log"
  cat "$WORK/server.log"
}

case "$DEMO" in
  memory) demo_memory ;;
  *) echo "quickstart: unknown demo '$DEMO' (have: memory)" >&2; exit 2 ;;
esac
say "quickstart OK. Next: sudo tests/run-all.sh"
