# shellcheck shell=bash
# tests/integration/lib_csi_controller.sh - helpers for tests/integration/csi_controller*.sh:
# rbd-nbdd-csi-controller on a Unix socket in the test's tmp dir, against the suite's dev
# cluster (lib_rbd.sh's ceph_up), driven by the real gRPC client tests/csi/csi_client.py
# (one `repl` process per test: Python and grpc start once), and checked as client.admin
# with the rbd CLI and tests/csi/controller_check.py.
#
#   . "$(dirname "$0")/lib_csi_controller.sh"
#   ctl_setup                             # cluster, cluster config, secrets files, client
#   ctl_start                             # the controller, ready once GetPluginInfo answers
#   ctl CreateVolume OK "$(vol_req "pvc-1-$TAG" $((64 * MiB)))" "$KUBE_SECRETS"
#   vid=$(ctl_resp .volume.volume_id)     # a field of that call's response (jq)
#   ctl_state; ...; assert_unchanged "what was tried"   # no image, trash entry or key left
#
# The controller runs with no CEPH_* in its environment and reads no keyring: every call
# carries its credentials in secrets files ($TMPD/*.json, 0600, written with builtins, so the
# keys go on no command line). Volumes live in pool kube.
#
# Settings (environment):
#   CSI_CONTROLLER_BIN  the controller (default: <build>/csi/controller/rbd-nbdd-csi-controller,
#                       <build> taken from RBDNBD=<build>/gateway/control/rbd-nbdd); a private
#                       copy runs, since the shared build may be relinked meanwhile
#   CI=true             a missing controller binary fails instead of skipping
#
# After ctl_setup: KUBE_SECRETS, ADMIN_SECRETS (files), CTL_CONFIG, CTL_MON, TAG (unique per
# run: put it in every CSI name), CTL_POOL=kube, MiB/GiB.

. "$(dirname "${BASH_SOURCE[0]}")/lib_rbd.sh"
shopt -s lastpipe   # `... | ctl_batch` runs ctl_batch in this shell (CTL_BATCH, fail)

CTL_PY=/usr/bin/python3
CTL_CLIENT=$ROOT/tests/csi/csi_client.py
CTL_CHECK=$ROOT/tests/csi/controller_check.py
export CSI_PROTO=${CSI_PROTO:-$ROOT/csi/proto/csi.proto}
CTL_POOL=kube
CTL_DRIVER=rbd-nbdd.csi.ceph.io
MiB=$((1 << 20))
GiB=$((1 << 30))
TAG=t$$
CTL_PID=
CTL_LOG=
CTL_LOGS=()
CTL_NS=()                      # RADOS namespaces the test made (state checks cover them)
_CTL_N=0
_CTL_REQ_FD='' _CTL_RESP_FD='' _CTL_REPL_PID=''

if [ -z "${CSI_CONTROLLER_BIN:-}" ]; then
  case "$RBDNBD" in
    */gateway/control/rbd-nbdd) CSI_CONTROLLER_BIN=${RBDNBD%/gateway/control/rbd-nbdd}/csi/controller/rbd-nbdd-csi-controller ;;
    *) CSI_CONTROLLER_BIN=$ROOT/build/csi/controller/rbd-nbdd-csi-controller ;;
  esac
fi

# _jstr S : S as a JSON string in _J (builtins only: keys pass through here).
_jstr() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  _J="\"$s\""
}

# secrets_file PATH USERID KEY [PASSPHRASE] : a 0600 secrets file for the client's --secrets.
secrets_file() {
  local u k p=''
  _jstr "$2"; u=$_J
  _jstr "$3"; k=$_J
  if [ -n "${4:-}" ]; then _jstr "$4"; p=", \"encryptionPassphrase\": $_J"; fi
  (umask 077; printf '{"userID": %s, "userKey": %s%s}\n' "$u" "$k" "$p" > "$1")
}

