#!/bin/bash
# Bad input at start-up. Each case must end `rbd-nbdd serve` with exit code 2 and exactly
# one error line (no Ceph library noise) naming the problem, within a bound, with no
# process left and no socket left accepting connections:
#   unknown pool / image / snapshot, a spec without a pool, a wrong key (valid format),
#   a user whose caps do not cover the pool, a user without any caps, unreachable
#   monitors (-m 127.0.0.1:9 --connect-timeout 3: within 12 s), a hung (SIGSTOPped) monitor
#   and a refusing one (a wrong key over v1), each named as such, an image locked by
#   another `serve --exclusive` (which keeps serving), a wrong LUKS passphrase.
# Every case is tried; the script fails at the end if any did.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdinfo ceph-authtool
rbd_setup
# key sources are explicit per case: not client.admin's keyring from the environment
RBD_SERVER_ENV=(-u CEPH_KEYRING -u CEPH_ARGS)
ADMIN=(--id admin --keyring "$RBD_DIR/keyring")

IMG=rbd/$(unique_image_name)
rbd_create "$IMG" 16M
( umask 077; t 10 ceph-authtool --gen-print-key >"$TMPD/wrong.key" ) || fail "ceph-authtool --gen-print-key failed"
rbd_user_create "itnoosd$$" mon 'profile rbd'          # may log in, may not touch any pool
rbd_user_create "itbare$$"                           # no caps at all
FAILED=()
case_() { expect_start_failure "$@" || FAILED+=("$1"); }

case_ "unknown pool" "pool.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" --rbd "nopool$$/img"
case_ "unknown image" "image.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" --rbd "rbd/noimage$$"
case_ "unknown snapshot" "snap.*(does not exist|not found|unknown)" 15 "${ADMIN[@]}" --rbd "$IMG@nosnap"
case_ "bad spec (no pool)" "no pool|pool/" 15 "${ADMIN[@]}" --rbd "justanimage"
case_ "wrong key" "authentication failed|wrong key" 15 --id admin --keyfile "$TMPD/wrong.key" --rbd "$IMG"
case_ "user without caps on the pool" "not allowed.*caps|caps.*(denied|not allowed)" 15 \
  --id "itnoosd$$" --keyring "$TMPD/client.itnoosd$$.keyring" --rbd "$IMG"
# Ceph's mon refuses a user without mon caps exactly like a wrong key, so the line can't
# tell which it is; it must still name missing caps as a possible cause (the user name
# has no "caps" in it, so only the message can match).
case_ "user without any caps" "caps" 15 \
  --id "itbare$$" --keyring "$TMPD/client.itbare$$.keyring" --rbd "$IMG"
case_ "unreachable monitors" "nothing accepts.*monitor" 12 \
  "${ADMIN[@]}" -m 127.0.0.1:9 --connect-timeout 3 --rbd "$IMG"

# A hung monitor: the real one, SIGSTOPped. The kernel still completes the TCP handshake
# from its listen backlog, so only the missing banner tells it from a refusal. The error
# must say hung, and must not blame the key.
read -r MON_PID < "$RBD_DIR/run/mon.a.pid" || fail "no mon pid file in $RBD_DIR/run"
kill -STOP "$MON_PID" || fail "cannot SIGSTOP the monitor"
on_exit "kill -CONT $MON_PID 2>/dev/null || true"
case_ "hung monitors (SIGSTOPped)" "no Ceph banner.*hung|hung.*no Ceph banner|send no Ceph banner" 12 \
  "${ADMIN[@]}" --connect-timeout 3 --rbd "$IMG"
grep -qiE "wrong key|refuse" "$RBD_FAIL_OUT" && FAILED+=("the hung-monitor error blames the credentials")
kill -CONT "$MON_PID"
# The monitors answer but keep refusing: a wrong key over Ceph's v1 protocol (a bare
# IP:PORT), which retries the refusal until the timeout instead of failing at once.
V1=$(sed -n 's/.*v1:\([0-9.]*:[0-9]*\).*/\1/p' <<< "$CEPH_MON_HOST")
[ -n "$V1" ] || fail "no v1 address in CEPH_MON_HOST=$CEPH_MON_HOST"
case_ "wrong key over the v1 protocol (refused until the timeout)" "answer.*refuse.*(wrong key|unknown user)" 15 \
  --id admin --keyfile "$TMPD/wrong.key" -m "$V1" --connect-timeout 4 --rbd "$IMG"

# An image locked by another client: a first server holds it with --exclusive.
start_rbd_server "${ADMIN[@]}" --rbd "$IMG" --exclusive
HOLDER=$SERVER_PID
t 30 nbdinfo --size "$(rbd_uri "$IMG")" >/dev/null || fail "the --exclusive server does not serve"
case_ "image locked by another client" "lock" 15 "${ADMIN[@]}" --rbd "$IMG" --exclusive
t 30 nbdsh -u "$(rbd_uri "$IMG")" -c 'h.pwrite(b"x" * 4096, 0); h.flush(); h.shutdown()' \
  || { FAILED+=("the lock holder stopped working after the refused second server"); }
stop_rbd_server "$HOLDER"

# A wrong passphrase (LUKS1: the cheaper key derivation).
EIMG=rbd/$(unique_image_name enc)
rbd_create "$EIMG" 32M
( umask 077; printf 'right-%s' "$RANDOM$RANDOM" >"$TMPD/pass"; printf 'wrong' >"$TMPD/wrong.pass" )
t 180 rbd encryption format "$EIMG" luks1 "$TMPD/pass" || fail "rbd encryption format failed"
case_ "wrong passphrase" "passphrase" 60 "${ADMIN[@]}" --rbd "$EIMG" \
  --encryption-format luks1 --encryption-passphrase-file "$TMPD/wrong.pass"

[ ${#FAILED[@]} = 0 ] || fail "${#FAILED[@]} case(s) failed: $(IFS=';'; echo "${FAILED[*]}")"
pass "every bad input: one line, exit 2, nothing left"
