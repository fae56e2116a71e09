# tests/lib/common.sh - shared helpers for tests/interop/*.sh (and bench/).
#
# Source it first thing:   . "$(dirname "$0")/../lib/common.sh"
#
# Conventions (nbdkit-style): one behaviour per script, exit 0 = pass, 1 = fail, 77 = skip.
# Everything a test starts is torn down from the EXIT trap installed here; every external
# command is bounded with `t SECS cmd...` (a thin wrapper around timeout(1)).
#
# Settings (environment):
#   RBDNBD        the rbd-nbdd binary     (default: $ROOT/build/gateway/control/rbd-nbdd)
#   NBD_SERVER    rbd-nbdd | nbdkit       (default: rbd-nbdd). "nbdkit" runs the same
#                 scripts against nbdkit, translating the export specs; it exists to prove
#                 the test logic against a reference server. Specs nbdkit can't express
#                 make the test skip (77) in that mode only.
#   T_START       seconds to wait for the server's socket      (default 30)
#   T_STOP        seconds to wait for the server to exit       (default 60)
#   KEEP_TMP=1    keep the per-test temporary directory
#
# After start_server: SERVER_PID, SERVER_SOCK, SERVER_LOG are set, and
# `uri NAME` prints nbd+unix:///NAME?socket=$SERVER_SOCK.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Debian's python3 first: the nbdsh wrapper and our python helpers need its modules
# (python3-libnbd); a pyenv python3 earlier on PATH lacks them.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C

RBDNBD=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
NBD_SERVER=${NBD_SERVER:-rbd-nbdd}
T_START=${T_START:-30}
T_STOP=${T_STOP:-60}
TEST_NAME=$(basename "$0" .sh)

SERVER_PID=
SERVER_SOCK=
SERVER_LOG=
BG_PIDS=()
CLEANUP_HOOKS=()

# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------
log()  { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2; exit 77; }
pass() { printf '[%s] PASS%s\n' "$TEST_NAME" "${1:+: $*}" >&2; exit 0; }

# t SECS CMD... : run CMD bounded by SECS (TERM, then KILL 5 s later). A timeout is
# reported as such so that a hang is never mistaken for an ordinary failure.
t() {
  local secs=$1; shift
  local rc=0
  timeout --kill-after=5 "$secs" "$@" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "TIMEOUT after ${secs}s: $*"
  fi
  return "$rc"
}

require_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "missing command: $c"; done
}

# ---------------------------------------------------------------------------------------
# Temporary directory and cleanup
# ---------------------------------------------------------------------------------------
# Unix socket paths are limited to 107 bytes: keep the directory short.
TMPD=$(mktemp -d "/tmp/rbdnbd-${TEST_NAME:0:20}.XXXXXX")
cd "$TMPD"   # anything a tool drops in its working directory lands here

on_cleanup() { CLEANUP_HOOKS+=("$*"); }

_cleanup() {
  local rc=$?
  set +e
  local h p
  for h in "${CLEANUP_HOOKS[@]}"; do eval "$h"; done
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "$SERVER_PID" ] && _alive "$SERVER_PID"; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    _wait_exit "$SERVER_PID" 10 || kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG" ]; then
    printf '[%s] ---- last 40 lines of the server log (%s) ----\n' "$TEST_NAME" "$SERVER_LOG" >&2
    tail -n 40 "$SERVER_LOG" >&2
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMPD"; else rm -rf "$TMPD"; fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A process that exited but was not yet reaped is a zombie: kill -0 still succeeds on it,
# so look at its state instead.
_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# _wait_exit PID SECS : poll until PID has exited (or SECS pass). 0 if it exited.
_wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while _alive "$pid"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
  return 0
}

