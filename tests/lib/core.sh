# shellcheck shell=bash
# tests/lib/core.sh - the core of the one shell test library. Sourced by
#   tests/lib/common.sh   host tests (interop, integration) and its helpers
#   tests/e2e/lib.sh      the e2e scenarios, INSIDE the user-mode Linux guest
#   bench/*.sh, deploy/quickstart.sh   for the start/stop and /proc helpers
# and never run on its own. It sets no shell options (the callers choose set -e or not);
# every function works under both.
#
# Contract:
#   - The EXIT trap is core's: register teardown with `on_exit CMD` right after the thing
#     exists, never `trap ... EXIT`. Hooks run in REVERSE order of registration (what was
#     made last is undone first: umount before disconnect before the server stops), on
#     every exit: pass, fail, skip, a command failing under set -e, SIGTERM, SIGINT. Each
#     hook runs with set +eu, and the other hooks still run after it. A hook that returns
#     non-zero is only logged (teardown is best effort; the checks that count are made
#     before `pass`); one that calls `fail` makes the exit code 1. A hook may read and
#     change EXIT_RC (the code the script will exit with).
#   - Exit codes: 0 pass, 1 fail, 77 skip.
#   - Everything that polls (_alive, _wait_exit, wait_until, nap, proc_stat, start_ready's
#     loop) uses shell builtins only: in the UML guest an exec costs up to a second.
#   - Processes are children of this shell: `wait` reaps them and gives their exit code.
#
# Settings (environment, or set before sourcing):
#   TEST_NAME      the prefix of log lines (default: the script's name without .sh)
#   T_KILL_AFTER   seconds `t` waits after TERM before KILL (default 5)

