#!/bin/bash
# tests/integration/dev_cluster_test.sh - deploy/dev-cluster.sh end to end, on a cluster of
# its own (own DIR under the test's temporary directory, own port): it never touches the
# shared cluster of RBDNBD_CLUSTER_DIR.
#
#   memstore: two overlapping starts on a fresh DIR make one cluster; start again is a no-op;
#   status is HEALTH_OK; env evals; keyrings are 0600; pools rbd and kube are rbd pools of
#   size 1; an image with every feature including journaling takes `rbd bench` writes
#   (no mgr); imported data comes back from `rbd export` with the same sha256; a clone v2
#   needs no snapshot protection; client.kube works in pool kube and gets EPERM in pool rbd,
#   also with only a mon address and a key file (no conf, no keyring); stop + start keeps
#   every image's data; a SIGKILLed memstore cluster is re-made empty by the next start,
#   also when two starts overlap on that stale DIR.
#   bluestore: start, the same feature/bench/export checks, stop + start and SIGKILL + start
#   keep the data.
#   wipe removes the DIR and every daemon.
#
# Exit 0 pass, 1 fail, 77 skip (Ceph not installed; with CI=true run-all counts it failed).
. "$(dirname "$0")/../lib/common.sh"
. "$ROOT/tests/lib/ceph.sh"     # common.sh cd-ed into $TMPD: use $ROOT

ceph_require
# Our own cluster: forget any shared cluster's env, and settings meant for it.
unset RBDNBD_CLUSTER_DIR CEPH_CONF CEPH_KEYRING CEPH_MON_HOST CEPH_ARGS DEV_CLUSTER_STORE \
  DEV_CLUSTER_PORT DEV_CLUSTER_TRACE
D=$TMPD/c
DC=$DEV_CLUSTER
# the whole cluster goes at the end (and is re-made on the way): no per-image cleanup
export CEPH_KEEP_IMAGES=1
on_exit "timeout 60 '$DC' wipe '$D' >/dev/null 2>&1"

# A free port block away from the default (14200) and from other runs of this test.
port_free() { ! ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qE ":($1|$(($1 + 1)))\$"; }
PORT=
for _ in $(seq 1 50); do
  p=$((14300 + 100 * (RANDOM % 150)))
  port_free "$p" && { PORT=$p; break; }
done
[ -n "$PORT" ] || fail "no free port block found"
export DEV_CLUSTER_PORT=$PORT
log "cluster dir $D, port $PORT"

# dc CMD... : run dev-cluster.sh bounded; its output in $OUT (and in the log), exit code
# in $RC. Never fails by itself.
dc() {
  RC=0
  OUT=$(t 300 "$DC" "$@" 2>&1) || RC=$?
  printf '%s\n' "$OUT" | sed 's/^/    | /' >&2
}
# secs_of : the "in N.NN s" the last dc printed
secs_of() { sed -n -e 's/.* in \([0-9.]*\) s.*/\1/p' -e 's/.*(\([0-9.]*\) s).*/\1/p' <<<"$OUT" | tail -n 1; }
mon_count() { pgrep -c -f -- "ceph-mon -c $D/ceph.conf" || true; }
daemon_count() { pgrep -c -f -- "-c $D/ceph.conf" || true; }

# expect_eperm DESC CMD... : CMD must fail with EPERM, "(1) Operation not permitted".
expect_eperm() {
  local desc=$1 err rc=0; shift
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" != 0 ] || fail "client.kube: $desc succeeded; expected EPERM"
  grep -q '(1) Operation not permitted' <<<"$err" ||
    fail "client.kube: $desc failed (exit $rc) but not with EPERM: $err"
  log "ok: client.kube: $desc -> EPERM"
}

# ---------------------------------------------------------------------------------------
log "== memstore: two overlapping starts on a fresh DIR"
( t 300 "$DC" start "$D" >"$TMPD/s1.out" 2>&1; echo $? >"$TMPD/s1.rc" ) &
s1=$!
( t 300 "$DC" start "$D" >"$TMPD/s2.out" 2>&1; echo $? >"$TMPD/s2.rc" ) &
s2=$!
wait "$s1" "$s2"
sed 's/^/    | /' "$TMPD/s1.out" "$TMPD/s2.out" >&2
[ "$(cat "$TMPD/s1.rc")" = 0 ] && [ "$(cat "$TMPD/s2.rc")" = 0 ] ||
  fail "overlapping starts: exit codes $(cat "$TMPD/s1.rc") and $(cat "$TMPD/s2.rc")"