# keyring_key FILE : the key of a keyring file (for secrets_file; never printed by the tests).
keyring_key() { awk '$1 == "key" {print $3; exit}' "$1"; }

# section TITLE : a log line that opens a part of the test, with the seconds since it started.
section() { log "== $* (at ${SECONDS}s)"; }

# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------
ctl_setup() {
  if [ ! -x "$CSI_CONTROLLER_BIN" ]; then
    rbd_skip "no rbd-nbdd-csi-controller at $CSI_CONTROLLER_BIN (ninja -C build rbd-nbdd-csi-controller)"
  fi
  "$CTL_PY" -c 'import grpc, google.protobuf, rados, rbd' 2>/dev/null \
    || rbd_skip "$CTL_PY lacks grpc, protobuf, rados or rbd"
  local c
  for c in jq protoc ceph-authtool; do command -v "$c" >/dev/null 2>&1 || rbd_skip "missing command: $c"; done
  rbd_setup
  cp "$CSI_CONTROLLER_BIN" "$TMPD/rbd-nbdd-csi-controller" || fail "cannot copy $CSI_CONTROLLER_BIN"
  CTL_BIN=$TMPD/rbd-nbdd-csi-controller
  CTL_MON=$(sed -E 's/.*v2:([0-9.]+:[0-9]+).*/\1/' <<< "$CEPH_MON_HOST")
  [[ "$CTL_MON" =~ ^[0-9.]+:[0-9]+$ ]] || fail "no mon address in CEPH_MON_HOST=$CEPH_MON_HOST"
  CTL_CONFIG=$TMPD/config.json
  # dev: the mon as a bare IP:PORT (as ceph-csi configs give it); dev2: the same mon as
  # v2:IP:PORT (msgr2: cephx refuses a wrong key at once, where v1 retries until the mount
  # timeout); dead: monitors nobody listens on. Read on every call.
  printf '[{"clusterID": "dev", "monitors": ["%s"]}, {"clusterID": "dev2", "monitors": ["v2:%s"]}, {"clusterID": "dead", "monitors": ["127.0.0.1:9"]}]\n' \
    "$CTL_MON" "$CTL_MON" > "$CTL_CONFIG"
  KUBE_KEY=$(keyring_key "$CEPH_KUBE_KEYRING")
  ADMIN_KEY=$(keyring_key "$CEPH_KEYRING")
  [ -n "$KUBE_KEY" ] && [ -n "$ADMIN_KEY" ] || fail "no key in $CEPH_KUBE_KEYRING or $CEPH_KEYRING"
  KUBE_SECRETS=$TMPD/kube.json ADMIN_SECRETS=$TMPD/admin.json
  secrets_file "$KUBE_SECRETS" kube "$KUBE_KEY"
  secrets_file "$ADMIN_SECRETS" admin "$ADMIN_KEY"
  t 120 "$CTL_PY" "$ROOT/tests/csi/gen_stubs.py" > /dev/null 2> "$TMPD/gen.err" \
    || { cat "$TMPD/gen.err" >&2; fail "generating the Python stubs from $CSI_PROTO failed"; }
  _ctl_repl_start
  on_exit _ctl_repl_stop
  on_exit _ctl_admin_cleanup
  ctl_state
  CTL_BASELINE=$CTL_STATE
  log "controller $CSI_CONTROLLER_BIN, cluster dev = $CTL_MON, names tagged $TAG"
}

_ctl_repl_start() {
  local req=$TMPD/repl.in resp=$TMPD/repl.out
  mkfifo -m 600 "$req" "$resp"
  "$CTL_PY" "$CTL_CLIENT" repl < "$req" > "$resp" 2>> "$TMPD/client.err" &
  _CTL_REPL_PID=$!
  exec {_CTL_REQ_FD}> "$req"
  exec {_CTL_RESP_FD}< "$resp"
}