TEST_NAME=${TEST_NAME:-${0##*/}}
TEST_NAME=${TEST_NAME%.sh}
T_KILL_AFTER=${T_KILL_AFTER:-5}

# ---------------------------------------------------------------------------------------
# Reporting and bounded commands
# ---------------------------------------------------------------------------------------
# log MSG... : one line on stderr. tests/e2e/lib.sh replaces it with a time-stamped one.
log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
fail() {
  log "FAIL: $*"
  # In a hook an exit would skip the hooks after it (and the teardown they do).
  if [ -n "${_CORE_EXITING:-}" ]; then
    if [ "$EXIT_RC" = 0 ] || [ "$EXIT_RC" = 77 ]; then EXIT_RC=1; fi
    return 1
  fi
  exit 1
}
skip() { log "SKIP: $*"; exit 77; }
pass() { log "PASS${1:+: $*}"; exit 0; }

# t SECS CMD... : CMD bounded by SECS (TERM, then KILL T_KILL_AFTER s later). A timeout is
# reported as such, so that a hang is never mistaken for an ordinary failure.
t() {
  local secs=$1 rc=0
  shift
  timeout --kill-after="$T_KILL_AFTER" "$secs" "$@" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then log "TIMEOUT after ${secs}s: $*"; fi
  return "$rc"
}

require_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "missing command: $c"; done
}

# nap SECS : sleep without an exec. In the guest an exec costs 0.1-0.5 s (more with a
# second guest on the host), so a poll loop with `sleep 0.1` polled every ~0.5 s and kept
# the vCPU busy. read -t on a pipe we hold both ends of (nothing ever arrives) is a builtin.
exec {_NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$_NAP_FD" _ || true; }

# wait_until SECS WHAT CMD... : poll CMD every 0.1 s until it succeeds; fail after SECS.
wait_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    nap 0.1
  done
}

# show_log_tail LOG [N] : the last N (40) lines of LOG on stderr, under a header line.
show_log_tail() {
  [ -s "$1" ] || return 0
  log "---- last ${2:-40} lines of $1 ----"
  tail -n "${2:-40}" "$1" >&2
}

# log_shows_crash LOG : 0 (and the lines printed) if LOG holds a crash or sanitizer report.
log_shows_crash() {
  [ -f "$1" ] || return 1
  grep -nE 'Sanitizer|runtime error:|Segmentation fault|terminate called|Assertion|assert(ion)? failed|\[critical\]' \
    "$1" >&2
}

# ---------------------------------------------------------------------------------------
# Cleanup: on_exit hooks, run LIFO from the EXIT trap
# ---------------------------------------------------------------------------------------
_EXIT_HOOKS=()
EXIT_RC=0
_CORE_EXITING=

# on_exit CMD... : run CMD (a shell snippet, eval'd) at exit; the last registered runs first.
on_exit() { _EXIT_HOOKS+=("$*"); }

_core_exit() {
  EXIT_RC=$?
  set +eu
  trap - EXIT
  _CORE_EXITING=1
  local i
  for ((i = ${#_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    eval "${_EXIT_HOOKS[i]}" || log "cleanup step failed: ${_EXIT_HOOKS[i]}"
  done
  exit "$EXIT_RC"
}
trap _core_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------
# proc_stat PID : the fields of /proc/PID/stat in PROC_STAT, numbered as proc(5) numbers
# them: [1] pid, [2] comm, [3] state, [4] ppid, ... [14] utime, [15] stime (clock ticks,
# all threads). 1 if there is no such process. The comm is everything between the FIRST
# '(' and the LAST ')': a process may name itself anything, spaces, parentheses and
# newlines included, so splitting the line on spaces miscounts the fields. A PID that is
# empty or not a number is no process.
proc_stat() {
  local s=''
  PROC_STAT=()
  # an empty PID would read /proc//stat, which is /proc/stat
  [[ "${1:-}" =~ ^[0-9]+$ ]] || return 1
  { read -r -d '' s < "/proc/$1/stat"; } 2>/dev/null || true   # no NUL: read ends at EOF
  [ -n "$s" ] || return 1
  local pid=${s%%\ \(*} comm=${s#*\(}
  comm=${comm%\)*}
  local -a rest
  read -r -a rest <<< "${s##*\)}"
  PROC_STAT=('' "$pid" "$comm" "${rest[@]}")
}

# _alive PID : 0 while PID runs. A process that exited but was not reaped yet is a zombie:
# kill -0 still succeeds on it, so look at its state.
_alive() {
  proc_stat "$1" || return 1
  [ "${PROC_STAT[3]:-Z}" != Z ] && [ "${PROC_STAT[3]}" != X ]
}

# proc_cpu_ticks PID : utime + stime of PID (all its threads), in clock ticks.
proc_cpu_ticks() {
  proc_stat "$1" || return 1
  echo $((PROC_STAT[14] + PROC_STAT[15]))
}

# _wait_exit PID SECS : 0 once PID has exited, 1 if it is still running after SECS.
_wait_exit() {
  local deadline=$((SECONDS + $2))
  while _alive "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    nap 0.1
  done
}

# term_wait PID SECS : SIGTERM PID if it runs, wait up to SECS, then SIGKILL. Quiet, never
# fails: for teardown.
term_wait() {
  _alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null
  _wait_exit "$1" "$2" || kill -KILL "$1" 2>/dev/null
  return 0
}

# bg CMD... : CMD in the background (bound it: `bg t SECS cmd`), BG_PID its pid, stopped
# at exit if it still runs (TERM, which timeout(1) passes on to its command). CMD may be a
# shell function (such as t): BG_PID is then a subshell, and its children are stopped
# first, since a TERM to the subshell alone would leave them running.
bg() {
  "$@" &
  BG_PID=$!
  on_exit "_bg_stop $BG_PID"
}
_bg_stop() {
  _alive "$1" || return 0
  pkill -TERM -P "$1" 2>/dev/null
  term_wait "$1" 5
}

# start_ready WHAT LOG SECS READY... -- CMD... : start CMD in the background (stdin from
# ${START_STDIN:-/dev/null}, stdout and stderr appended to LOG), then poll READY (a command
# run in this shell; STARTED_PID, set at once, is CMD's pid) until it succeeds. Fails with
# the last lines of LOG when CMD exits before READY passed (its exit code is named), or
# when READY has not passed within SECS (CMD is then stopped: TERM, KILL 5 s later). The
# caller registers CMD's teardown once it returns.
start_ready() {
  local what=$1 slog=$2 secs=$3
  shift 3
  local -a ready=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do ready+=("$1"); shift; done
  [ $# -ge 2 ] && [ ${#ready[@]} -gt 0 ] || fail "start_ready $what: usage: WHAT LOG SECS READY... -- CMD..."
  shift
  "$@" >> "$slog" 2>&1 < "${START_STDIN:-/dev/null}" &
  STARTED_PID=$!
  local deadline=$((SECONDS + secs)) rc
  until "${ready[@]}"; do
    if ! _alive "$STARTED_PID"; then
      rc=0
      wait "$STARTED_PID" || rc=$?
      show_log_tail "$slog"
      fail "$what exited (rc=$rc) before it was ready"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      term_wait "$STARTED_PID" 5
      show_log_tail "$slog"
      fail "$what (pid $STARTED_PID) was not ready within ${secs}s"
      return 1
    fi
    nap 0.05
  done
}

# stop_checked WHAT PID LOG SECS : SIGTERM PID, then wait_checked.
stop_checked() {
  kill -TERM "$2" 2>/dev/null || true
  wait_checked "$@"
}

# wait_checked WHAT PID LOG SECS : PID (told to stop) must exit within SECS, with code 0
# and no crash report in LOG. A hang gets SIGABRT (a core dump or stack trace in LOG),
# then SIGKILL 5 s later. STOPPED_RC is its exit code.
wait_checked() {
  local what=$1 pid=$2 slog=$3 secs=$4
  if ! _wait_exit "$pid" "$secs"; then
    kill -ABRT "$pid" 2>/dev/null
    _wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    fail "$what (pid $pid) did not exit within ${secs}s of SIGTERM"
    return 1
  fi
  STOPPED_RC=0
  wait "$pid" || STOPPED_RC=$?
  if log_shows_crash "$slog"; then fail "crash or sanitizer report in $slog"; return 1; fi
  if [ "$STOPPED_RC" != 0 ]; then
    show_log_tail "$slog" 20
    fail "$what (pid $pid) exited $STOPPED_RC after SIGTERM, expected 0"
    return 1
  fi
  log "$what exited 0 after SIGTERM"
}
