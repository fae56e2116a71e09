# shellcheck shell=bash
# shellcheck disable=SC2034  # CSI_* are read by the scenarios
# tests/e2e/lib_csi.sh - helpers for the csi_*.sh scenarios: the CSI node plugin
# (rbd-nbdd-csi) in front of `rbd-nbdd daemon`, driven over its Unix socket by a real gRPC
# client (tests/csi/csi_client.py, Debian's python3-grpcio + python3-protobuf, stubs
# generated from csi/proto/csi.proto at test time), inside the UML guest.
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$(dirname "$0")/../lib_map.sh"
#   . "$(dirname "$0")/../lib_csi.sh"
#   csi_up                          # cluster_up, start_daemon, csi_setup (cluster config +
#                                   # client.kube secrets file), start_csi (the plugin, ready)
#   rbd_ create --size 256M kube/vol1
#   csi_stage vol1 "$(csi_staging vol1)" --fs ext4
#   csi_publish vol1 "$(csi_staging vol1)" "$(csi_target vol1 pod1)" --fs ext4
#   ...
#   csi_ok unpublish --vol vol1 --target ...; csi_ok unstage --vol vol1 --staging ...
#   assert_csi_clean; stop_csi; stop_daemon; pass
#
# Settings (environment):
#   CSI_BIN   the plugin (default build/csi/rbd-nbdd-csi under the repository, or
#             build-csi/csi/rbd-nbdd-csi when that is newer or the only one). A private copy
#             runs, as for rbd-nbdd (lib_map.sh): the build may be relinked meanwhile.
#   CSI_PROTO the proto the client speaks (default csi/proto/csi.proto)
#
# The plugin runs with no CEPH_* in its environment and never sees client.admin: every
# stage carries the client.kube key in its secrets (CSI_SECRETS, a 0600 JSON file; the key
# never goes on a command line). Volumes live in pool kube.
#
# Teardown at exit (before lib_map.sh's daemon teardown, LIFO): every publish and stage the
# scenario made (csi_ok/csi_stage/csi_publish record them) is undone through the plugin when
# it runs, whatever is still mounted under $CSI_KUBELET is unmounted, the plugin gets
# SIGTERM; lib_map.sh then unmaps what the daemon still serves. Hooks never fail the
# scenario: the checks that count are explicit (assert_csi_clean, stop_csi).

CSI_PY=/usr/bin/python3
CSI_CLIENT=$E2E_ROOT/tests/csi/csi_client.py
CSI_PROTO=${CSI_PROTO:-$E2E_ROOT/csi/proto/csi.proto}
export CSI_PROTO
export CSI_PY_DIR=/run/csi-py
CSI_SOCK=$CSI_DIR/csi.sock
CSI_ENDPOINT=unix://$CSI_SOCK
CSI_CONFIG=$CSI_DIR/config.json
CSI_SECRETS=$CSI_DIR/secrets.json
CSI_NODE_ID=e2e
CSI_DRIVER=rbd-nbdd.csi.ceph.io
CSI_CLUSTER_ID=dev
CSI_POOL=kube
CSI_PID=
CSI_LOG=
CSI_LAST=
_CSI_N=0
_CSI_UNDO=$CSI_DIR/undo.list

if [ -z "${CSI_BIN:-}" ]; then
  # run-all.sh does not pass CSI_BIN into the guest (yet): the build's plugin, or the
  # development build in build-csi/ when that one is newer (or the only one)
  CSI_BIN=$E2E_ROOT/build/csi/rbd-nbdd-csi
  if [ -x "$E2E_ROOT/build-csi/csi/rbd-nbdd-csi" ] \
     && { [ ! -x "$CSI_BIN" ] || [ "$E2E_ROOT/build-csi/csi/rbd-nbdd-csi" -nt "$CSI_BIN" ]; }; then
    CSI_BIN=$E2E_ROOT/build-csi/csi/rbd-nbdd-csi
  fi
fi
case "$CSI_BIN" in /*) ;; *) CSI_BIN=$E2E_ROOT/$CSI_BIN ;; esac

_csi_prereqs() {
  require_cmd protoc grpc_python_plugin blkid findmnt mkfs.ext4 mkfs.xfs
  "$CSI_PY" -c 'import grpc, google.protobuf' 2>/dev/null \
    || skip "$CSI_PY lacks grpc or protobuf (apt-get install python3-grpcio python3-protobuf)"
  [ -f "$CSI_PROTO" ] || fail "no CSI proto at $CSI_PROTO"
  [ -x "$CSI_BIN" ] || skip "no rbd-nbdd-csi at $CSI_BIN (build it: ninja -C build rbd-nbdd-csi)"
}

# ---------------------------------------------------------------------------------------
# Cluster config and secrets
# ---------------------------------------------------------------------------------------
# csi_mon_addr : the dev cluster's mon as a plain HOST:PORT (its msgr2 address; a bare
# non-standard port is taken as v2 by librados).
csi_mon_addr() { sed -E 's/.*v2:([0-9.]+:[0-9]+).*/\1/' <<< "$CEPH_MON_HOST"; }

