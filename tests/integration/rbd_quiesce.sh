#!/bin/bash
# Snapshots with quiesce reach rbd-nbdd: `serve --rbd IMG --quiesce-hook HOOK` registers
# librbd's quiesce watch, and `rbd snap create` (without --skip-quiesce) runs
# `HOOK - quiesce` before the snapshot and `HOOK - unquiesce` after it. Both ways a
# snapshot is taken are covered: the server holds the exclusive lock (it wrote, as a node
# with a mounted filesystem does; librbd then runs the snapshot IN the server) and nobody
# holds it (the rbd CLI runs it). For each:
#   - a hook that exits 0: quiesce then unquiesce ran, the snapshot exists;
#   - a hook that exits 1: rbd snap create fails (EIO), no snapshot; the hook's unquiesce
#     ran to undo; --skip-quiesce works without calling the hook, --ignore-quiesce-error
#     takes the snapshot anyway;
#   - a hook that hangs: the server kills it at --quiesce-timeout and answers ETIME
#     ("Timer expired"; ETIMEDOUT would make the lock owner's caller retry forever), so
#     rbd snap create fails within the bound, with no snapshot and no hook left running.
# The server's log has no error line and it stops cleanly.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy
rbd_setup
make_scratch
QT=${RBD_QUIESCE_TIMEOUT:-3}     # the server's --quiesce-timeout
BOUND=$((QT + 12))                # what rbd snap create may take when the hook hangs

HOOK=$TMPD/hook CALLS=$TMPD/calls MODE=$TMPD/mode
HANG=600.$$   # the hung hook's sleep argument: unique, so procs_with finds only ours
cat >"$HOOK" <<EOF
#!/bin/sh
echo "\$# \$1 \$2" >>"$CALLS"
[ "\$2" = quiesce ] || exit 0
case "\$(cat "$MODE")" in
  fail) exit 1 ;;
  hang) exec sleep $HANG ;;
esac
exit 0
EOF
chmod 0755 "$HOOK"

OWNED=rbd/$(unique_image_name) FREE=rbd/$(unique_image_name)
rbd_create "$OWNED" 32M
rbd_create "$FREE" 32M
start_rbd_server --rbd "$OWNED" --rbd "$FREE" --quiesce-hook "$HOOK" --quiesce-timeout "$QT"
grep -q "export '$OWNED': quiesce requests run $HOOK" "$SERVER_LOG" || fail "the server does not say it watches $OWNED"

# The server writes to OWNED: it takes the exclusive lock, and keeps it.
random_file "$SCRATCH/a" 1
t 60 nbdcopy --flush "$SCRATCH/a" "$(rbd_uri "$OWNED")" || fail "writing to $OWNED failed"
t 30 rbd lock ls "$OWNED" | grep -q "exclusive lock" || fail "the server does not hold the lock on $OWNED"
t 30 rbd lock ls "$FREE" | grep -q "exclusive lock" && fail "somebody holds the lock on $FREE"

snap_exists() { t 30 rbd snap ls --format json "$1" | grep -q "\"name\":\"$2\""; }
# snap IMG SNAP [rbd options] : rbd snap create; sets RC, SECS, ERR.
snap() {
  local img=$1 name=$2; shift 2
  : >"$CALLS"
  local t0=$EPOCHREALTIME
  RC=0
  t $((BOUND + 60)) rbd snap create --no-progress "$@" "$img@$name" 2>"$TMPD/snap.err" || RC=$?
  SECS=$(/usr/bin/python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')")
  ERR=$(grep '^rbd:' "$TMPD/snap.err" || true)
}
calls() { tr '\n' '|' <"$CALLS"; }
no_hang_left() { [ -z "$(procs_with "$HANG")" ]; }

for img in "$OWNED" "$FREE"; do
  [ "$img" = "$OWNED" ] && how="lock owner" || how="no lock owner"

  echo ok >"$MODE"
  snap "$img" s-ok
  [ "$RC" = 0 ] || fail "$how: rbd snap create with a hook that succeeds failed ($RC): $ERR"
  [ "$(calls)" = "2 - quiesce|2 - unquiesce|" ] || fail "$how: hook calls were '$(calls)'"
  snap_exists "$img" s-ok || fail "$how: snapshot s-ok missing"
  log "$how: quiesce+snapshot+unquiesce in $SECS s"

  echo fail >"$MODE"
  snap "$img" s-fail
  [ "$RC" != 0 ] || fail "$how: rbd snap create succeeded although the hook failed"
  case "$ERR" in *"Input/output error"*) ;; *) fail "$how: unexpected error: $ERR" ;; esac
  snap_exists "$img" s-fail && fail "$how: a snapshot exists although the quiesce failed"
  [ "$(calls)" = "2 - quiesce|2 - unquiesce|" ] || fail "$how: after a failed quiesce the hook calls were '$(calls)'"
  log "$how: failing hook -> rbd snap create exit $RC in $SECS s ($ERR)"
  snap "$img" s-skip --skip-quiesce
  [ "$RC" = 0 ] || fail "$how: --skip-quiesce failed: $ERR"
  [ ! -s "$CALLS" ] || fail "$how: --skip-quiesce called the hook: $(calls)"
  snap_exists "$img" s-skip || fail "$how: snapshot s-skip missing"
  snap "$img" s-ignore --ignore-quiesce-error
  [ "$RC" = 0 ] || fail "$how: --ignore-quiesce-error failed: $ERR"
  snap_exists "$img" s-ignore || fail "$how: snapshot s-ignore missing"

  echo hang >"$MODE"
  snap "$img" s-hang
  [ "$RC" != 0 ] || fail "$how: rbd snap create succeeded although the hook hung"
  case "$ERR" in *"Timer expired"*) ;; *) fail "$how: unexpected error for a hung hook: $ERR" ;; esac
  /usr/bin/python3 -c "import sys; sys.exit(0 if $SECS <= $BOUND else 1)" ||
    fail "$how: rbd snap create took $SECS s with a hung hook (bound $BOUND s, --quiesce-timeout $QT)"
  snap_exists "$img" s-hang && fail "$how: a snapshot exists although the quiesce timed out"
  wait_until 10 "the hung hook's sleep to be gone ($how)" no_hang_left
  log "$how: hung hook -> rbd snap create exit $RC in $SECS s (--quiesce-timeout $QT): $ERR"
done

# The server is fine after all that: one more good snapshot of the owned image.
echo ok >"$MODE"
snap "$OWNED" s-after
[ "$RC" = 0 ] || fail "a snapshot after the failures failed: $ERR"

stop_rbd_server
[ -z "$(server_errors "$SERVER_LOG")" ] || { server_errors "$SERVER_LOG" >&2; fail "errors in the server log"; }
grep -q "hook '$HOOK - quiesce' failed .*timed out" "$SERVER_LOG" || fail "the server log does not show the hook timing out"
pass "hook ran quiesce/unquiesce around snapshots (with and without the server as lock owner); failure and hang fail the snapshot within $BOUND s"