# The repl never sees EOF (processes started later inherit the write end): SIGTERM it.
_ctl_repl_stop() {
  [ -z "$_CTL_REQ_FD" ] || exec {_CTL_REQ_FD}>&-
  [ -z "$_CTL_RESP_FD" ] || exec {_CTL_RESP_FD}<&-
  _CTL_REQ_FD='' _CTL_RESP_FD=''
  [ -z "$_CTL_REPL_PID" ] || term_wait "$_CTL_REPL_PID" 5
}

# ---------------------------------------------------------------------------------------
# The controller
# ---------------------------------------------------------------------------------------
CTL_SOCK=
# ctl_start [ARGS...] : a controller on $TMPD/ctl.sock (log $TMPD/ctl.N.log), no CEPH_* in
# its environment; ready once GetPluginInfo answers OK. CTL_PID, CTL_LOG.
ctl_start() {
  if [ -n "$CTL_PID" ] && _alive "$CTL_PID"; then fail "ctl_start: one runs already (pid $CTL_PID)"; fi
  _CTL_N=$((_CTL_N + 1))
  [ "$_CTL_N" != 1 ] || on_exit _ctl_teardown
  CTL_SOCK=$TMPD/ctl.sock
  CTL_LOG=$TMPD/ctl.$_CTL_N.log
  CTL_LOGS+=("$CTL_LOG")
  local -a args=(--endpoint "unix://$CTL_SOCK" --cluster-config "$CTL_CONFIG" --log-level debug "$@")
  log "starting: rbd-nbdd-csi-controller ${args[*]}"
  local t0=$EPOCHREALTIME
  start_ready rbd-nbdd-csi-controller "$CTL_LOG" 30 _ctl_ready \
    -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_ARGS -u CEPH_MON_HOST -u CEPH_KUBE_KEYRING "$CTL_BIN" "${args[@]}"
  CTL_PID=$STARTED_PID
  log "controller ready (pid $CTL_PID) in $(_secs_since "$t0") s"
}
_ctl_ready() { [ -S "$CTL_SOCK" ] && _ctl_send R "" --timeout 5 call GetPluginInfo && [ "$_CODE" = OK ]; }

# ctl_stop : SIGTERM; it must exit 0 within 30 s with no crash in its log.
ctl_stop() {
  [ -n "$CTL_PID" ] && _alive "$CTL_PID" || fail "ctl_stop: the controller (pid ${CTL_PID:-none}) is not running"
  local pid=$CTL_PID
  CTL_PID=
  stop_checked rbd-nbdd-csi-controller "$pid" "$CTL_LOG" 30
}

# ctl_kill9 : SIGKILL, as a crashed or evicted pod.
ctl_kill9() {
  kill -KILL "$CTL_PID" 2>/dev/null || fail "ctl_kill9: no controller"
  wait "$CTL_PID" 2>/dev/null || true
  log "controller $CTL_PID killed with SIGKILL"
  CTL_PID=
}

_secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------
# _ctl_send OP STDIN ARG... : one repl line; the answer in _RC _CODE _ELAPSED _DETAILS _OUT _ERR.
_ctl_send() {
  local op=$1 stdin=$2 line IFS=$'\x1f'
  shift 2
  _RC=2 _CODE='' _ELAPSED='' _DETAILS='' _OUT='' _ERR=''
  if [ -z "$_CTL_REQ_FD" ] || ! _alive "$_CTL_REPL_PID"; then _ERR="the CSI client (repl) is not running"; return 2; fi
  printf '%s\n' "$op$IFS$stdin$IFS--endpoint$IFS"unix://$CTL_SOCK"$IFS$*" >&"$_CTL_REQ_FD" \
    || { _ERR="the CSI client (repl) is gone"; return 2; }
  IFS= read -r -t 300 -u "$_CTL_RESP_FD" line || { _ERR="no answer from the CSI client in 300 s"; return 2; }
  IFS=$'\x1f' read -r _RC _CODE _ELAPSED _DETAILS _OUT _ERR <<< "$line"
}

