#!/bin/bash
# Keys the Ceph way, never leaked. A fresh user (rbd caps on pool kube) whose key exists
# only in a file of this test (no keyring in ceph.conf's search path, CEPH_KEYRING unset):
#   without a key        -> refused (so the key below can only come from where we say)
#   --keyfile PATH       -> serves (write + read back)
#   --keyfile - (stdin)  -> serves
#   --key-fd N (a pipe)  -> serves
#   CEPH_ARGS="--id kube --keyring ..." (no --id on the command line) -> serves pool kube
#                           as client.kube, and is refused pool rbd (so CEPH_ARGS chose
#                           the user)
# Ceph settings the gateway tunes apply unless configured: each server runs 1 librados
# io_context_pool thread (librados_thread_count 1, not Ceph's 2) and logs
# rbd_io_scheduler=none; the CEPH_ARGS one, given --librados_thread_count 3
# --rbd_io_scheduler simple, runs 3 and logs simple; one given a ceph.conf (-c) whose
# [client] section sets 2 and simple runs 2 and logs simple.
# Every server runs with --log-level debug (one with trace, as JSON lines, which must each
# parse); the key string must not appear in any of their
# logs, in /proc/PID/cmdline or /proc/PID/environ of a server (or a child), in any regular
# file a server holds open, or in any file created while the servers ran (under /tmp,
# /dev/shm, /var/tmp, /run, /var/log, the cluster dir and the source tree).
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdsh
rbd_setup