# kube_key : the client.kube key (never printed by the helpers).
kube_key() { awk '$1 == "key" {print $3; exit}' "$KUBE_KEYRING"; }

# csi_setup : after cluster_up: --cluster-config (clusterID dev -> the mon) and the
# client.kube secrets in $CSI_SECRETS (also exported as CSI_SECRETS_FILE, the client's default).
# csi_up : what every csi_*.sh scenario starts with: the dev cluster, the daemon, the
# cluster config and secrets, and the plugin, ready.
csi_up() {
  cluster_up
  start_daemon
  csi_setup
  start_csi
}

csi_setup() {
  local mon key
  mon=$(csi_mon_addr)
  [[ "$mon" =~ ^[0-9.]+:[0-9]+$ ]] || fail "cannot read a mon address from CEPH_MON_HOST=$CEPH_MON_HOST"
  _jstr "$CSI_CLUSTER_ID"; local id=$_J
  _jstr "$mon"
  printf '[{"clusterID": %s, "monitors": [%s]}]\n' "$id" "$_J" > "$CSI_CONFIG"
  key=$(kube_key)
  [ -n "$key" ] || fail "no key in $KUBE_KEYRING"
  csi_secrets_file "$CSI_SECRETS" kube "$key"
  export CSI_SECRETS_FILE=$CSI_SECRETS
  log "cluster config: $(cat "$CSI_CONFIG"); secrets: client.kube in $CSI_SECRETS"
}

# csi_secrets_file PATH USERID KEY : a secrets file, one line of JSON, mode 0600 (builtins:
# the key goes on no command line).
csi_secrets_file() {
  local u k
  _jstr "$2"; u=$_J
  _jstr "$3"; k=$_J
  (umask 077; printf '{"userID": %s, "userKey": %s}\n' "$u" "$k" > "$1")
}

# _jstr S : S as a JSON string (quotes included) in _J. Builtins only: the request lines
# are built in the guest, where every exec costs up to a second.
_jstr() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  _J="\"$s\""
}

# ---------------------------------------------------------------------------------------
# The plugin
# ---------------------------------------------------------------------------------------
# start_csi [ARGS...] : rbd-nbdd-csi in the background (log $E2E_WORK/csi.N.log, CSI_LOG),
# ready once GetPluginInfo answers OK.
start_csi() {
  if [ -n "$CSI_PID" ] && _alive "$CSI_PID"; then fail "start_csi: a plugin runs already (pid $CSI_PID)"; fi
  _CSI_N=$((_CSI_N + 1))
  [ "$_CSI_N" != 1 ] || on_exit _csi_teardown
  CSI_LOG=$E2E_WORK/csi.$_CSI_N.log
  local -a args=(--endpoint "$CSI_ENDPOINT" --node-id "$CSI_NODE_ID" --control-socket "$MAP_SOCK"
                 --state-dir "$CSI_STATE" --cluster-config "$CSI_CONFIG" --log-level debug "$@")
  log "starting: rbd-nbdd-csi ${args[*]}"
  local t0=$SECONDS
  start_ready rbd-nbdd-csi "$CSI_LOG" 60 _csi_ready \
    -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_ARGS -u CEPH_MON_HOST -u CSI_SECRETS_FILE \
    "$CSI_BIN" "${args[@]}"
  CSI_PID=$STARTED_PID
  log "rbd-nbdd-csi ready (pid $CSI_PID) in $((SECONDS - t0))s"
}

# _csi_ready : the plugin answers GetPluginInfo (asked once its socket exists).
_csi_ready() { [ -S "$CSI_SOCK" ] && csi_call_quiet GetPluginInfo; }

csi_alive() { [ -n "$CSI_PID" ] && _alive "$CSI_PID"; }

# stop_csi : SIGTERM; exit 0 within 30 s, no crash in its log; mounts and devices stay.
stop_csi() {
  csi_alive || fail "stop_csi: the plugin (pid ${CSI_PID:-none}) is not running"
  local pid=$CSI_PID
  CSI_PID=
  stop_checked rbd-nbdd-csi "$pid" "$CSI_LOG" 30
  [ ! -S "$CSI_SOCK" ] || log "note: $CSI_SOCK still exists after the plugin exited"
}

