# shellcheck shell=bash
# shellcheck disable=SC2034  # SERVER_PID/SERVER_LOG are read by lib.sh, MAPPED_* by scenarios
# tests/e2e/lib_map.sh - helpers for the map_*.sh scenarios: RBD images of the dev cluster
# mapped as /dev/nbdX by `rbd-nbdd daemon` + `rbd-nbdd map`, inside the UML guest.
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$(dirname "$0")/../lib_map.sh"
#   cluster_up                      # memstore dev cluster in /run/cluster, its env exported
#   start_daemon                    # rbd-nbdd daemon (it loads nbd itself), ready
#   rbd_ create --size 64M rbd/img
#   map_image $((64 << 20)) rbd/img # MAPPED_DEV=/dev/nbdN, unmapped at exit
#   ...
#   unmap_dev "$MAPPED_DEV"
#   stop_daemon                     # SIGTERM: exit 0, no crash in its log
#   pass
#
# The daemon runs without CEPH_CONF/CEPH_KEYRING/CEPH_ARGS in its environment, as a
# system service would: everything it knows about the cluster comes with each map request
# (-c, -k, --keyfile...). It is also SERVER_PID/SERVER_LOG for lib.sh, so a failing
# scenario prints the end of the daemon's log and run_fio notices a dead daemon.
#
# Teardown at exit (LIFO with the scenario's own hooks): every device the daemon still has
# is unmapped with --force, any nbd device left connected in the kernel is disconnected,
# the daemon gets SIGTERM, and the cluster is wiped (its logs kept in $E2E_WORK/ceph-log).
# Hooks never fail the scenario: the checks that count are made explicitly before `pass`
# (unmap_dev, stop_daemon, assert_no_nbd_connected).

private_copy "$RBDNBD_BIN" rbd-nbdd version
RBDNBD_BIN=$PRIVATE_COPY

MAP_CLUSTER_PORT=14200
DAEMON_PID=
DAEMON_LOG=
_DAEMON_N=0
MAPPED_DEV=
MAPPED_COOKIE=

# rbdnbdd SUBCOMMAND ARGS... : the CLI against this scenario's daemon (not bounded).
rbdnbdd() {
  local sub=$1
  shift
  "$RBDNBD_BIN" "$sub" --control-socket "$MAP_SOCK" "$@"
}