# ctl METHOD EXPECT [JSON] [SECRETS_FILE] : one call; EXPECT is a code or codes joined by |
# (ANY: any). Sets CTL_LAST (the result line: method, code, details, elapsed, response),
# CTL_CODE, CTL_DETAILS, CTL_ELAPSED; logs it; fails the test on another code. Created
# volumes and snapshots are recorded for the teardown.
ctl() {
  local method=$1 expect=$2 json=${3:-'{}'} sec=${4:-}
  local -a args=(--expect ANY call "$method" "$json")
  [ -z "$sec" ] || args+=(--secrets "$sec")
  _ctl_send R "" "${args[@]}" || true
  CTL_LAST=${_OUT%%$'\x1e'*} CTL_CODE=$_CODE CTL_DETAILS=$_DETAILS CTL_ELAPSED=$_ELAPSED
  [ -n "$CTL_CODE" ] || fail "ctl $method: the client failed (rc $_RC): ${_ERR//$'\x1e'/ }"
  log "ctl $method -> $CTL_CODE (${CTL_ELAPSED}s)${CTL_DETAILS:+: ${CTL_DETAILS:0:300}}"
  if [ "$CTL_CODE" = OK ]; then
    case $method in
      CreateVolume) printf 'V %s %s\n' "$(ctl_resp .volume.volume_id)" "${sec:-$KUBE_SECRETS}" >> "$TMPD/created" ;;
      CreateSnapshot) printf 'S %s %s\n' "$(ctl_resp .snapshot.snapshot_id)" "${sec:-$KUBE_SECRETS}" >> "$TMPD/created" ;;
    esac
  fi
  [ "$expect" = ANY ] || [[ "|$expect|" == *"|$CTL_CODE|"* ]] \
    || fail "$method: expected $expect, got $CTL_CODE${CTL_DETAILS:+ ($CTL_DETAILS)}; request: $(_redact "$json")"
}

# _redact JSON : a request for a message, without secrets (tests put none in JSON anyway).
_redact() { jq -c 'del(.secrets)' <<< "$1" 2>/dev/null || echo "(unparsable request)"; }

# ctl_resp JQ : a field of the last call's response ('' when null).
ctl_resp() { jq -r "(.response | $1) // empty" <<< "$CTL_LAST"; }

# details_has WHAT ERE... : the last call's message matches each ERE (case-insensitive).
details_has() {
  local what=$1 re
  shift
  for re in "$@"; do
    grep -qiE -- "$re" <<< "$CTL_DETAILS" || fail "$what: the message does not match /$re/: '$CTL_DETAILS'"
  done
}

# ctl_batch SECRETS_FILE [--parallel] : JSON lines {name, method, request, expect} on stdin,
# one client run (threads with --parallel); each request gets the file's secrets (jq reads
# the file: the key goes on no command line). Result lines in the file CTL_BATCH; fails on a
# code other than a line's expect.
ctl_batch() {
  local sec=$1 lines l
  shift
  lines=$(jq -c --rawfile s "$sec" '.request.secrets = ($s | fromjson)' | tr '\n' '\036')
  _ctl_send R "$lines" batch "$@" || true
  CTL_BATCH=$TMPD/batch.$RANDOM.json
  tr '\036' '\n' <<< "$_OUT" > "$CTL_BATCH"
  jq -r '"ctl \(.name): \(.method) -> \(.code) (\(.elapsed)s)\(if .details != "" then ": " + .details[0:200] else "" end)"' \
    "$CTL_BATCH" | while IFS= read -r l; do log "$l"; done
  jq -r --arg f "$sec" 'select(.code == "OK") | if .method == "CreateVolume" then "V \(.response.volume.volume_id) \($f)"
         elif .method == "CreateSnapshot" then "S \(.response.snapshot.snapshot_id) \($f)" else empty end' \
    "$CTL_BATCH" >> "$TMPD/created"
  [ "$_RC" = 0 ] || fail "batch: $(tr '\036' ' ' <<< "$_ERR")"
}