# ---------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------
# The client runs as ONE long-lived process per scenario (csi_client.py repl, fed through
# two FIFOs): in the guest, starting Python and importing grpc costs ~10 s, far more than
# the calls. Each call opens its own gRPC channel to $CSI_ENDPOINT.
CSI_REQ_FD='' CSI_RESP_FD='' CSI_REPL_PID=''
_csi_repl_start() {
  local req=$CSI_DIR/repl.in resp=$CSI_DIR/repl.out
  rm -f "$req" "$resp"
  mkfifo -m 600 "$req" "$resp"
  "$CSI_PY" "$CSI_CLIENT" --endpoint "$CSI_ENDPOINT" repl < "$req" > "$resp" 2>> "$E2E_WORK/csi-repl.err" &
  CSI_REPL_PID=$!
  exec {CSI_REQ_FD}> "$req"
  exec {CSI_RESP_FD}< "$resp"
}

# The repl may never see EOF on its FIFO: processes started after it (the dev cluster's
# daemons, when the scenario starts them) inherit the write end. It has nothing to flush
# (every answer was read): SIGTERM, at once.
_csi_repl_stop() {
  [ -z "$CSI_REQ_FD" ] || exec {CSI_REQ_FD}>&-
  [ -z "$CSI_RESP_FD" ] || exec {CSI_RESP_FD}<&-
  CSI_REQ_FD='' CSI_RESP_FD=''
  [ -z "$CSI_REPL_PID" ] || term_wait "$CSI_REPL_PID" 5
}

# _csi_repl_send LINE : one request line to the repl; its answer is split into
# CSI_RC CSI_CODE CSI_ELAPSED CSI_DETAILS CSI_OUT CSI_ERR (output lines joined by 0x1e).
# Shell builtins only: in the guest every exec costs about a second.
_csi_repl_send() {
  CSI_RC=2 CSI_CODE='' CSI_ELAPSED='' CSI_DETAILS='' CSI_OUT='' CSI_ERR=''
  if [ -z "$CSI_REQ_FD" ] || ! _alive "$CSI_REPL_PID"; then
    CSI_ERR="the CSI client (repl) is not running"; return 2
  fi
  if ! { printf '%s\n' "$1" >&"$CSI_REQ_FD"; } 2>/dev/null; then
    CSI_ERR="the CSI client (repl) is gone"; return 2
  fi
  local line
  if ! IFS= read -r -t "${CSI_CALL_TIMEOUT:-300}" -u "$CSI_RESP_FD" line; then
    CSI_ERR="no answer from the CSI client within ${CSI_CALL_TIMEOUT:-300} s"; return 2
  fi
  IFS=$'\x1f' read -r CSI_RC CSI_CODE CSI_ELAPSED CSI_DETAILS CSI_OUT CSI_ERR <<< "$line"
}

# _csi_line OP ARGS... : a request line; a batch's stdin is read here.
_csi_line() {
  local op=$1 stdin='' l IFS=$'\x1f'
  shift
  for l in "$@"; do   # a batch (after any global option) reads its lines here, never in the repl
    if [ "$l" = batch ]; then
      while IFS= read -r l || [ -n "$l" ]; do stdin+=${l}$'\x1e'; done
      break
    fi
  done
  local args="$*"
  # One line per command: a newline inside an argument (a JSON request written over several
  # lines) becomes a blank, which JSON reads alike.
  printf '%s' "$op$IFS$stdin$IFS--endpoint$IFS$CSI_ENDPOINT$IFS${args//$'\n'/ }"
}

# _csi_print_reply : the last command's stdout and stderr, one line each.
_csi_print_reply() {
  local -a lines=()
  local l
  if [ -n "$CSI_OUT" ]; then IFS=$'\x1e' read -r -a lines <<< "$CSI_OUT"; for l in "${lines[@]}"; do printf '%s\n' "$l"; done; fi
  if [ -n "$CSI_ERR" ]; then IFS=$'\x1e' read -r -a lines <<< "$CSI_ERR"; for l in "${lines[@]}"; do printf '%s\n' "$l" >&2; done; fi
  return "$CSI_RC"
}

# csi_client ARGS... : `csi_client.py ARGS...` (its stdout, stderr and exit code), run by
# the scenario's client process.
csi_client() {
  local line
  line=$(_csi_line R "$@")
  _csi_repl_send "$line" || { _csi_print_reply; return 2; }
  _csi_print_reply
}