# ---------------------------------------------------------------------------------------
# The dev cluster
# ---------------------------------------------------------------------------------------
# cluster_up : start the memstore dev cluster (~12-20 s in the guest) and export its env:
# CEPH_CONF, CEPH_KEYRING (client.admin), CEPH_MON_HOST, KUBE_KEYRING (client.kube, caps
# profile rbd pool=kube).
# In a batch (tests/e2e/batch.sh sets E2E_BATCH=1) the first scenario starts the cluster
# and the others reuse it; batch.sh takes it down after the last one.
# With E2E_HOST_CLUSTER_DIR (run-all.sh: tests/e2e/host_cluster.sh), the cluster runs on the
# host instead, reached over the guest's eth0: cluster_up makes a guest-local copy of its
# conf (paths moved to $MAP_CLUSTER_DIR, so clients' admin sockets stay in the guest) and
# keyrings, its logs linked read-only, and starts nothing; the host takes it down.
cluster_up() {
  require_cmd ceph rbd ceph-mon ceph-osd jq
  local t0=$SECONDS
  local pidfile pid
  if [ -n "${E2E_HOST_CLUSTER_DIR:-}" ]; then
    if [ ! -f "$MAP_CLUSTER_DIR/e2e.env" ]; then
      local hc=$E2E_HOST_CLUSTER_DIR k
      [ -f "$hc/ceph.conf" ] && [ -f "$hc/keyring" ] || fail "the host's dev cluster has no conf or keyring in $hc"
      mkdir -p "$MAP_CLUSTER_DIR/run" || fail "cannot create $MAP_CLUSTER_DIR"
      sed "s#$hc#$MAP_CLUSTER_DIR#g" "$hc/ceph.conf" > "$MAP_CLUSTER_DIR/ceph.conf" || fail "cannot copy $hc/ceph.conf"
      for k in "$hc"/keyring "$hc"/*.keyring; do
        cp "$k" "$MAP_CLUSTER_DIR/" || fail "cannot copy $k"
      done
      ln -sfn "$hc/log" "$MAP_CLUSTER_DIR/log"
    fi
    _cluster_env
    log "dev cluster: the host's, in this guest's network namespace (mon $CEPH_MON_HOST)"
    return 0
  fi
  if [ -n "${E2E_BATCH:-}" ] && [ -f "$MAP_CLUSTER_DIR/e2e.env" ]; then
    # Builtins only (an exec costs ~0.5 s here): both daemons' pid files name live processes.
    for pidfile in "$MAP_CLUSTER_DIR"/run/{mon.a,osd.0}.pid; do
      read -r pid < "$pidfile" && kill -0 "$pid" 2>/dev/null \
        || fail "the batch's dev cluster is down (no live process for $pidfile)"
    done
    _cluster_env
    log "dev cluster: reusing the batch's (mon $CEPH_MON_HOST)"
    return 0
  fi
  step "dev cluster (memstore) in $MAP_CLUSTER_DIR"
  if ! RBDNBD_CLUSTER_DIR=$MAP_CLUSTER_DIR DEV_CLUSTER_PORT=$MAP_CLUSTER_PORT DEV_CLUSTER_TIMEOUT=120 DEV_CLUSTER_TRACE=1 \
       t 200 bash "$E2E_ROOT/deploy/dev-cluster.sh" start "$MAP_CLUSTER_DIR" \
       > "$E2E_WORK/cluster-start.log" 2>&1; then
    tail -n 30 "$E2E_WORK/cluster-start.log" >&2
    _cluster_down
    fail "the dev cluster did not start"
  fi
  [ -n "${E2E_BATCH:-}" ] || on_exit _cluster_down
  _cluster_env
  log "dev cluster up in $((SECONDS - t0))s (mon $CEPH_MON_HOST)"
}

_cluster_env() {
  [ -f "$MAP_CLUSTER_DIR/e2e.env" ] \
    || bash "$E2E_ROOT/deploy/dev-cluster.sh" env "$MAP_CLUSTER_DIR" > "$MAP_CLUSTER_DIR/e2e.env" \
    || fail "dev-cluster.sh env failed"
  . "$MAP_CLUSTER_DIR/e2e.env"
  KUBE_KEYRING=$MAP_CLUSTER_DIR/client.kube.keyring
  [ -f "$CEPH_CONF" ] && [ -f "$CEPH_KEYRING" ] && [ -f "$KUBE_KEYRING" ] \
    || fail "the dev cluster's conf or keyrings are missing in $MAP_CLUSTER_DIR"
}

_cluster_down() { cluster_teardown "$E2E_WORK"; }   # the logs' ends kept with the scenario's

# rbd_ ARGS... : the rbd CLI as client.admin, bounded.
rbd_() { t 120 rbd -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" "$@"; }

# rbd_create_many SIZE_BYTES POOL/IMAGE... : create the images (default features) in ONE
# process with librbd's Python bindings, as client.admin: an `rbd create` costs 0.7-2 s in
# the guest, one process with sixteen creates about as much as two.
rbd_create_many() {
  t 300 /usr/bin/python3 - "$CEPH_CONF" "$CEPH_KEYRING" "$@" <<'PY'
import sys
import rados, rbd
conf, keyring, size, specs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
with rados.Rados(conffile=conf, name="client.admin", conf={"keyring": keyring}) as c:
    for spec in specs:
        pool, image = spec.split("/", 1)
        with c.open_ioctx(pool) as io:
            rbd.RBD().create(io, image, size)
PY
}

# rbd_size SPEC : the image's (or snapshot's) size in bytes.
rbd_size() { rbd_ info --format json "$1" | jq -r .size; }

# ---------------------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------------------
# start_daemon [DAEMON_ARGS...] : `rbd-nbdd daemon` in the background, log in
# $E2E_WORK/daemon.N.log (DAEMON_LOG). Ready once `status` answers with its pid: the
# daemon reattaches the devices of its state file before it listens, so they are back too.
start_daemon() {
  [ -x "$RBDNBD_BIN" ] || fail "rbd-nbdd not found at $RBDNBD_BIN"
  if [ -n "$DAEMON_PID" ] && _alive "$DAEMON_PID"; then
    fail "start_daemon: a daemon is already running (pid $DAEMON_PID)"
  fi
  _DAEMON_N=$((_DAEMON_N + 1))
  [ "$_DAEMON_N" != 1 ] || on_exit _daemon_teardown
  DAEMON_LOG=$E2E_WORK/daemon.$_DAEMON_N.log
  log "starting: rbd-nbdd daemon --control-socket $MAP_SOCK --state-dir $MAP_STATE $*"
  local t0=$SECONDS
  start_ready "the daemon" "$DAEMON_LOG" 120 _daemon_ready \
    -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_ARGS -u CEPH_MON_HOST \
    "$RBDNBD_BIN" daemon --control-socket "$MAP_SOCK" --state-dir "$MAP_STATE" \
    --log-level "$E2E_LOG_LEVEL" "$@"
  DAEMON_PID=$STARTED_PID
  SERVER_PID=$DAEMON_PID SERVER_LOG=$DAEMON_LOG
  log "daemon ready (pid $DAEMON_PID) in $((SECONDS - t0))s"
}

# _daemon_ready : `status` answers with the pid of the daemon being started (STARTED_PID).
# Asked only once the socket exists (a builtin test; the status CLI loads librbd, which
# costs ~1 s in the guest). A stale socket of a killed daemon just fails the query.
_daemon_ready() {
  [ -S "$MAP_SOCK" ] || return 1
  local pid
  pid=$(timeout 10 "$RBDNBD_BIN" status --control-socket "$MAP_SOCK" --format json 2>/dev/null \
          | jq -r '.pid // empty' 2>/dev/null) || return 1
  [ "$pid" = "$STARTED_PID" ]
}

daemon_alive() { [ -n "$DAEMON_PID" ] && _alive "$DAEMON_PID"; }

# stop_daemon : SIGTERM; it must exit 0 within 60 s with no crash in its log. Devices it
# still serves stay in the kernel (the upgrade path).
stop_daemon() {
  daemon_alive || fail "stop_daemon: the daemon (pid ${DAEMON_PID:-none}) is not running$(_server_death)"
  log "daemon peak RSS $(awk '/^VmHWM/ {printf "%d MiB", $2 / 1024}' "/proc/$DAEMON_PID/status")"
  local pid=$DAEMON_PID
  DAEMON_PID='' SERVER_PID=''
  stop_checked "the daemon" "$pid" "$DAEMON_LOG" 60
}

# kill_daemon : SIGKILL, as a crash would; its devices stay in the kernel, waiting.
kill_daemon() {
  daemon_alive || fail "kill_daemon: the daemon is not running"
  kill -KILL "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true   # 137: killed, as intended
  log "daemon (pid $DAEMON_PID) SIGKILLed"
  DAEMON_PID='' SERVER_PID=''
}

# At exit: unmap what the daemon still serves, disconnect what the kernel still holds,
# stop the daemon. Quiet and bounded: never fails the scenario.
_daemon_teardown() {
  local d
  if daemon_alive; then
    for d in $(timeout 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" --format json 2>/dev/null \
                 | jq -r '.[].device' 2>/dev/null); do
      log "cleanup: rbd-nbdd unmap --force $d"
      t 60 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" --force "$d" >&2 || true
    done
  fi
  for d in $(nbd_connected_list); do
    log "cleanup: /dev/$d still connected in the kernel: nbd-client -d"
    t 30 nbd-client -d "/dev/$d" >> "$E2E_WORK/nbd-client.log" 2>&1 || true
  done
  daemon_alive && term_wait "$DAEMON_PID" 30
  DAEMON_PID='' SERVER_PID=''
}

# ---------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------
# map_image BYTES MAP_ARGS... : `rbd-nbdd map` as client.admin (-c CEPH_CONF -k
# CEPH_KEYRING before MAP_ARGS, which hold the spec and may override them). Sets MAPPED_DEV
# (and MAPPED_COOKIE with --show-cookie). The device must be ready when map returns: its
# sysfs size is BYTES already (no waiting). Unmapped at exit.
map_image() {
  local bytes=$1 out rc=0
  shift
  log "rbd-nbdd map $*"
  out=$(t 180 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" "$@" \
          2> "$E2E_WORK/map.err") || rc=$?
  if [ "$rc" != 0 ]; then
    cat "$E2E_WORK/map.err" >&2
    fail "rbd-nbdd map $* exited $rc"
  fi
  MAPPED_DEV=$(sed -n 1p <<< "$out")
  MAPPED_COOKIE=$(sed -n 2p <<< "$out")
  [[ "$MAPPED_DEV" =~ ^/dev/nbd[0-9]+$ ]] || fail "rbd-nbdd map printed '$out', expected /dev/nbdN"
  on_exit "_unmap_quiet $MAPPED_DEV"
  [ "$(nbd_size "$MAPPED_DEV")" = "$bytes" ] \
    || fail "map returned before $MAPPED_DEV was ready: sysfs size $(nbd_size "$MAPPED_DEV"), expected $bytes"
  log "mapped at $MAPPED_DEV: $(_nbd_queue_summary "$MAPPED_DEV")"
}

# unmap_dev DEV|SPEC [DEV] : `rbd-nbdd unmap` must succeed, and the kernel must drop the
# device (sysfs size 0, no pid) within 30 s. With a SPEC, give the device as DEV too.
unmap_dev() {
  local target=$1 dev=${2:-$1}
  t 90 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "$target" || fail "rbd-nbdd unmap $target failed"
  wait_nbd_size "$dev" 0 30
  wait_until 30 "$dev to lose its pid attribute" test ! -e "/sys/block/${dev##*/}/pid"
  log "unmapped $target"
}