# ---------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------
mount_cap() { printf '{"mount": {"fs_type": "%s"}, "access_mode": {"mode": "%s"}}' "${1:-ext4}" "${2:-SINGLE_NODE_WRITER}"; }
block_cap() { printf '{"block": {}, "access_mode": {"mode": "%s"}}' "${1:-SINGLE_NODE_WRITER}"; }

# vol_req NAME BYTES [PARAMS_JSON_MEMBERS] [EXTRA_TOP_MEMBERS] : a CreateVolume request in
# pool kube of cluster dev; more parameters as '"k": "v", ...', more fields likewise.
vol_req() {
  local p='"clusterID": "dev", "pool": "'$CTL_POOL'"'
  [ -z "${3:-}" ] || p+=", $3"
  printf '{"name": "%s", "capacity_range": {"required_bytes": "%s"}, "volume_capabilities": [%s], "parameters": {%s}%s}' \
    "$1" "$2" "$(mount_cap)" "$p" "${4:+, $4}"
}
snap_req() {
  local p=''
  [ -z "${3:-}" ] || p=", \"parameters\": {$3}"
  printf '{"name": "%s", "source_volume_id": "%s"%s}' "$1" "$2" "$p"
}

# ---------------------------------------------------------------------------------------
# What is in Ceph (as client.admin)
# ---------------------------------------------------------------------------------------
# ctl_state : CTL_STATE = images, trash entries, journal keys of pool kube (and CTL_NS), pools.
ctl_state() {
  local -a ns=()
  local n
  for n in "${CTL_NS[@]}"; do ns+=(--ns "$n"); done
  CTL_STATE=$(t 60 "$CTL_PY" "$CTL_CHECK" state --pool "$CTL_POOL" "${ns[@]}") || fail "controller_check.py state failed"
}

# assert_unchanged WHAT : nothing appeared or vanished since the last ctl_state.
assert_unchanged() {
  local before=$CTL_STATE
  ctl_state
  if [ "$before" != "$CTL_STATE" ]; then
    fail "$1 changed Ceph: $(diff <(echo "$before") <(echo "$CTL_STATE") | grep '^[<>]' | tr '\n' ';')"
  fi
}

# rbd_json ARGS... : rbd ... --format json as admin.
rbd_json() { rbd_cli "$@" --format json; }
# img_field SPEC JQ : a field of `rbd info`.
img_field() { rbd_json info "$1" | jq -r "$2 // empty"; }
# img_features SPEC : features, sorted, comma-separated.
img_features() { rbd_json info "$1" | jq -r '.features | sort | join(",")'; }
sorted_list() { tr ',' '\n' <<< "$1" | sort | paste -sd, -; }

# head_sha SPEC [BYTES] : sha256 of the first BYTES (1 MiB) of an image or snapshot, as
# `rbd export` reads them (rbd fails with EPIPE when head stops reading: only the length counts).
head_sha() {
  local n=${2:-$MiB} f=$TMPD/head.bin
  { t 120 rbd export --no-progress "$1" - 2>/dev/null || true; } | head -c "$n" > "$f"
  [ "$(stat -c %s "$f")" = "$n" ] || fail "rbd export $1 gave $(stat -c %s "$f") bytes, not $n"
  sha256sum < "$f" | cut -d' ' -f1
}

# luks_version SPEC : 1 or 2 from the LUKS header at offset 0 of the image (as `rbd export`
# reads it), or what is there instead.
luks_version() {
  local hdr
  hdr=$({ t 60 rbd export --no-progress "$1" - 2>/dev/null || true; } | head -c 8 | od -An -tx1 | tr -d ' \n')
  case $hdr in 4c554b53babe0001) echo 1 ;; 4c554b53babe0002) echo 2 ;; *) echo "no LUKS header: '$hdr'" ;; esac
}

# uuid_of ID : the last 32-hex part of a volume or snapshot id.
uuid_of() { echo "${1##*.}"; }