# csi_submit ID ARGS... : start `csi_client.py ARGS...` in the background of the client;
# csi_done ID tells whether it ended; csi_collect ID waits and gives its output and exit code.
csi_submit() {
  local id=$1 line
  shift
  line=$(_csi_line "S$id" "$@")
  _csi_repl_send "$line" || { _csi_print_reply; return 2; }
}
csi_done() { _csi_repl_send "P$1" && [ "$CSI_RC" = 0 ]; }
csi_collect() {
  CSI_CALL_TIMEOUT=600 _csi_repl_send "C$1"
  _csi_print_reply
}

csi_call_quiet() { csi_client --timeout 10 call "$@" > /dev/null 2>&1; }

# _csi_args ARGS... : _A_VOL _A_STAGING _A_TARGET _A_PATH from a command line (builtins only).
_csi_args() {
  _A_VOL='' _A_STAGING='' _A_TARGET='' _A_PATH=''
  while [ $# -gt 0 ]; do
    case $1 in
      --vol) _A_VOL=${2:-} ;;
      --staging) _A_STAGING=${2:-} ;;
      --target) _A_TARGET=${2:-} ;;
      --path) _A_PATH=${2:-} ;;
    esac
    shift
  done
}

# csi_expect CODE VERB ARGS... : the call must end with gRPC status CODE (ANY: whatever);
# CSI_LAST holds its JSON result line. Logs the call and its time.
csi_expect() {
  local code=$1 verb=$2 line
  shift 2
  line=$(_csi_line R --expect "$code" "$verb" "$@")
  _csi_repl_send "$line" || true
  CSI_LAST=${CSI_OUT%%$'\x1e'*}
  _csi_brief "$verb" "$@"
  log "csi $verb $_BRIEF -> ${CSI_CODE:-?} (${CSI_ELAPSED:-?}s)${CSI_DETAILS:+: ${CSI_DETAILS:0:300}}"
  if [ "$CSI_RC" != 0 ]; then
    _csi_print_reply > /dev/null || true
    fail "csi $verb $_BRIEF: expected $code, got ${CSI_CODE:-no answer}${CSI_DETAILS:+ ($CSI_DETAILS)}"
  fi
  if [ "$CSI_CODE" = OK ]; then _csi_record "$verb" "$@"; fi
  return 0
}

# csi_ok VERB ARGS... : csi_expect OK.
csi_ok() { csi_expect OK "$@"; }

# _csi_brief VERB ARGS... : a short description of a call, in _BRIEF.
_csi_brief() {
  local verb=$1
  shift
  _csi_args "$@"
  case $verb in
    call) _BRIEF=$1 ;;
    *) _BRIEF="vol=${_A_VOL:-∅}${_A_TARGET:+ target=$_A_TARGET}${_A_PATH:+ path=$_A_PATH}"
       [ -n "$_A_TARGET$_A_PATH" ] || _BRIEF+="${_A_STAGING:+ staging=$_A_STAGING}" ;;
  esac
}

# Remember what to undo at exit: successful stages and publishes.
_csi_record() {
  local verb=$1
  shift
  _csi_args "$@"
  case $verb in
    stage)   echo "S $_A_VOL $_A_STAGING" >> "$_CSI_UNDO" ;;
    publish) echo "P $_A_VOL $_A_TARGET" >> "$_CSI_UNDO" ;;
  esac
}

# ---------------------------------------------------------------------------------------
# Paths (as kubelet passes them) and volumes
# ---------------------------------------------------------------------------------------
# csi_staging VOL : the mount staging path (kubelet: .../csi/DRIVER/SHA256/globalmount; the
# 64 hex digits here come from _hex64, builtins only: the plugin only sees a path of that shape).
csi_staging() {
  _hex64 "$1"
  echo "$CSI_KUBELET/plugins/kubernetes.io/csi/$CSI_DRIVER/$_HEX64/globalmount"
}

