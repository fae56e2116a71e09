#!/bin/bash
# bench/metrics-scrape-devices-guest.sh - the guest half of bench/metrics-scrape-devices.sh;
# runs INSIDE a user-mode Linux guest (tests/e2e/uml/run.sh), never on the host.
#
# One `rbd-nbdd daemon --metrics-address` with MS_DEVICES RBD images of a memstore dev
# cluster mapped as real /dev/nbdX (nbd driver of the guest's kernel). Every device gets a
# write, a read, a flush and a discard (one process, O_DIRECT), so each has samples in the
# op families it would have in use. MS_SCRAPES sequential GETs of /metrics with no device
# mapped, then the same with all of them mapped. Raw results go to MS_RAW (a host dir):
#   scrapes-<N>.times (seconds per GET, curl's time_total), scrapes-<N>.render (the daemon's
#   own collect-and-render seconds of each, rbdnbd_metrics_render_seconds),
#   scrapes-<N>.body (the last body), env, rss-<N> (the daemon's VmRSS in kB).
. "$(dirname "$0")/../tests/e2e/lib.sh"
. "$(dirname "$0")/../tests/e2e/lib_map.sh"
require_cmd curl

N=${MS_DEVICES:-64}
SCRAPES=${MS_SCRAPES:-50}
RAW=${MS_RAW:?MS_RAW: the host directory for the raw results}
SIZE=$((16 << 20))
PORT=19480
URL=http://127.0.0.1:$PORT/metrics

# scrapes LABEL : SCRAPES sequential GETs; their times to RAW/scrapes-LABEL.times, and the
# daemon's own time for each (rbdnbd_metrics_render_seconds: collect and render, read from
# the next GET's body; near the top, so builtins find it) to RAW/scrapes-LABEL.render.
scrapes() {
  local i line out=$RAW/scrapes-$1
  : > "$out.times"
  : > "$out.render"
  for ((i = 0; i <= SCRAPES; i++)); do
    t 30 curl -fsS -o "$out.body" -w '%{time_total}\n' "$URL" >> "$out.times.all" || fail "GET /metrics failed"
    [ "$i" = 0 ] && continue   # the first GET's render time shows in the second's body
    while IFS= read -r line; do
      case $line in "rbdnbd_metrics_render_seconds "*) echo "${line#* }" >> "$out.render"; break ;; esac
    done < "$out.body"
  done
  tail -n "$SCRAPES" "$out.times.all" > "$out.times"   # the last SCRAPES GETs
  rm -f "$out.times.all"
  local rss
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
  echo "$rss" > "$RAW/rss-$1"
  log "$SCRAPES scrapes with $1 devices mapped: body $(stat -c %s "$out.body") bytes, daemon VmRSS $rss kB"
}

{
  echo "devices=$N"
  echo "scrapes=$SCRAPES"
  echo "kernel=$(uname -r)"
  echo "cpus=$(nproc)"
} > "$RAW/env"

cluster_up
start_daemon --nbds_max "$N" --metrics-address "127.0.0.1:$PORT" --log-level info
scrapes 0

step "create and map $N images, 16 map requests at a time"
mapfile -t SPECS < <(for ((i = 0; i < N; i++)); do echo "rbd/scrape$i"; done)
rbd_create_many "$SIZE" "${SPECS[@]}" || fail "creating the $N images failed"
DEVS=()
for ((base = 0; base < N; base += 16)); do
  pids=()
  for ((i = base; i < base + 16 && i < N; i++)); do
    ( t 300 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" \
        "${SPECS[i]}" > "$E2E_WORK/map.$i.out" 2> "$E2E_WORK/map.$i.err" ) &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  for ((i = base; i < base + 16 && i < N; i++)); do
    dev=$(< "$E2E_WORK/map.$i.out")
    [[ "$dev" =~ ^/dev/nbd[0-9]+$ ]] || fail "map ${SPECS[i]} failed: $(< "$E2E_WORK/map.$i.err")"
    on_exit "_unmap_quiet $dev"
    DEVS+=("$dev")
  done
done
log "mapped ${#DEVS[@]} devices: ${DEVS[0]} .. ${DEVS[-1]}"

step "a write, a read, a flush and a discard on every device"
t 300 /usr/bin/python3 - "${DEVS[@]}" <<'PY' || fail "the I/O on the devices failed"
import fcntl, mmap, os, struct, sys
BLKDISCARD = 0x1277
buf = mmap.mmap(-1, 65536)            # page-aligned, as O_DIRECT wants
buf.write(b"\xa5" * 65536)
for dev in sys.argv[1:]:
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        assert os.pwritev(fd, [buf], 0) == 65536
        assert os.preadv(fd, [buf], 0) == 65536
        os.fsync(fd)
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", 1 << 20, 1 << 20))
    finally:
        os.close(fd)
PY
scrapes "$N"
grep -q "^rbdnbd_device_ops_total{device=\"${DEVS[-1]##*/}\"" "$RAW/scrapes-$N.body" \
  || fail "the last device has no ops_total series in the scrape"
pass