[ "$(cat "$TMPD/s1.out" "$TMPD/s2.out" | grep -c 'started a new memstore cluster')" = 1 ] ||
  fail "overlapping starts: expected exactly one to create the cluster"
[ "$(mon_count)" = 1 ] || fail "expected 1 ceph-mon for $D, found $(mon_count)"
START_MEM=$(cat "$TMPD/s1.out" "$TMPD/s2.out" | sed -n 's/.*started a new memstore cluster in \([0-9.]*\) s.*/\1/p')
log "ok: one cluster made; memstore start took ${START_MEM}s"

dc start "$D"
[ "$RC" = 0 ] && grep -q 'already running' <<<"$OUT" || fail "start on a running cluster: exit $RC"
log "ok: start on a running cluster is a no-op ($(secs_of)s)"

dc status "$D"
[ "$RC" = 0 ] || fail "status: exit $RC"
# No mgr: `ceph -s` shows "mgr: no daemons active" and "0 pools, 0 pgs" (PG statistics
# are the mgr's), but no warning: mon_mgr_mkfs_grace silences MGR_DOWN, and the other
# warnings a one-OSD cluster would raise are configured away (see dev-cluster.sh).
grep -q 'health: HEALTH_OK' <<<"$OUT" || {
  ceph -c "$D/ceph.conf" health detail >&2 || true
  fail "status is not HEALTH_OK"
}
log "ok: HEALTH_OK"

# ---------------------------------------------------------------------------------------
log "== env, keyrings, pools, users"
ENV=$("$DC" env "$D") || fail "env: exit $?"
printf '%s\n' "$ENV" | sed 's/^/    | /' >&2
eval "$ENV"
[ "$CEPH_CONF" = "$D/ceph.conf" ] && [ "$RBDNBD_CLUSTER_DIR" = "$D" ] && [ "$CEPH_KEYRING" = "$D/keyring" ] ||
  fail "env: unexpected values"
[ "$CEPH_MON_HOST" = "[v2:127.0.0.1:$PORT,v1:127.0.0.1:$((PORT + 1))]" ] || fail "env: CEPH_MON_HOST=$CEPH_MON_HOST"
export CEPH_KUBE_KEYRING=$D/client.kube.keyring
for k in "$D/keyring" "$CEPH_KUBE_KEYRING"; do
  [ "$(stat -c %a "$k")" = 600 ] || fail "$k has mode $(stat -c %a "$k"), expected 600"
done
grep -q 'client.admin' "$D/keyring" && ! grep -q 'client.kube\|osd.0\|mon\.' "$D/keyring" ||
  fail "$D/keyring should hold client.admin only"
log "ok: env evals; keyrings 0600"

pools=$(ceph_cli osd pool ls detail) || fail "osd pool ls detail"
for p in rbd kube; do
  grep -E "^pool [0-9]+ '$p' replicated size 1 min_size 1 .*application rbd" <<<"$pools" >/dev/null ||
    fail "pool $p missing, not size 1, or not an rbd pool: $pools"
done
ceph_cli osd dump | grep -q '^require_min_compat_client mimic' || fail "require_min_compat_client is not mimic"
caps=$(ceph_cli auth get client.kube 2>/dev/null) || fail "auth get client.kube"
grep -q 'caps mon = "profile rbd"' <<<"$caps" && grep -q 'caps osd = "profile rbd pool=kube"' <<<"$caps" ||
  fail "client.kube caps: $caps"
log "ok: pools rbd+kube (size 1, application rbd), min compat client mimic, client.kube caps"

# ---------------------------------------------------------------------------------------
log "== every feature including journaling, without a mgr"
J=rbd/$(unique_image_name jrnl)
rbd_create "$J" 64M all
[ "$(rbd_features "$J")" = "$RBD_FEATURES_ALL" ] || fail "features of $J: $(rbd_features "$J")"
rbd_cli bench --io-type write --io-size 4K --io-total 8M --io-pattern rand "$J" >"$TMPD/bench.out" 2>&1 ||
  { cat "$TMPD/bench.out" >&2; fail "rbd bench on the journaling image"; }
