#!/bin/bash
# tests/lib/test_common.sh - unit test of the shell test library (tests/lib/core.sh and
# tests/lib/common.sh), run by tests/run-all.sh as the step `shell-lib`. No build, no
# root, a few seconds. Each case runs a small script in a child bash, since fail and pass
# end the shell that calls them, and checks its exit code and output:
#   - proc_stat/_alive with processes whose names hold spaces and parentheses (copies of
#     sleep named 'a) b' and ') (x'), and a zombie (exited, not reaped: not alive);
#   - on_exit hooks in reverse order on pass, on fail, on a set -e failure, on SIGTERM;
#     a hook that fails or calls fail does not stop the hooks after it;
#   - start_ready's three outcomes: ready, timeout (the process is stopped), early exit
#     (its exit code named), the last lines of the log shown on both failures;
#   - wait_checked/stop_checked: exit 0 passes, another code or a crash in the log fails;
#   - bg with a shell function (`bg t SECS cmd`): the command is stopped at exit too.
# Exit 0 when every check passed, 1 otherwise.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CORE=$HERE/core.sh
W=$(mktemp -d /tmp/rbdnbd-shell-lib.XXXXXX)
trap 'rm -rf "$W"' EXIT
export LC_ALL=C
N=0 BAD=0

ok() { N=$((N + 1)); printf 'ok %d - %s\n' "$N" "$1"; }
not_ok() { N=$((N + 1)); BAD=$((BAD + 1)); printf 'not ok %d - %s\n' "$N" "$1"; shift; printf '    %s\n' "$@"; }
# check DESC CMD... : CMD must succeed.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d" "failed: $*"; fi; }

# run_child SCRIPT : SCRIPT (bash source) in a child shell with core.sh sourced first;
# RC, OUT (stdout+stderr) are set.
run_child() {
  RC=0
  OUT=$(cd "$W" && bash -c ". '$CORE'; $1" child 2>&1) || RC=$?
}
# expect_run DESC RC WANT_LINES... : the last run_child exited RC and its output holds
# every WANT line (fixed strings), in this order.
expect_run() {
  local d=$1 want_rc=$2 l rest
  shift 2
  if [ "$RC" != "$want_rc" ]; then not_ok "$d" "exit $RC, expected $want_rc; output:" "$OUT"; return; fi
  rest=$OUT
  for l in "$@"; do
    case $rest in
      *"$l"*) rest=${rest#*"$l"} ;;
      *) not_ok "$d" "missing (in order): $l; output:" "$OUT"; return ;;
    esac
  done
  ok "$d"
}

# ---------------------------------------------------------------------------------------
# /proc/PID/stat
# ---------------------------------------------------------------------------------------
. "$CORE"
trap 'rm -rf "$W"' EXIT   # core.sh took the EXIT trap; this script needs none of its hooks
SLEEP=$(command -v sleep)
for name in 'a) b' ') (x' 'sp ace'; do
  cp "$SLEEP" "$W/$name"
  # The named process's parent is a `sleep` that never reaps it: killed, it stays a zombie
  # (this shell would reap its own child at once, from its SIGCHLD handler).
  rm -f "$W/pid"
  ( "$W/$name" 30 & echo $! > "$W/pid.tmp"; mv "$W/pid.tmp" "$W/pid"; exec sleep 30 ) &
  holder=$!
  for _ in $(seq 100); do [ -s "$W/pid" ] && break; nap 0.02; done
  pid=$(< "$W/pid")
  # the comm is set at exec: wait until the child is no longer the forked bash
  for _ in $(seq 100); do proc_stat "$pid" && [ "${PROC_STAT[2]}" = "$name" ] && break; nap 0.02; done
  if proc_stat "$pid" && [ "${PROC_STAT[1]}" = "$pid" ] && [ "${PROC_STAT[2]}" = "$name" ] \
     && [[ "${PROC_STAT[3]}" =~ ^[RSD]$ ]] && [ "${PROC_STAT[4]}" = "$holder" ]; then
    ok "proc_stat of '$name': pid, comm, state ${PROC_STAT[3]}, ppid"
  else
    not_ok "proc_stat of '$name'" "fields 1-4: ${PROC_STAT[*]:1:4}" "stat: $(cat "/proc/$pid/stat")"
  fi
  # utime is field 14, starttime 22: numbers, wherever the comm's spaces are
  check "proc_stat of '$name': utime, stime and starttime are numbers" \
    eval '[[ "${PROC_STAT[14]}${PROC_STAT[15]}${PROC_STAT[22]}" =~ ^[0-9]+$ ]]'
  check "proc_cpu_ticks of '$name' is a number" eval '[[ "$(proc_cpu_ticks "$pid")" =~ ^[0-9]+$ ]]'
  check "_alive '$name' while it runs" _alive "$pid"
  kill -KILL "$pid"
  for _ in $(seq 100); do proc_stat "$pid" && [ "${PROC_STAT[3]}" = Z ] && break; nap 0.02; done
  if [ "${PROC_STAT[3]:-}" = Z ] && kill -0 "$pid" 2>/dev/null && ! _alive "$pid"; then
    ok "'$name' killed, not reaped: a zombie (kill -0 succeeds), not alive"
  else
    not_ok "'$name' as a zombie" "state ${PROC_STAT[3]:-none}; _alive says $(_alive "$pid" && echo alive || echo dead)"
  fi
  kill -KILL "$holder"; wait "$holder" 2>/dev/null   # init reaps the orphaned zombie
  for _ in $(seq 100); do proc_stat "$pid" || break; nap 0.02; done
  check "'$name' reaped: proc_stat fails, not alive" eval '! proc_stat "$pid" && ! _alive "$pid"'