# _hex64 S : 64 hex digits derived from S (four FNV-1a 64-bit hashes, seeded 0..3), in _HEX64.
_hex64() {
  local s=$1 i k c h out=''
  for k in 0 1 2 3; do
    h=$((-3750763034362895579 ^ k))   # FNV-1a's offset basis, as a signed 64-bit number
    for ((i = 0; i < ${#s}; i++)); do
      printf -v c '%d' "'${s:i:1}"
      h=$(((h ^ c) * 1099511628211))
    done
    printf -v c '%016x' "$h"
    out+=$c
  done
  _HEX64=$out
}
# csi_target VOL POD : a pod's mount target (.../pods/UID/volumes/kubernetes.io~csi/PV/mount).
csi_target() { echo "$CSI_KUBELET/pods/$2/volumes/kubernetes.io~csi/$1/mount"; }
# csi_block_staging VOL, csi_block_target VOL POD : the same for raw block volumes.
csi_block_staging() { echo "$CSI_KUBELET/plugins/kubernetes.io/csi/volumeDevices/staging/$1"; }
csi_block_target() { echo "$CSI_KUBELET/plugins/kubernetes.io/csi/volumeDevices/publish/$1/$2"; }

# csi_ctx IMAGE : the volume_context arguments for kube/IMAGE on the dev cluster.
csi_ctx() { echo "--ctx clusterID=$CSI_CLUSTER_ID --ctx pool=$CSI_POOL --ctx imageName=$1"; }

# csi_stage VOL STAGING ACCESS_ARGS... : NodeStageVolume of kube/VOL (volume_id = image
# name), client.kube secrets; kubelet makes the staging directory first, so do we.
csi_stage() {
  local vol=$1 staging=$2
  shift 2
  mkdir -p "$staging"
  # shellcheck disable=SC2046
  csi_ok stage --vol "$vol" --staging "$staging" $(csi_ctx "$vol") --secrets "$CSI_SECRETS" "$@"
}

# csi_publish VOL STAGING TARGET ACCESS_ARGS... : NodePublishVolume; kubelet makes the
# target's parent, the plugin the target itself.
csi_publish() {
  local vol=$1 staging=$2 target=$3
  shift 3
  mkdir -p "$(dirname "$target")"
  # shellcheck disable=SC2046
  csi_ok publish --vol "$vol" --staging "$staging" --target "$target" $(csi_ctx "$vol") "$@"
}

csi_unpublish() { csi_ok unpublish --vol "$1" --target "$2"; }
csi_unstage() { csi_ok unstage --vol "$1" --staging "$2"; }

# csi_create_image VOL SIZE : kube/VOL (created as client.admin, used as client.kube).
csi_create_image() { rbd_ create --size "$2" "$CSI_POOL/$1" || fail "rbd create $CSI_POOL/$1 failed"; }

# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------
# mount_source DIR : the device mounted at DIR (exactly there), or nothing.
mount_source() { findmnt -n -o SOURCE --mountpoint "$1" 2>/dev/null | tail -n 1; }
# mount_opts DIR : its mount options.
mount_opts() { findmnt -n -o OPTIONS --mountpoint "$1" 2>/dev/null | tail -n 1; }
mount_fstype() { findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null | tail -n 1; }

# staged_dev STAGING : the /dev/nbdN mounted at STAGING; fails otherwise.
staged_dev() {
  local d
  d=$(mount_source "$1")
  [[ "$d" =~ ^/dev/(nbd|ublkb)[0-9]+$ ]] || fail "$1 is not a mounted /dev/nbdN or /dev/ublkbN (source: '${d:-none}')"
  echo "$d"
}

# csi_mounts : every mount point under $CSI_KUBELET.
csi_mounts() {
  local src mp rest
  while read -r src mp rest; do
    [[ $mp == "$CSI_KUBELET/"* ]] && echo "${mp//\\040/ }"
  done < /proc/self/mounts
  return 0
}

# assert_csi_clean : nothing mounted under $CSI_KUBELET, no nbd device in the kernel, and
# the daemon lists no mapping.
assert_csi_clean() {
  local m
  m=$(csi_mounts)
  [ -z "$m" ] || fail "still mounted: ${m//$'\n'/ }"
  assert_no_nbd_connected
  ! compgen -G '/dev/ublkb*' > /dev/null || fail "a ublk device is left: $(ls /dev/ublkb* 2>&1)"
  log "clean: no CSI mount, no nbd or ublk device, nothing mapped"
}

# assert_no_secret_leak KEY : KEY is in no log (scenario, plugin, daemon, Ceph), not in the
# plugin's state dir, and in no process's argv.
assert_no_secret_leak() {
  local key=$1 hits
  [ -n "$key" ] || fail "assert_no_secret_leak: empty key"
  local pat=$CSI_DIR/leak.pat
  (umask 077; printf '%s\n' "$key" > "$pat")   # the key goes to grep in a file, not in its argv
  hits=$(grep -rlF -f "$pat" "$E2E_WORK" "$CSI_STATE" "$MAP_STATE" "$MAP_CLUSTER_DIR/log" 2>/dev/null || true)
  [ -z "$hits" ] || { rm -f "$pat"; fail "the key appears in: $hits"; }
  hits=$(grep -lF -f "$pat" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null || true)
  rm -f "$pat"
  [ -z "$hits" ] || fail "the key appears in the argv or environment of: $(for h in $hits; do p=${h#/proc/}; p=${p%%/*}; echo "$p:$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-60)"; done)"
  log "the key is in no log, state file or argv"
}

# ---------------------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------------------
_csi_teardown() {
  local kind vol path lines=() i batch=
  if csi_alive && [ -s "$_CSI_UNDO" ]; then
    mapfile -t lines < "$_CSI_UNDO"
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
      read -r kind vol path <<< "${lines[i]}"
      case $kind in
        P) batch+=$(csi_req cleanup NodeUnpublishVolume ANY "$(csi_unpublish_json "$vol" "$path")")$'\n' ;;
        S) batch+=$(csi_req cleanup NodeUnstageVolume ANY "$(csi_unstage_json "$vol" "$path")")$'\n' ;;
      esac
    done
    log "cleanup: unpublish/unstage ${#lines[@]} recorded call(s) through the plugin"
    printf '%s' "$batch" | csi_client --timeout 60 batch > "$E2E_WORK/csi-cleanup.json" 2>&1 || true
  fi
  local m
  for m in $(csi_mounts | sort -r); do
    log "cleanup: umount $m"
    t 60 umount "$m" 2>/dev/null || t 30 umount -l "$m" || true
  done
  csi_alive && term_wait "$CSI_PID" 20
  CSI_PID=
  [ ! -d "$CSI_STATE" ] || cp -a "$CSI_STATE" "$E2E_WORK/csi-state" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# Results of the last call (CSI_LAST)
# ---------------------------------------------------------------------------------------
# csi_usage UNIT FIELD : from the last NodeGetVolumeStats: usage[unit == UNIT].FIELD as a
# number (0 when absent: proto3 leaves zeros out).
csi_usage() {
  jq -r --arg u "$1" --arg f "$2" \
    '[.response.usage[]? | select(.unit == $u)] | if length == 1 then (.[0][$f] // "0" | tonumber) else "none" end' \
    <<< "$CSI_LAST"
}

# csi_resp FILTER : jq FILTER on the last call's response.
csi_resp() { jq -r ".response | $1" <<< "$CSI_LAST"; }

# expect_erofs PATH : creating a file under PATH must fail with EROFS.
expect_erofs() {
  local out
  if out=$(touch "$1/erofs-probe.$RANDOM" 2>&1); then fail "a write under $1 succeeded; it is read-only"; fi
  grep -q 'Read-only file system' <<< "$out" || fail "a write under $1 failed, but not with EROFS: $out"
  local f
  f=$(find "$1" -type f | head -n 1)
  [ -n "$f" ] || fail "expect_erofs: no file under $1 to overwrite"
  if out=$(t 30 dd if=/dev/zero of="$f" bs=4k count=1 conv=notrunc status=none 2>&1); then
    fail "overwriting a file under $1 succeeded; it is read-only"
  fi
  grep -q 'Read-only file system' <<< "$out" || fail "an overwrite under $1 failed, but not with EROFS: $out"
  log "writes under $1 fail with EROFS"
}

# df_bytes DIR FIELD : df's size|used|avail of DIR in bytes; df_inodes DIR FIELD: itotal|iused|iavail.
df_bytes() { df -B1 --output="$2" "$1" | tail -n 1 | tr -d ' '; }
df_inodes() { df --output="$2" "$1" | tail -n 1 | tr -d ' '; }

# near A B PCT : |A - B| <= PCT% of B.
near() { awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b * p / 100) }'; }