tail -n 1 "$TMPD/bench.out" | sed 's/^/    | /' >&2
jstat=$(rbd_cli journal status --image "$J") || fail "rbd journal status"
grep -qE 'entry_tid=[1-9][0-9]{2,}' <<<"$jstat" || fail "the journal recorded no writes: $jstat"
J_SUM=$(rbd_sha256 "$J")
log "ok: journaling image written through the journal (rbd bench, 8 MiB of 4k random writes)"

I=rbd/$(unique_image_name imp)
make_scratch
random_file "$SCRATCH/data" 24
truncate -s 32M "$SCRATCH/data"          # 8 MiB never written: reads as zeros
DATA_SUM=$(sha256 "$SCRATCH/data")
rbd_cli import --no-progress --image-feature "$RBD_FEATURES_ALL" "$SCRATCH/data" "$I" || fail "rbd import"
[ "$(rbd_sha256 "$I")" = "$DATA_SUM" ] || fail "rbd export of $I differs from what was imported"
log "ok: import -> export round trip (sha256 ${DATA_SUM:0:16}...)"

rbd_cli snap create "$I@s1" >/dev/null 2>&1 || fail "snap create"
C=rbd/$(unique_image_name clone)
rbd_cli clone "$I@s1" "$C" || fail "clone v2 of an unprotected snapshot (require_min_compat_client mimic)"
[ "$(rbd_sha256 "$C")" = "$DATA_SUM" ] || fail "clone content differs"
rbd_cli rm --no-progress "$C" || fail "rm clone"
log "ok: clone v2 without snapshot protection"

# ---------------------------------------------------------------------------------------
log "== client.kube: its own pool yes, pool rbd no"
K=kube/$(unique_image_name kube)
rbd_kube create --size 32M --image-feature "$RBD_FEATURES_ALL" "$K" || fail "client.kube: create in kube"
rbd_kube bench --io-type write --io-size 4K --io-total 4M "$K" >/dev/null 2>&1 || fail "client.kube: write in kube"
K_SUM=$(set -o pipefail; rbd_kube export --no-progress "$K" - 2>/dev/null | sha256sum | cut -d' ' -f1) ||
  fail "client.kube: export in kube"
[ "$K_SUM" = "$(rbd_sha256 "$K")" ] || fail "client.kube's export differs from admin's"
log "ok: client.kube creates, writes and reads in pool kube"
expect_eperm "create in pool rbd" rbd_kube create --size 32M "rbd/$(unique_image_name x)"
expect_eperm "list pool rbd" rbd_kube ls rbd
expect_eperm "read an image in pool rbd" rbd_kube export "$I" -

# What a backend gets when given only a mon address and the key (no conf, no keyring).
( umask 077; ceph-authtool -p -n client.kube "$CEPH_KUBE_KEYRING" >"$TMPD/kube.key" ) || fail "ceph-authtool -p"
ls_out=$(env -u CEPH_CONF -u CEPH_KEYRING timeout 60 rbd -c /dev/null -m "$CEPH_MON_HOST" --id kube \
  --keyfile "$TMPD/kube.key" ls kube) || fail "client.kube with -m and --keyfile only"
grep -qx "${K#kube/}" <<<"$ls_out" || fail "client.kube (-m/--keyfile) does not list $K: $ls_out"
expect_eperm "list pool rbd with -m/--keyfile" env -u CEPH_CONF -u CEPH_KEYRING \
  timeout 60 rbd -c /dev/null -m "127.0.0.1:$PORT" --id kube --keyfile "$TMPD/kube.key" ls rbd
log "ok: -m MONS --id kube --keyfile FILE works without a conf or keyring"

