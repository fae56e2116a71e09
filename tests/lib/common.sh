# tests/lib/common.sh - the host half of the shell test library, for tests/interop/*.sh
# and tests/integration/*.sh. The core (log/fail/skip/pass, t, on_exit, _alive, start_ready,
# ...) is tests/lib/core.sh, shared with the e2e scenarios (tests/e2e/lib.sh).
#
# Source it first thing:   . "$(dirname "$0")/../lib/common.sh"
#
# Conventions (nbdkit-style): one behaviour per script, exit 0 = pass, 1 = fail, 77 = skip.
# Everything a test starts is torn down from the EXIT trap: register it with `on_exit CMD`
# right after it exists (hooks run last-registered first; start_server and bg register
# their own); every external command is bounded with `t SECS cmd...`.
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
# shellcheck source=core.sh
. "$ROOT/tests/lib/core.sh"

RBDNBD=${RBDNBD:-$ROOT/build/gateway/control/rbd-nbdd}
NBD_SERVER=${NBD_SERVER:-rbd-nbdd}
T_START=${T_START:-30}
T_STOP=${T_STOP:-60}

SERVER_PID=
SERVER_SOCK=
SERVER_LOG=
_SERVER_N=0

# ---------------------------------------------------------------------------------------
# Temporary directory and the last teardown step
# ---------------------------------------------------------------------------------------
# Unix socket paths are limited to 107 bytes: keep the directory short.
TMPD=$(mktemp -d "/tmp/rbdnbd-${TEST_NAME:0:20}.XXXXXX")
cd "$TMPD"   # anything a tool drops in its working directory lands here

# Registered first, so it runs last: after every hook, the server's log (on failure) and
# the temporary directory it lives in.
_host_finish() {
  term_wait "$SERVER_PID" 10
  if [ "$EXIT_RC" != 0 ] && [ "$EXIT_RC" != 77 ]; then show_log_tail "$SERVER_LOG"; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMPD"; else rm -rf "$TMPD"; fi
}
on_exit _host_finish

# ---------------------------------------------------------------------------------------
# Server lifecycle
# ---------------------------------------------------------------------------------------
# start_server [serve options...]
#   Options are rbd-nbdd serve's: --export SPEC (repeatable), --workers N, --log-level L.
#   --socket is added here (a fresh Unix socket under $TMPD). Stopped at exit if it runs.
start_server() {
  local n=$_SERVER_N
  _SERVER_N=$((n + 1))
  SERVER_SOCK="$TMPD/nbd$n.sock"
  SERVER_LOG="$TMPD/server$n.log"
  local -a cmd
  case "$NBD_SERVER" in
    rbd-nbdd)
      [ -x "$RBDNBD" ] || fail "rbd-nbdd binary not found at $RBDNBD (build first, or set RBDNBD)"
      cmd=("$RBDNBD" serve --socket "$SERVER_SOCK" --log-level "${LOG_LEVEL:-info}" "$@")
      log "starting: rbd-nbdd serve --socket $SERVER_SOCK $*"
      ;;
    nbdkit)
      require_cmd nbdkit
      _nbdkit_cmd "$@"
      log "starting (nbdkit emulation): ${cmd[*]}"
      ;;
    *) fail "unknown NBD_SERVER=$NBD_SERVER" ;;
  esac
  start_ready server "$SERVER_LOG" "$T_START" test -S "$SERVER_SOCK" -- "${cmd[@]}"
  SERVER_PID=$STARTED_PID
  on_exit "term_wait $SERVER_PID 10"
  log "server ready (pid $SERVER_PID)"
}

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
  local pid=$SERVER_PID
  SERVER_PID=
  wait_checked server "$pid" "$SERVER_LOG" "$T_STOP"
  SERVER_RC=$STOPPED_RC
}

# server_alive : 0 if the server is still running.
server_alive() { [ -n "$SERVER_PID" ] && _alive "$SERVER_PID"; }

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
  on_exit "rm -rf '$SCRATCH'"
}