done
check "no pid, or not a number: no process (and no 10 s wait in term_wait)" \
  eval '! proc_stat "" && ! _alive "" && ! _alive "1x" && t0=$SECONDS && term_wait "" 10 && [ $((SECONDS - t0)) -lt 2 ]'
sleep 5 & p=$!
if _wait_exit "$p" 1; then not_ok "_wait_exit returns 1 on a process that outlives it"; else ok "_wait_exit returns 1 on a process that outlives it"; fi
kill "$p"; wait "$p" 2>/dev/null
check "_wait_exit returns 0 once it exited" _wait_exit "$p" 1

# ---------------------------------------------------------------------------------------
# on_exit hooks
# ---------------------------------------------------------------------------------------
HOOKS='on_exit "echo hook1"; on_exit "echo hook2"; on_exit "echo hook3"'
run_child "$HOOKS; pass"
expect_run "hooks run in reverse order on pass (exit 0)" 0 PASS hook3 hook2 hook1
run_child "$HOOKS; fail 'boom'"
expect_run "hooks run in reverse order on fail (exit 1)" 1 "FAIL: boom" hook3 hook2 hook1
run_child "set -e; $HOOKS; false; echo not-reached"
expect_run "hooks run in reverse order when set -e ends the script" 1 hook3 hook2 hook1
case $OUT in *not-reached*) not_ok "set -e stopped the script" "$OUT" ;; *) ok "set -e stopped the script" ;; esac
run_child "$HOOKS; skip 'no tool'"
expect_run "hooks run in reverse order on skip (exit 77)" 77 "SKIP: no tool" hook3 hook2 hook1
run_child "$HOOKS; kill -TERM \$\$; sleep 5"
expect_run "hooks run in reverse order on SIGTERM (exit 143)" 143 hook3 hook2 hook1
run_child "on_exit 'echo hook1'; on_exit 'fail in-hook; echo after-fail'; on_exit 'false'; on_exit 'echo hook4'; pass"
expect_run "a hook that fails or calls fail: the others still run, and fail makes it exit 1" 1 \
  hook4 "cleanup step failed: false" "FAIL: in-hook" hook1
run_child "on_exit 'false'; pass"
expect_run "a hook that only returns non-zero is logged and leaves the exit code" 0 "cleanup step failed: false"
run_child "on_exit 'EXIT_RC=5'; pass"
expect_run "a hook may change EXIT_RC" 5

# ---------------------------------------------------------------------------------------
# start_ready
# ---------------------------------------------------------------------------------------
# A "server" that logs a few lines, then makes its ready file; one that never does; one
# that exits 3 at once.
cat > "$W/graceful.sh" <<'EOF'
sleep 30 & s=$!
trap 'kill $s; exit 0' TERM
wait
EOF
cat > "$W/srv.sh" <<'EOF'
for i in 1 2 3; do echo "srv line $i"; done
sleep 0.3
: > "$1"
exec sleep 30
EOF
run_child "start_ready srv srv.log 10 test -e ready -- bash srv.sh ready
  echo \"started \$STARTED_PID\"; _alive \$STARTED_PID && echo alive-after-ready
  on_exit \"term_wait \$STARTED_PID 5\"; pass"