# assert_mapped_as_kube DEV SPEC [MAPPED] : the daemon maps SPEC at DEV, as client.kube, and
# only once. MAPPED: a list-mapped JSON taken before (several volumes, one listing).
assert_mapped_as_kube() {
  local l all=${3:-$(mapped_json)}
  l=$(jq -c --arg s "$2" '[.[] | select(.spec == $s) | {device, client_name}]' <<< "$all")
  [ "$l" = "[{\"device\":\"$1\",\"client_name\":\"client.kube\"}]" ] \
    || fail "list-mapped for $2: $l, expected it once at $1 as client.kube (all: $(jq -c . <<< "$all"))"
}

# csi_batch [--parallel] : JSON lines on stdin ({name, method, request, expect}), all in one
# client process (with --parallel: all at once, one thread each). Every result is logged;
# any status other than its expect fails the scenario. The result lines are left in
# $E2E_WORK/csi-batch.N.json (CSI_BATCH_OUT). Successful stages and publishes are recorded
# for the teardown.
_CSI_BATCH_N=0
csi_batch() {
  _CSI_BATCH_N=$((_CSI_BATCH_N + 1))
  CSI_BATCH_OUT=$E2E_WORK/csi-batch.$_CSI_BATCH_N.json
  local rc=0
  csi_client batch "$@" > "$CSI_BATCH_OUT" 2> "$E2E_WORK/csi-batch.err" || rc=$?
  jq -r '"csi \(.name): \(.method) -> \(.code) (\(.elapsed)s)\(if .ok then "" else ", expected \(.expect)" end)\(if .details != "" then ": " + (.details | .[0:300]) else "" end)"' \
    "$CSI_BATCH_OUT" 2>/dev/null | while IFS= read -r l; do log "$l"; done
  jq -r 'select(.code == "OK") | if .method == "NodeStageVolume" then "S \(.name)" elif .method == "NodePublishVolume" then "P \(.name)" else empty end' \
    "$CSI_BATCH_OUT" 2>/dev/null | while read -r k n; do
      # names of recorded calls are "VOL PATH" (see csi_req_*)
      case "$n" in *' '*) echo "$k $n" >> "$_CSI_UNDO" ;; esac
    done
  if [ "$rc" != 0 ]; then
    cat "$E2E_WORK/csi-batch.err" >&2
    fail "csi batch $_CSI_BATCH_N: $(grep -c . "$E2E_WORK/csi-batch.err") call(s) did not return what was expected"
  fi
}