NAME=itkey$$
rbd_user_create "$NAME" mon 'profile rbd' osd 'profile rbd pool=kube'
KEYFILE=$TMPD/client.$NAME.key
KEY=$(cat "$KEYFILE")
[ ${#KEY} -ge 40 ] || fail "unexpected key format"
rm -f "$TMPD/client.$NAME.keyring"        # the key lives in KEYFILE only
IMG=kube/$(unique_image_name)
rbd_create "$IMG" 16M
RBD_SERVER_ENV=(-u CEPH_KEYRING -u CEPH_ARGS)
ME=(--id "$NAME")

expect_start_failure "no key given" "no key|authentication failed" 15 "${ME[@]}" --rbd "$IMG" \
  || fail "a server without any key source did not fail as expected"

sleep 0.02; touch "$TMPD/marker"; sleep 0.02

# leak_check_running : the running server's argv/environ (and its children's) and the
# regular files it holds open must not contain the key.
leak_check_running() {
  local pid=$SERVER_PID p f
  for p in "$pid" $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
    tr '\0' '\n' <"/proc/$p/cmdline" | grep -qF -- "$KEY" && fail "the key is in /proc/$p/cmdline"
    tr '\0' '\n' <"/proc/$p/environ" | grep -qF -- "$KEY" && fail "the key is in /proc/$p/environ"
  done
  for f in /proc/"$pid"/fd/*; do
    f=$(readlink "$f" 2>/dev/null) || continue
    [ -f "$f" ] || continue
    [ "$f" = "$KEYFILE" ] && continue          # the file we handed it
    grep -qF -- "$KEY" "$f" 2>/dev/null && fail "the key is in $f, a file the server holds open"
  done
  return 0
}

# io_ok WHAT USER [IO_THREADS [SCHEDULER]] : a write and a read back through the latest
# server, which runs IO_THREADS (default 1) librados io_context_pool threads and logs
# rbd_io_scheduler=SCHEDULER (default none) as in effect.
io_ok() {
  grep -q "as client.$2 " "$SERVER_LOG" || fail "$1: the server did not connect as client.$2"
  grep -q "as client.$2 (.*rbd_io_scheduler=${4:-none}" "$SERVER_LOG" \
    || fail "$1: the server did not log rbd_io_scheduler=${4:-none}: $(grep 'connected to' "$SERVER_LOG")"
  t 60 nbdsh -u "$(rbd_uri "$IMG")" -c '
import os
d = os.urandom(65536)
h.pwrite(d, 1 << 20, nbd.CMD_FLAG_FUA)
assert h.pread(65536, 1 << 20) == d
h.shutdown()' || fail "$1: I/O failed"
  local n
  n=$(grep -lx io_context_pool /proc/"$SERVER_PID"/task/*/comm 2>/dev/null | wc -l)
  [ "$n" = "${3:-1}" ] || fail "$1: $n io_context_pool threads, expected ${3:-1} (librados_thread_count)"
  leak_check_running
  stop_rbd_server
  log "ok   $1"
}

start_rbd_server "${ME[@]}" --keyfile "$KEYFILE" --rbd "$IMG" --log-level debug
io_ok "--keyfile PATH" "$NAME"

RBD_STDIN=$KEYFILE start_rbd_server "${ME[@]}" --keyfile - --rbd "$IMG" --log-level debug
io_ok "--keyfile - (stdin)" "$NAME"

# this one logs everything there is (trace) as JSON lines: the same no-key checks below
# cover it, and each of its lines must be one JSON object
exec 5< <(cat "$KEYFILE")                  # a pipe, not a file
start_rbd_server "${ME[@]}" --key-fd 5 --rbd "$IMG" --log-level trace --log-format json
exec 5<&-
JSON_LOG=$SERVER_LOG
io_ok "--key-fd 5 (a pipe), --log-level trace --log-format json" "$NAME"
/usr/bin/python3 - "$JSON_LOG" <<'PY' || fail "the --log-format json log is not JSON lines"
import json, sys
ours = 0
for n, line in enumerate(open(sys.argv[1], errors="replace"), 1):
    if not line.startswith("{"):
        continue          # librados' own stderr lines (err_to_stderr), not ours
    j = json.loads(line)  # raises on a broken line
    assert {"time", "level", "thread", "msg"} <= j.keys(), f"line {n}: {line!r}"
    ours += 1
assert ours >= 5, f"only {ours} JSON lines"
assert any("connected to" in json.loads(l)["msg"] for l in open(sys.argv[1]) if l.startswith("{"))
print(f"{ours} JSON log lines, all valid", file=sys.stderr)
PY

cp "$CEPH_CONF" "$TMPD/tuned.conf"
printf '\n[client]\nlibrados_thread_count = 2\nrbd_io_scheduler = simple\n' >>"$TMPD/tuned.conf"
start_rbd_server "${ME[@]}" --keyfile "$KEYFILE" -c "$TMPD/tuned.conf" --rbd "$IMG"
io_ok "-c CONF setting librados_thread_count and rbd_io_scheduler" "$NAME" 2 simple

RBD_SERVER_ENV=(-u CEPH_KEYRING "CEPH_ARGS=--id kube --keyring $CEPH_KUBE_KEYRING --librados_thread_count 3 --rbd_io_scheduler simple")
start_rbd_server --rbd "$IMG" --log-level debug
io_ok "CEPH_ARGS=\"--id kube --keyring ... --librados_thread_count 3 --rbd_io_scheduler simple\"" kube 3 simple
RIMG=rbd/$(unique_image_name)
rbd_create "$RIMG" 16M
expect_start_failure "CEPH_ARGS client.kube on pool rbd" "not allowed.*caps" 15 --rbd "$RIMG" \
  || fail "with CEPH_ARGS naming client.kube, pool rbd was not refused: CEPH_ARGS ignored?"

# The key in no log and in no file made while the servers ran.
for f in "$TMPD"/*.log "$TMPD"/*.out; do
  [ -f "$f" ] || continue
  grep -qF -- "$KEY" "$f" && fail "the key is in the server log $f"
done
found=$(find /tmp /dev/shm /var/tmp /run /var/log "$RBD_DIR" "$ROOT" -xdev -type f -newer "$TMPD/marker" \
          -size -64M -print0 2>/dev/null | xargs -0 -r grep -lF -- "$KEY" 2>/dev/null || true)
[ -z "$found" ] || fail "the key is in files created while the servers ran: $found"
pass "--keyfile, --keyfile -, --key-fd and CEPH_ARGS work; the key leaked nowhere; rbd-nbdd's Ceph defaults yield to ceph.conf and CEPH_ARGS"