# bg CMD... : run a bounded background command, remember it for cleanup, set BG_PID.
bg() {
  "$@" &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# ---------------------------------------------------------------------------------------
# Server lifecycle
# ---------------------------------------------------------------------------------------
# start_server [serve options...]
#   Options are rbd-nbdd serve's: --export SPEC (repeatable), --workers N, --log-level L.
#   --socket is added here (a fresh Unix socket under $TMPD).
start_server() {
  local n=${#SERVER_STARTS[@]}
  SERVER_SOCK="$TMPD/nbd$n.sock"
  SERVER_LOG="$TMPD/server$n.log"
  SERVER_STARTS+=("$n")
  case "$NBD_SERVER" in
    rbd-nbdd)
      [ -x "$RBDNBD" ] || fail "rbd-nbdd binary not found at $RBDNBD (build first, or set RBDNBD)"
      log "starting: rbd-nbdd serve --socket $SERVER_SOCK $*"
      "$RBDNBD" serve --socket "$SERVER_SOCK" --log-level "${LOG_LEVEL:-info}" "$@" \
        >"$SERVER_LOG" 2>&1 </dev/null &
      SERVER_PID=$!
      ;;
    nbdkit)
      require_cmd nbdkit
      local -a cmd
      _nbdkit_cmd "$@"
      log "starting (nbdkit emulation): ${cmd[*]}"
      "${cmd[@]}" >"$SERVER_LOG" 2>&1 </dev/null &
      SERVER_PID=$!
      ;;
    *) fail "unknown NBD_SERVER=$NBD_SERVER" ;;
  esac
  local deadline=$((SECONDS + T_START))
  until [ -S "$SERVER_SOCK" ]; do
    if ! _alive "$SERVER_PID"; then
      local rc=0; wait "$SERVER_PID" || rc=$?
      SERVER_PID=
      fail "server exited (rc=$rc) before its socket appeared"
    fi
    [ "$SECONDS" -ge "$deadline" ] && fail "server socket $SERVER_SOCK did not appear within ${T_START}s"
    sleep 0.05
  done
  log "server ready (pid $SERVER_PID)"
}
SERVER_STARTS=()

# stop_server : SIGTERM, bounded wait, the exit code must be 0 and the log must hold no
# sanitizer report. Sets SERVER_RC.
stop_server() {
  [ -n "$SERVER_PID" ] || fail "stop_server: no server running"
  server_alive || fail "server (pid $SERVER_PID) died before stop_server"
  kill -TERM "$SERVER_PID"
  wait_server_exit
}

# wait_server_exit : the server was told to stop (SIGTERM sent by someone): wait for it,
# bounded by T_STOP, then check as stop_server does.
wait_server_exit() {
  [ -n "$SERVER_PID" ] || fail "wait_server_exit: no server running"
  if ! _wait_exit "$SERVER_PID" "$T_STOP"; then
    kill -ABRT "$SERVER_PID" 2>/dev/null || true
    _wait_exit "$SERVER_PID" 5 || kill -KILL "$SERVER_PID" 2>/dev/null || true
    fail "server did not exit within ${T_STOP}s of SIGTERM"
  fi
  SERVER_RC=0
  wait "$SERVER_PID" || SERVER_RC=$?
  local pid=$SERVER_PID
  SERVER_PID=
  check_server_log
  [ "$SERVER_RC" = 0 ] || fail "server (pid $pid) exited with $SERVER_RC after SIGTERM, expected 0"
  log "server exited 0 after SIGTERM"
}

# server_alive : 0 if the server is still running.
server_alive() { [ -n "$SERVER_PID" ] && _alive "$SERVER_PID"; }

# check_server_log : fail on sanitizer reports or crash traces in the server log.
check_server_log() {
  [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ] || return 0
  if grep -nE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Segmentation fault|terminate called' \
      "$SERVER_LOG" >&2; then
    fail "sanitizer report or crash in the server log"
  fi
}

# uri NAME : the NBD URI of export NAME on the running server's Unix socket.
uri() { printf 'nbd+unix:///%s?socket=%s' "${1:-}" "$SERVER_SOCK"; }

# ---------------------------------------------------------------------------------------
# nbdkit emulation of `rbd-nbdd serve` (only to validate test logic against a reference).
# ---------------------------------------------------------------------------------------
_spec_get() {  # _spec_get SPEC KEY -> value ("1" for a bare flag), or nothing
  local IFS=, kv
  for kv in $1; do
    case "$kv" in
      "$2") echo 1; return ;;
      "$2"=*) echo "${kv#*=}"; return ;;
    esac
  done
}