# The request builders below print one line of JSON each, with shell builtins only (no
# jq: see _jstr). The request with the secrets never goes on a command line.

# csi_req NAME METHOD EXPECT REQUEST_JSON : one batch line.
csi_req() {
  local n m e
  _jstr "$1"; n=$_J
  _jstr "$2"; m=$_J
  _jstr "$3"; e=$_J
  printf '{"name": %s, "method": %s, "expect": %s, "request": %s}\n' "$n" "$m" "$e" "$4"
}

# csi_cap FS|block [MODE] : a volume_capability as JSON.
csi_cap() {
  local m f
  _jstr "${2:-SINGLE_NODE_WRITER}"; m=$_J
  if [ "$1" = block ]; then printf '{"block": {}, "access_mode": {"mode": %s}}\n' "$m"
  else _jstr "$1"; f=$_J; printf '{"mount": {"fs_type": %s}, "access_mode": {"mode": %s}}\n' "$f" "$m"; fi
}

# _csi_ctx_json VOL : the volume_context for kube/VOL on the dev cluster, in _J.
_csi_ctx_json() {
  local v cl p
  _jstr "$1"; v=$_J
  _jstr "$CSI_CLUSTER_ID"; cl=$_J
  _jstr "$CSI_POOL"; p=$_J
  _J="{\"clusterID\": $cl, \"pool\": $p, \"imageName\": $v}"
}

# csi_stage_json VOL STAGING FS|block : a full NodeStageVolume request (client.kube secrets).
csi_stage_json() {
  local v st ctx sec
  _jstr "$1"; v=$_J
  _jstr "$2"; st=$_J
  _csi_ctx_json "$1"; ctx=$_J
  sec=$(< "$CSI_SECRETS")
  printf '{"volume_id": %s, "staging_target_path": %s, "volume_capability": %s, "secrets": %s, "volume_context": %s}\n' \
    "$v" "$st" "$(csi_cap "$3")" "$sec" "$ctx"
}

# csi_publish_json VOL STAGING TARGET FS|block [true|false] : a NodePublishVolume request.
csi_publish_json() {
  local v st tg ctx
  _jstr "$1"; v=$_J
  _jstr "$2"; st=$_J
  _jstr "$3"; tg=$_J
  _csi_ctx_json "$1"; ctx=$_J
  printf '{"volume_id": %s, "staging_target_path": %s, "target_path": %s, "volume_capability": %s, "readonly": %s, "volume_context": %s}\n' \
    "$v" "$st" "$tg" "$(csi_cap "$4")" "${5:-false}" "$ctx"
}

# csi_unpublish_json VOL TARGET, csi_unstage_json VOL STAGING : those requests.
csi_unpublish_json() {
  local v
  _jstr "$1"; v=$_J
  _jstr "$2"
  printf '{"volume_id": %s, "target_path": %s}\n' "$v" "$_J"
}
csi_unstage_json() {
  local v
  _jstr "$1"; v=$_J
  _jstr "$2"
  printf '{"volume_id": %s, "staging_target_path": %s}\n' "$v" "$_J"
}

# ---------------------------------------------------------------------------------------
# Set-up when sourced
# ---------------------------------------------------------------------------------------
shopt -s lastpipe   # `... | csi_batch` runs csi_batch in this shell: CSI_BATCH_OUT, fail
_csi_prereqs
# The controller sits beside the plugin in the build (csi/controller/): resolved from the
# build's plugin path, before CSI_BIN becomes the private copy.
if [ -z "${CSI_CONTROLLER_BIN:-}" ]; then
  CSI_CONTROLLER_BIN=$(dirname "$CSI_BIN")/controller/rbd-nbdd-csi-controller