_unmap_quiet() {
  [ "$(nbd_size "$1")" != 0 ] || return 0
  daemon_alive || return 0
  t 60 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" --force "$1" > /dev/null 2>&1
}

# nbd_connected_list : the nbd devices the kernel has connected (pid attribute or size).
# Builtins only: it looks at every /sys/block/nbdN, and an exec costs up to a second here.
nbd_connected_list() {
  local d
  for d in /sys/block/nbd*; do
    [ -e "$d" ] || continue
    sysfs_read "$d/size"
    if [ -e "$d/pid" ] || [ "${_SYSFS:-0}" != 0 ]; then echo "${d##*/}"; fi
  done
}

# assert_no_nbd_connected : no /dev/nbdN connected in the kernel, none listed by the daemon.
assert_no_nbd_connected() {
  local c l
  c=$(nbd_connected_list)
  [ -z "$c" ] || fail "nbd device(s) still connected in the kernel: ${c//$'\n'/ }"
  if daemon_alive; then
    l=$(mapped_json) || fail "list-mapped failed"
    [ "$l" = "[]" ] || fail "list-mapped lists $(jq length <<< "$l") device(s), expected none: $l"
  fi
}

# mapped_json : the daemon's list-mapped as JSON.
mapped_json() { t 20 "$RBDNBD_BIN" list-mapped --control-socket "$MAP_SOCK" --format json; }