_nbdkit_cmd() {  # fills the caller's array `cmd`
  local -a specs=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --export) specs+=("$2"); shift 2 ;;
      --export=*) specs+=("${1#*=}"); shift ;;
      --workers|--log-level|--pid-file|--drain-timeout) shift 2 ;;
      *) skip "nbdkit emulation: unsupported option $1" ;;
    esac
  done
  [ ${#specs[@]} -ge 1 ] || fail "start_server: no --export"
  cmd=(nbdkit -f -U "$SERVER_SOCK")
  local s
  if [ ${#specs[@]} = 1 ]; then
    s=${specs[0]}
    [ -n "$(_spec_get "$s" read-only)" ] && cmd+=(-r)
    local -a params=()   # filter parameters go after the plugin name
    local d dr dw
    d=$(_spec_get "$s" delay); dr=$(_spec_get "$s" delay-read); dw=$(_spec_get "$s" delay-write)
    dr=${dr:-$d}; dw=${dw:-$d}
    if [ -n "$dr$dw" ]; then
      cmd+=(--filter=delay)
      [ -n "$dr" ] && params+=("delay-read=$dr")
      [ -n "$dw" ] && params+=("delay-write=$dw" "delay-zero=$dw" "delay-trim=$dw")
    fi
    local fe; fe=$(_spec_get "$s" fault-errno)
    if [ -n "$fe" ]; then
      [ -n "$(_spec_get "$s" fault-every)$(_spec_get "$s" fault-range)" ] \
        && skip "nbdkit emulation: fault-every/fault-range"
      local rate ops op; rate=$(_spec_get "$s" fault-rate); rate=${rate:-1}
      ops=$(_spec_get "$s" fault-ops); ops=${ops:-all}
      cmd+=(--filter=error)
      params+=("error=$fe")
      if [ "$ops" = all ]; then
        params+=("error-rate=$rate")
      else
        for op in ${ops//+/ }; do
          case "$op" in
            read) params+=("error-pread-rate=$rate") ;;
            write) params+=("error-pwrite-rate=$rate") ;;
            *) params+=("error-$op-rate=$rate") ;;
          esac
        done
      fi
      local ft; ft=$(_spec_get "$s" fault-trigger)
      [ -n "$ft" ] && params+=("error-file=$ft")
    fi
    case "$(_spec_get "$s" backend)" in
      memory) cmd+=(memory "$(_spec_get "$s" size)") ;;
      file) cmd+=(file "$(_spec_get "$s" path)") ;;
      *) skip "nbdkit emulation: backend in '$s'" ;;
    esac
    cmd+=("${params[@]}")
    return
  fi
  # Several exports: nbdkit's file plugin in dir= mode serves one export per file.
  local dir="$TMPD/nbdkit-exports"
  mkdir -p "$dir"
  for s in "${specs[@]}"; do
    local name; name=$(_spec_get "$s" name)
    [ -n "$name" ] || skip "nbdkit emulation: unnamed export among several"
    case "$s" in *read-only*|*delay=*|*fault-*) skip "nbdkit emulation: per-export options in '$s'" ;; esac
    case "$(_spec_get "$s" backend)" in
      memory) truncate -s "$(_spec_get "$s" size)" "$dir/$name" ;;
      file) ln -s "$(_spec_get "$s" path)" "$dir/$name" ;;
      *) skip "nbdkit emulation: backend in '$s'" ;;
    esac
  done
  cmd+=(file "dir=$dir")
}

# ---------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------
sha256() { t 300 sha256sum "$1" | awk '{print $1}'; }

# random_file PATH MIB : PATH gets MIB MiB from /dev/urandom.
random_file() {
  t 300 dd if=/dev/urandom of="$1" bs=1M count="$2" iflag=fullblock status=none
}

# make_scratch : SCRATCH = a fresh tmpfs directory for large data (RAM-backed: fast, no
# disk wear), removed on exit.
make_scratch() {
  SCRATCH=$(mktemp -d /dev/shm/rbdnbd-test.XXXXXX)
  on_cleanup "rm -rf '$SCRATCH'"
}