# ---------------------------------------------------------------------------------------
log "== stop + start keeps memstore data"
dc stop "$D"
[ "$RC" = 0 ] || fail "stop: exit $RC"
STOP_MEM=$(secs_of)
[ "$(daemon_count)" = 0 ] || fail "daemons left after stop"
dc status "$D"
[ "$RC" = 1 ] && grep -q 'not running' <<<"$OUT" || fail "status of a stopped cluster: exit $RC"
dc stop "$D"
[ "$RC" = 0 ] || fail "stop of a stopped cluster: exit $RC"
dc start "$D"
[ "$RC" = 0 ] && grep -q 'restarted mon.a osd.0' <<<"$OUT" || fail "restart: exit $RC"
RESTART_MEM=$(secs_of)
[ "$(rbd_sha256 "$J")" = "$J_SUM" ] || fail "journaling image changed over stop/start"
[ "$(rbd_sha256 "$I")" = "$DATA_SUM" ] || fail "imported image changed over stop/start"
[ "$(rbd_sha256 "$I@s1")" = "$DATA_SUM" ] || fail "snapshot changed over stop/start"
[ "$(rbd_sha256 "$K")" = "$K_SUM" ] || fail "kube image changed over stop/start"
rbd_cli bench --io-type write --io-total 4M "$J" >/dev/null 2>&1 || fail "write after restart"
J_SUM=$(rbd_sha256 "$J")
log "ok: stop (${STOP_MEM}s) + start (${RESTART_MEM}s) kept every image; writable again"

log "== stop-osd: I/O waits for the OSD, and completes after start"
dc stop-osd "$D"
[ "$RC" = 0 ] && [ "$(mon_count)" = 1 ] && [ "$(daemon_count)" = 1 ] || fail "stop-osd: exit $RC"
( rbd_sha256 "$I" >"$TMPD/during.sum" ) &
reader=$!
sleep 2
_alive "$reader" || fail "a read finished while the only OSD was down"
dc start "$D"
[ "$RC" = 0 ] && grep -q 'restarted osd.0' <<<"$OUT" || fail "start after stop-osd: exit $RC"
wait "$reader" || fail "the read issued while the OSD was down failed"
[ "$(cat "$TMPD/during.sum")" = "$DATA_SUM" ] || fail "the read issued while the OSD was down returned other data"
[ "$(rbd_sha256 "$J")" = "$J_SUM" ] || fail "journaling image changed over stop-osd/start"
log "ok: a read issued while the OSD was down completed after start, with the right data"

log "== an OSD whose full failsafe engaged is restarted cleanly by start, data kept"
# memstore's used bytes went negative once (CI, after snapshots, discards and an export):
# the OSD then reports a huge fullness and drops every write. The line below is the one
# that OSD logged; `start` must see it in the OSD's current life and restart it cleanly.
osd_pid=$(cat "$D/run/osd.0.pid")
echo "$(date -u +%FT%T.000+0000) 7f48577fe6c0 -1 log_channel(cluster) log [ERR] : full status failsafe engaged, dropping updates, now -2147483648% full" \
  >> "$D/log/osd.0.log"
dc start "$D"
[ "$RC" = 0 ] && grep -q 'full failsafe engaged' <<<"$OUT" && grep -q 'restarted osd.0' <<<"$OUT" ||
  fail "start with the failsafe engaged: exit $RC, no clean OSD restart"
[ "$(cat "$D/run/osd.0.pid")" != "$osd_pid" ] || fail "osd.0 was not restarted"
[ "$(rbd_sha256 "$J")" = "$J_SUM" ] && [ "$(rbd_sha256 "$I")" = "$DATA_SUM" ] || fail "data changed over the failsafe restart"
dc start "$D"
[ "$RC" = 0 ] && grep -q 'already running' <<<"$OUT" || fail "a second start restarted the OSD again (the old line must not count)"
log "ok: failsafe seen in the OSD's current log, clean restart, data kept; the old line is ignored afterwards"

# ---------------------------------------------------------------------------------------
log "== SIGKILLed memstore cluster, two overlapping starts on the stale DIR"
pkill -KILL -f -- "-c $D/ceph.conf" || fail "nothing to kill"
for _ in $(seq 1 100); do [ "$(daemon_count)" = 0 ] && break; sleep 0.05; done
( t 300 "$DC" start "$D" >"$TMPD/s1.out" 2>&1; echo $? >"$TMPD/s1.rc" ) &
s1=$!
( t 300 "$DC" start "$D" >"$TMPD/s2.out" 2>&1; echo $? >"$TMPD/s2.rc" ) &
s2=$!
wait "$s1" "$s2"
sed 's/^/    | /' "$TMPD/s1.out" "$TMPD/s2.out" >&2
[ "$(cat "$TMPD/s1.rc")" = 0 ] && [ "$(cat "$TMPD/s2.rc")" = 0 ] ||
  fail "starts on a stale DIR: exit codes $(cat "$TMPD/s1.rc") and $(cat "$TMPD/s2.rc")"