# journal_value POOL[/NS] OBJECT KEY : the journal record (empty if none).
journal_value() {
  local pool=${1%%/*} ns=''
  [[ "$1" != */* ]] || ns=${1#*/}
  rm -f "$TMPD/omapval"
  t 60 rados -p "$pool" ${ns:+-N "$ns"} getomapval "$2" "$3" "$TMPD/omapval" >/dev/null 2>&1 || return 0
  cat "$TMPD/omapval"
}

# ctl_get_capacity : GetCapacity of pool kube, once a call taught the controller credentials.
# With pool statistics in `ceph df` (a ceph-mgr runs): OK, > 0 and within 10% of the pool's
# max_avail. Without them (the dev cluster runs no mgr, and the monitors learn usage from
# one): a refusal whose message names the missing statistics, never a made-up number and
# never the "no credentials" answer. CTL_CAPACITY: the bytes, or "none".
ctl_get_capacity() {
  local want
  want=$(ceph_cli df --format json | jq -r --arg p "$CTL_POOL" '[.pools[] | select(.name == $p) | .stats.max_avail][0] // "none"')
  if [ "$want" != none ]; then
    ctl GetCapacity OK '{"parameters": {"clusterID": "dev", "pool": "'$CTL_POOL'"}}'
    CTL_CAPACITY=$(ctl_resp '.available_capacity // 0')
    [ "$CTL_CAPACITY" -gt 0 ] && awk -v a="$CTL_CAPACITY" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b / 10) }' \
      || fail "GetCapacity: $CTL_CAPACITY, ceph df max_avail of $CTL_POOL: $want"
    log "GetCapacity: $CTL_CAPACITY bytes (ceph df max_avail: $want)"
  else
    ctl GetCapacity UNAVAILABLE '{"parameters": {"clusterID": "dev", "pool": "'$CTL_POOL'"}}'
    details_has "GetCapacity without pool statistics" "$CTL_POOL" 'mgr|usage|statistic|stats'
    if grep -qiE 'no credential' <<< "$CTL_DETAILS"; then fail "GetCapacity still has no credentials: $CTL_DETAILS"; fi
    CTL_CAPACITY=none
    log "ceph df has no statistics for pool $CTL_POOL (no ceph-mgr): GetCapacity refused with $CTL_CODE, naming why"
  fi
}

# ctl_assert_clean : Ceph is as the test found it: no image, trash entry or journal key
# (of pool kube and the namespaces the test made) that was not there before.
ctl_assert_clean() {
  ctl_state
  local diff
  diff=$(comm -3 <(echo "$CTL_BASELINE") <(echo "$CTL_STATE"))
  [ -z "$diff" ] || fail "Ceph differs from before the test (tab: new): $(tr '\n' ';' <<< "$diff")"
  log "pool $CTL_POOL${CTL_NS[*]:+ (and namespaces ${CTL_NS[*]})}: no image, trash entry or journal key left"
}

# ctl_assert_no_leak SECRETS_FILE... : no key or passphrase of these files in any controller
# log, nor in the running controller's argv or environment (grep reads them from a file).
ctl_assert_no_leak() {
  local pat=$TMPD/leak.pat f hits
  (umask 077; : > "$pat")
  for f; do jq -r '.userKey, (.encryptionPassphrase // empty)' "$f" >> "$pat"; done
  [ -s "$pat" ] || fail "ctl_assert_no_leak: no secrets to look for"
  grep -qF -f "$pat" "$1" || fail "ctl_assert_no_leak: the patterns do not even match $1"
  hits=$(grep -lF -f "$pat" "${CTL_LOGS[@]}" "$TMPD/client.err" 2>/dev/null || true)
  if [ -n "$CTL_PID" ]; then
    grep -qF -f "$pat" "/proc/$CTL_PID/cmdline" && hits+=" /proc/$CTL_PID/cmdline"
    tr '\0' '\n' < "/proc/$CTL_PID/environ" | grep -qF -f "$pat" && hits+=" /proc/$CTL_PID/environ"
    local ce
    ce=$(tr '\0' '\n' < "/proc/$CTL_PID/environ" | { grep -o '^CEPH_[A-Z_]*' || true; } | paste -sd' ')
    [ -z "$ce" ] || fail "the controller's environment has $ce"
  fi
  rm -f "$pat"
  [ -z "$hits" ] || fail "a key or passphrase appears in:$hits"
  log "no key or passphrase in the controller's logs ($(cat "${CTL_LOGS[@]}" | wc -l) lines), argv or environment"
}