expect_run "start_ready: ready (the readiness test passed, the process runs)" 0 started alive-after-ready PASS
run_child "start_ready srv srv2.log 1 test -e never -- bash srv.sh other
  echo not-reached"
expect_run "start_ready: timeout fails with the log's last lines" 1 \
  "---- last 40 lines of srv2.log ----" "srv line 3" "FAIL: srv (pid" "was not ready within 1s"
pid=$(sed -n 's/.*srv (pid \([0-9]*\)).*/\1/p' <<< "$OUT")
check "start_ready: after a timeout the process is gone" eval "[ -n '$pid' ] && ! _alive '$pid'"
case $OUT in *not-reached*) not_ok "start_ready: timeout ends the script" "$OUT" ;; *) ok "start_ready: timeout ends the script" ;; esac
run_child "start_ready crasher crash.log 10 test -e never -- bash -c 'echo starting; echo cannot open the thing >&2; exit 3'
  echo not-reached"
expect_run "start_ready: early exit fails at once with its code and the log's last lines" 1 \
  "---- last 40 lines of crash.log ----" "starting" "cannot open the thing" "FAIL: crasher exited (rc=3) before it was ready"
echo 'from stdin' > "$W/stdin.txt"
run_child "START_STDIN=stdin.txt start_ready cat cat.log 5 grep -q 'from stdin' cat.log -- bash -c 'cat; exec sleep 30'
  on_exit \"term_wait \$STARTED_PID 5\"; pass"
expect_run "start_ready: the command's stdin is START_STDIN" 0 PASS
run_child "start_ready srv srv3.log 5 -- bash srv.sh x"
expect_run "start_ready: no readiness test is a usage error" 1 "usage"

# ---------------------------------------------------------------------------------------
# wait_checked / stop_checked
# ---------------------------------------------------------------------------------------
run_child "sleep 30 & stop_checked sleeper \$! none.log 5; echo rc=\$STOPPED_RC"
expect_run "stop_checked: a process killed by SIGTERM (not exit 0) fails" 1 "sleeper (pid" "exited 143 after SIGTERM"
run_child "bash graceful.sh & p=\$!; nap 0.3; stop_checked srv \$p none.log 5; pass"
expect_run "stop_checked: exit 0 after SIGTERM passes" 0 "srv exited 0 after SIGTERM" PASS
echo 'ERROR: AddressSanitizer: heap-use-after-free' > "$W/asan.log"
run_child "bash graceful.sh & p=\$!; nap 0.3; stop_checked srv \$p asan.log 5; pass"
expect_run "stop_checked: a sanitizer report in the log fails" 1 "AddressSanitizer" "crash or sanitizer report in asan.log"
run_child "bash -c 'trap \"\" TERM; sleep 30' & p=\$!; nap 0.3; stop_checked stubborn \$p none.log 1"
expect_run "stop_checked: a process ignoring SIGTERM fails after SECS" 1 "stubborn (pid" "did not exit within 1s"

# ---------------------------------------------------------------------------------------
# bg
# ---------------------------------------------------------------------------------------
# A shell function in the background (`bg t SECS cmd`) is a subshell: its command must be
# stopped at exit too, not only the subshell (an orphaned fio once spun on for minutes).
# (Its output goes elsewhere, as fio's does; else it would hold run_child's pipe open.)
run_child "bg t 60 sleep 299 > /dev/null 2>&1 < /dev/null; nap 0.5; echo child=\$(pgrep -f '^sleep 299$' | head -n 1); pass"
bg_child=$(sed -n 's/^child=//p' <<< "$OUT")
expect_run "bg t SECS CMD: the scenario passes" 0 "child=" PASS
nap 0.5
if [ -z "$bg_child" ]; then
  not_ok "bg t SECS CMD: its command ran" "no pid found; output:" "$OUT"
elif kill -0 "$bg_child" 2>/dev/null && [ "$(ps -o comm= -p "$bg_child")" = sleep ]; then
  not_ok "bg t SECS CMD: its command is stopped at exit" "sleep 299 (pid $bg_child) still runs"
  kill "$bg_child" 2>/dev/null
else
  ok "bg t SECS CMD: its command is stopped at exit"
fi

echo "$((N - BAD)) passed, $BAD failed"
[ "$BAD" = 0 ]