cat "$TMPD/s1.out" "$TMPD/s2.out" | grep -q 'its data is gone' || fail "no data-loss notice"
[ "$(mon_count)" = 1 ] || fail "expected 1 ceph-mon, found $(mon_count)"
[ -z "$(rbd_cli ls rbd)" ] || fail "a re-made cluster should hold no images"
eval "$("$DC" env "$D")"
rbd_kube ls kube >/dev/null || fail "client.kube of the re-made cluster (new keyring)"
log "ok: re-made empty, one cluster, new keys work"

# ---------------------------------------------------------------------------------------
log "== bluestore"
dc wipe "$D"
[ "$RC" = 0 ] && [ ! -e "$D" ] || fail "wipe before bluestore: exit $RC"
dc --bluestore start "$D"
[ "$RC" = 0 ] || fail "bluestore start: exit $RC"
START_BLUE=$(secs_of)
grep -q '^osd_objectstore = bluestore' "$D/ceph.conf" || fail "not a bluestore cluster"
[ "$(stat -c %s "$D/osd.0/block")" -gt $((1 << 30)) ] && [ "$(du -k "$D/osd.0/block" | cut -f1)" -lt $((512 << 10)) ] ||
  fail "osd.0/block is not a big sparse file"
dc start "$D"       # no store asked: reuses the bluestore cluster
[ "$RC" = 0 ] && grep -q 'already running' <<<"$OUT" || fail "start on running bluestore: exit $RC"
dc --memstore start "$D"
[ "$RC" = 1 ] && grep -q 'holds a bluestore cluster' <<<"$OUT" || fail "--memstore on a bluestore DIR should be refused"
eval "$("$DC" env "$D")"
export CEPH_KUBE_KEYRING=$D/client.kube.keyring
J=rbd/$(unique_image_name jrnl)
rbd_cli create --size 64M --image-feature "$RBD_FEATURES_ALL" "$J" || fail "bluestore: create"
rbd_cli bench --io-type write --io-size 4K --io-total 8M --io-pattern rand "$J" >/dev/null 2>&1 || fail "bluestore: bench"
rbd_cli import --no-progress "$SCRATCH/data" "rbd/imp" || fail "bluestore: import"
J_SUM=$(rbd_sha256 "$J")
[ "$(rbd_sha256 rbd/imp)" = "$DATA_SUM" ] || fail "bluestore: export differs from import"
dc stop "$D"
[ "$RC" = 0 ] || fail "bluestore stop"
dc start "$D"
[ "$RC" = 0 ] || fail "bluestore restart"
RESTART_BLUE=$(secs_of)
[ "$(rbd_sha256 "$J")" = "$J_SUM" ] && [ "$(rbd_sha256 rbd/imp)" = "$DATA_SUM" ] || fail "bluestore: data changed over stop/start"
pkill -KILL -f -- "-c $D/ceph.conf"
for _ in $(seq 1 100); do [ "$(daemon_count)" = 0 ] && break; sleep 0.05; done
dc start "$D"
[ "$RC" = 0 ] && grep -q 'restarted mon.a osd.0' <<<"$OUT" || fail "bluestore start after SIGKILL: exit $RC"
[ "$(rbd_sha256 "$J")" = "$J_SUM" ] && [ "$(rbd_sha256 rbd/imp)" = "$DATA_SUM" ] || fail "bluestore: data changed over SIGKILL"
log "ok: bluestore start ${START_BLUE}s, restart ${RESTART_BLUE}s; data kept over stop and SIGKILL"

# ---------------------------------------------------------------------------------------
log "== wipe"
dc wipe "$D"
[ "$RC" = 0 ] || fail "wipe: exit $RC"
[ ! -e "$D" ] || fail "$D still exists"
[ "$(daemon_count)" = 0 ] || fail "daemons left after wipe"
port_free "$PORT" || fail "port $PORT still in use after wipe"
dc wipe "$D"
[ "$RC" = 0 ] || fail "wipe of nothing: exit $RC"
dc status "$D"
[ "$RC" = 1 ] || fail "status after wipe should fail"

pass "memstore start ${START_MEM}s, stop ${STOP_MEM}s, restart ${RESTART_MEM}s; bluestore start ${START_BLUE}s, restart ${RESTART_BLUE}s; journaling works without a mgr"