# ---------------------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------------------
# Whatever the test created and did not delete (it failed half-way): through the
# controller while one runs (snapshots first, then volumes, twice: clones go first).
_ctl_teardown() {
  if [ -n "$CTL_PID" ] && _alive "$CTL_PID" && [ -s "$TMPD/created" ]; then
    local kind id sec round
    for round in 1 2; do
      while read -r kind id sec; do
        [ "$kind" = S ] && _ctl_send R "" call DeleteSnapshot "{\"snapshot_id\": \"$id\"}" --secrets "$sec"
      done < "$TMPD/created"
      while read -r kind id sec; do
        [ "$kind" = V ] && _ctl_send R "" call DeleteVolume "{\"volume_id\": \"$id\"}" --secrets "$sec"
      done < "$TMPD/created"
    done
  fi
  [ -z "$CTL_PID" ] || term_wait "$CTL_PID" 20
  CTL_PID=
  if [ "$EXIT_RC" != 0 ] && [ "$EXIT_RC" != 77 ] && [ -n "$CTL_LOG" ]; then
    show_log_tail "$CTL_LOG" 60
    # Every controller's whole log outlives the test's temp dir (a race's story is
    # rarely in the last one's tail).
    local keep=$ROOT/build/test-logs/$TEST_NAME-controller-logs
    if mkdir -p "$keep" 2>/dev/null && cp "${CTL_LOGS[@]}" "$keep/" 2>/dev/null; then
      log "the controllers' logs are kept in $keep"
    fi
  fi
  return 0
}

# Last: as admin, whatever is there that was not before the test (images, trash entries,
# journal keys), and the namespaces it made.
_ctl_admin_cleanup() {
  [ -n "${CTL_BASELINE:-}" ] || return 0
  local now kind rest pass
  for pass in 1 2 3 4; do
    ctl_state 2>/dev/null || return 0
    now=$(comm -13 <(echo "$CTL_BASELINE") <(echo "$CTL_STATE"))
    [ -n "$now" ] || break
    # a killed controller's watch holds its images for the OSD's watch timeout (30 s)
    if [ "$pass" = 1 ]; then log "cleanup: left in Ceph: $(tr '\n' ';' <<< "$now")"; else nap 10; fi
    while read -r kind rest; do
      local where=${rest%% *} pool ns
      pool=${where%%/*}; ns=${where#*/}; ns=${ns%%/*}
      local -a nsa=()
      [ -z "$ns" ] || nsa=(--namespace "$ns")
      case $kind in
        image) rbd_remove "$pool/${ns:+$ns/}${where##*/}" ;;
        trash) t 60 rbd snap purge --pool "$pool" "${nsa[@]}" --image-id "${rest##* }" >/dev/null 2>&1
               t 60 rbd trash rm --pool "$pool" "${nsa[@]}" "${rest##* }" >/dev/null 2>&1 ;;
        key) t 30 rados -p "$pool" ${ns:+-N "$ns"} rmomapkey "${where##*/}" "${rest#* }" >/dev/null 2>&1 ;;
      esac
    done <<< "$now"
  done
  local n
  for n in "${CTL_NS[@]}"; do t 30 rbd namespace remove "$CTL_POOL/$n" >/dev/null 2>&1; done
  return 0
}