fi
case "$CSI_CONTROLLER_BIN" in /*) ;; *) CSI_CONTROLLER_BIN=$E2E_ROOT/$CSI_CONTROLLER_BIN ;; esac
private_copy "$CSI_BIN" rbd-nbdd-csi --version
CSI_BIN=$PRIVATE_COPY
mkdir -p "$CSI_DIR" "$CSI_KUBELET"
: > "$_CSI_UNDO"
t 120 "$CSI_PY" "$E2E_ROOT/tests/csi/gen_stubs.py" > /dev/null 2> "$E2E_WORK/csi-gen.err" \
  || { cat "$E2E_WORK/csi-gen.err" >&2; fail "generating the Python stubs from $CSI_PROTO failed"; }
_csi_repl_start
on_exit _csi_repl_stop

# ---------------------------------------------------------------------------------------
# The controller (rbd-nbdd-csi-controller), for the dynamic scenarios
# ---------------------------------------------------------------------------------------
# start_controller [ARGS...] : the controller on its own socket (CTL_SOCK; log CTL_LOG), with
# the same cluster config as the node plugin and no CEPH_* in its environment: every call
# brings its credentials in its secrets. Ready once GetPluginInfo answers. ctl_ok/ctl_expect
# are csi_ok/csi_expect against it.
CTL_SOCK=$CSI_DIR/controller.sock
CTL_ENDPOINT=unix://$CTL_SOCK
CTL_PID=
CTL_LOG=
_CTL_N=0

start_controller() {
  [ -x "$CSI_CONTROLLER_BIN" ] || fail "no rbd-nbdd-csi-controller at $CSI_CONTROLLER_BIN (ninja -C build rbd-nbdd-csi-controller)"
  # A private copy, as for the plugin: the build may be relinked meanwhile.
  private_copy "$CSI_CONTROLLER_BIN" rbd-nbdd-csi-controller --version
  local bin=$PRIVATE_COPY
  if [ -n "$CTL_PID" ] && _alive "$CTL_PID"; then fail "start_controller: one runs already (pid $CTL_PID)"; fi
  _CTL_N=$((_CTL_N + 1))
  [ "$_CTL_N" != 1 ] || on_exit _ctl_teardown
  CTL_LOG=$E2E_WORK/controller.$_CTL_N.log
  local -a args=(--endpoint "$CTL_ENDPOINT" --cluster-config "$CSI_CONFIG" --log-level debug "$@")
  log "starting: rbd-nbdd-csi-controller ${args[*]}"
  local t0=$SECONDS
  start_ready rbd-nbdd-csi-controller "$CTL_LOG" 60 _ctl_ready \
    -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_ARGS -u CEPH_MON_HOST -u CSI_SECRETS_FILE \
    "$bin" "${args[@]}"
  CTL_PID=$STARTED_PID
  log "rbd-nbdd-csi-controller ready (pid $CTL_PID) in $((SECONDS - t0))s"
}
_ctl_ready() { [ -S "$CTL_SOCK" ] && CSI_ENDPOINT=$CTL_ENDPOINT csi_call_quiet GetPluginInfo; }
ctl_alive() { [ -n "$CTL_PID" ] && _alive "$CTL_PID"; }
stop_controller() {
  ctl_alive || fail "stop_controller: the controller (pid ${CTL_PID:-none}) is not running"
  local pid=$CTL_PID
  CTL_PID=
  stop_checked rbd-nbdd-csi-controller "$pid" "$CTL_LOG" 30
}
_ctl_teardown() { ctl_alive && term_wait "$CTL_PID" 20; CTL_PID=; return 0; }

ctl_expect() { local code=$1; shift; CSI_ENDPOINT=$CTL_ENDPOINT csi_expect "$code" "$@"; }
ctl_ok() { ctl_expect OK "$@"; }

# csi_mount_cap [FS] [MODE] / csi_block_cap [MODE] : a volume_capability as JSON.
csi_mount_cap() { printf '{"mount": {"fs_type": "%s"}, "access_mode": {"mode": "%s"}}' "${1:-ext4}" "${2:-SINGLE_NODE_WRITER}"; }
csi_block_cap() { printf '{"block": {}, "access_mode": {"mode": "%s"}}' "${1:-SINGLE_NODE_WRITER}"; }

# ctx_args_of_last : the last CreateVolume's volume_context as `--ctx K=V` words (CTX_ARGS).
ctx_args_of_last() {
  CTX_ARGS=()
  local kv
  while IFS= read -r kv; do [ -n "$kv" ] && CTX_ARGS+=(--ctx "$kv"); done \
    < <(jq -r '.response.volume.volume_context // {} | to_entries[] | "\(.key)=\(.value)"' <<< "$CSI_LAST")
}