# ---------------------------------------------------------------------------------------
# Many devices at once (map_16_devices, ublk_map_16_mixed)
# ---------------------------------------------------------------------------------------
# map_all_at_once BYTES SPEC... : one `rbd-nbdd map` client per SPEC, all at once (as a node
# plugin may issue them); `map_args_of I` (the caller's, optional) gives the I-th map's extra
# arguments. Every map must exit 0 and print its own device, ready (sysfs size BYTES) when
# map returns; the devices, in SPEC order, in DEVS. Each is unmapped at exit. (Results are read
# with builtins, $(< F): 16 x 3 cats cost ~30 s in a loaded guest.)
map_all_at_once() {
  local bytes=$1 i n pids=() extra uniq
  shift
  local specs=("$@")
  n=${#specs[@]}
  DEVS=()
  for ((i = 0; i < n; i++)); do
    extra=()
    declare -F map_args_of > /dev/null && read -ra extra <<< "$(map_args_of "$i")"
    ( rc=0
      t 300 "$RBDNBD_BIN" map --control-socket "$MAP_SOCK" -c "$CEPH_CONF" -k "$CEPH_KEYRING" \
        "${extra[@]}" "${specs[i]}" > "$E2E_WORK/map.$i.out" 2> "$E2E_WORK/map.$i.err" || rc=$?
      echo "$rc" > "$E2E_WORK/map.$i.rc" ) &
    pids+=($!)   # a bare `wait` would wait for the daemon too
  done
  wait "${pids[@]}"
  for ((i = 0; i < n; i++)); do
    DEVS[i]=$(< "$E2E_WORK/map.$i.out")
    [[ "${DEVS[i]}" =~ ^/dev/(nbd|ublkb)[0-9]+$ ]] && on_exit "_unmap_quiet ${DEVS[i]}"
  done
  for ((i = 0; i < n; i++)); do
    [ "$(< "$E2E_WORK/map.$i.rc")" = 0 ] \
      || fail "map ${specs[i]} exited $(< "$E2E_WORK/map.$i.rc"): $(< "$E2E_WORK/map.$i.err")"
    [[ "${DEVS[i]}" =~ ^/dev/(nbd|ublkb)[0-9]+$ ]] || fail "map ${specs[i]} printed '${DEVS[i]}'"
    [ "$(nbd_size "${DEVS[i]}")" = "$bytes" ] \
      || fail "map ${specs[i]} returned before ${DEVS[i]} was ready: size $(nbd_size "${DEVS[i]}")"
  done
  uniq=$(printf '%s\n' "${DEVS[@]}" | sort -u | wc -l)
  [ "$uniq" = "$n" ] || fail "$n maps gave only $uniq distinct devices: ${DEVS[*]}"
  log "devices: ${DEVS[*]}"
}

# unmap_all_at_once DEV... : one `rbd-nbdd unmap` per DEV, all at once; each must exit 0.
unmap_all_at_once() {
  local i pids=() devs=("$@")
  for ((i = 0; i < ${#devs[@]}; i++)); do
    ( rc=0
      t 300 "$RBDNBD_BIN" unmap --control-socket "$MAP_SOCK" "${devs[i]}" 2> "$E2E_WORK/unmap.$i.err" || rc=$?
      echo "$rc" > "$E2E_WORK/unmap.$i.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for ((i = 0; i < ${#devs[@]}; i++)); do
    [ "$(< "$E2E_WORK/unmap.$i.rc")" = 0 ] \
      || fail "unmap ${devs[i]} exited $(< "$E2E_WORK/unmap.$i.rc"): $(< "$E2E_WORK/unmap.$i.err")"
  done
}

# assert_one_daemon_process : the daemon is the only rbd-nbdd process; logs its threads and RSS.
assert_one_daemon_process() {
  local procs
  procs=$(pgrep -x rbd-nbdd | tr '\n' ' ')
  [ "$procs" = "$DAEMON_PID " ] || fail "rbd-nbdd processes: '$procs', expected only the daemon $DAEMON_PID"
  log "one process (pid $DAEMON_PID), $(ls /proc/$DAEMON_PID/task | wc -l) threads," \
      "RSS $(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' /proc/$DAEMON_PID/status) with ${#DEVS[@]} devices"
}

# pattern_jobs BASE OFF2_MIB BS MODE... : fio jobs (threads of one fio) writing each of DEVS'
# own 32-bit pattern (BASE + its index) with O_DIRECT, 1 MiB at 0 and at OFF2_MIB, each job
# with MODE; in JOBS, less the first --name (run_fio's NAME).
pattern_jobs() {
  local base=$1 off2=$2 bs=$3 i off pat
  shift 3
  JOBS=()
  for ((i = 0; i < ${#DEVS[@]}; i++)); do
    printf -v pat '0x%08x' $((base + i))
    for off in 0 "$off2"; do
      JOBS+=(--name="dev$i-at-${off}M" --filename="${DEVS[i]}" --offset="${off}M" --size=1M --bs="$bs"
             --rw=write --direct=1 --ioengine=psync --thread --verify=pattern
             --verify_pattern="$pat" --verify_fatal=1 --verify_dump=1 "$@")
    done
  done
  JOBS=("${JOBS[@]:1}")
}

# ---------------------------------------------------------------------------------------
# The kernel log
# ---------------------------------------------------------------------------------------
# expect_nbd_reconnects : the kernel's connection-level messages are expected from here on:
# a socket closed under it ("Receive control failed", "Send control failed"), a request
# timed out and was requeued ("Connection timed out, retrying"), or a request found its only
# socket dead and waits for a reconnect ("Dead connection, failed to find a fallback": with
# one connection nbd logs this on every submission while it waits, before it gives up or
# resends). What a user would see still fails the scenario: "I/O error, dev nbdN" (the
# request was completed with an error), "Buffer I/O error", filesystem errors.
expect_nbd_reconnects() {
  local -a alts keep=()
  local a
  IFS='|' read -ra alts <<< "$E2E_DMESG_IOERRS"
  for a in "${alts[@]}"; do
    case $a in
      'Receive control failed' | 'Send control failed' | 'Connection timed out' | 'Dead connection') ;;
      *) keep+=("$a") ;;
    esac
  done
  E2E_DMESG_IOERRS=$(IFS='|'; echo "${keep[*]}")
}

# dmesg_mark : remember where the kernel log is; dmesg_since prints what came after.
_DMESG_MARK=0
dmesg_mark() { _DMESG_MARK=$(dmesg | wc -l); }
dmesg_since() { dmesg | tail -n +"$((_DMESG_MARK + 1))"; }

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------
# fio_verify NAME DEV SIZE [FIO_ARGS...] : random 4k writes at QD16 (io_uring, O_DIRECT)
# over SIZE bytes of DEV, then every block read back and checked (crc32c); run_fio fails
# the scenario on any error. FIO_ARGS may override (e.g. --offset, --bs, --ioengine).
fio_verify() {
  local name=$1 dev=$2 size=$3
  shift 3
  run_fio "$name" --filename="$dev" --direct=1 --ioengine=io_uring --rw=randwrite --bs=4k \
    --iodepth=16 --size="$size" --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1 "$@"
}

# fio verify in the background on $FIO_DEV (the scenario sets it), for restarts under I/O:
#   writes_done                 completed write requests of $FIO_DEV (sysfs stat, field 5)
#   fio_bg NAME SIZE OFFSET     fio_verify on $FIO_DEV in the background; FIO_PID
#   wait_fio WHAT SECS          the background fio must exit 0 within SECS
#   writes_progress N           wait until N more writes completed than now
FIO_DEV= FIO_PID=
writes_done() { local a; read -ra a < "/sys/block/${FIO_DEV##*/}/stat"; echo "${a[4]}"; }   # builtins: it is polled
fio_bg() {
  (fio_verify "$1" "$FIO_DEV" "$2" --offset="$3") &
  FIO_PID=$!
  on_exit "kill $FIO_PID 2>/dev/null || true"
}
wait_fio() {
  local deadline=$((SECONDS + $2)) rc=0
  while kill -0 "$FIO_PID" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1: fio still running after $2 s"
    sleep 0.5
  done
  wait "$FIO_PID" || rc=$?
  [ "$rc" = 0 ] || fail "$1: fio failed (exit $rc)"
}
writes_progress() {
  local target=$(($(writes_done) + $1))
  wait_until 60 "$1 writes on $FIO_DEV (at $(writes_done))" eval '[ "$(writes_done)" -ge '"$target"' ]'
}

# dev_sha256 DEV [BYTES] : sha256 of the first BYTES (default: all) of DEV, read O_DIRECT.
dev_sha256() {
  local bytes=${2:-$(nbd_size "$1")}
  t 300 dd if="$1" bs=1M count=$((bytes >> 20)) iflag=direct status=none | sha256sum | cut -d' ' -f1
}

# rbd_sha256 SPEC : sha256 of the image (or snapshot) as `rbd export` reads it.
rbd_sha256() {
  local rc=0 sum
  sum=$(set -o pipefail; rbd_ export --no-progress "$1" - 2> "$E2E_WORK/rbd-export.err" | sha256sum | cut -d' ' -f1) \
    || rc=$?
  [ "$rc" = 0 ] || { cat "$E2E_WORK/rbd-export.err" >&2; fail "rbd export $1 failed"; }
  echo "$sum"
}
