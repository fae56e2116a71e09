#!/bin/bash
# rbd-nbdd-csi-controller under concurrency and restarts, against the real dev cluster
# (set-up: csi_controller.sh):
#   8 CreateVolume calls with one name at once (one client, 8 threads): all OK with one
#   volume_id, and exactly one image and one journal key in the pool; 4 CreateSnapshot calls
#   with one name at once: one snapshot; 4 CreateVolume calls with 4 names at once: 4
#   volumes. Two controller processes (two replicas) racing 8 CreateVolume and 4
#   CreateSnapshot calls on one name, three rounds: OK or ABORTED only, one volume that a
#   retry gets, one image and one key. A restart between a create and its repeat (SIGKILL,
#   a new process): the repeat answers the same id and makes no second image; the new
#   process knows no credentials
#   (GetCapacity FAILED_PRECONDITION) until a call brings them. A SIGKILL while an encrypted
#   create is in flight: the repeat after the restart gives one complete volume (LUKS header
#   there) and nothing else; until then it answers only "retry" codes. SIGTERM while an
#   encrypted create is in flight: the call finishes OK, then the process exits 0. Nothing
#   is left at the end.
. "$(dirname "$0")/lib_csi_controller.sh"
ctl_setup
ctl_start
K=$KUBE_SECRETS
count_new() {  # KIND : how many state lines of KIND ("image", "key", "trash") appeared
  local before=$CTL_STATE n
  n=$(t 60 "$CTL_PY" "$CTL_CHECK" state --pool "$CTL_POOL" | comm -13 <(echo "$before") - | grep -c "^$1 " || true)
  echo "$n"
}
ctl_state

section "8 parallel CreateVolume, one name"
P=pvc-par-$TAG
req=$(vol_req "$P" $((32 * MiB)))
for i in 1 2 3 4 5 6 7 8; do
  printf '{"name": "create-%s", "method": "CreateVolume", "expect": "OK", "request": %s}\n' "$i" "$req"
done | ctl_batch "$K" --parallel
ids=$(jq -r '.response.volume.volume_id' "$CTL_BATCH" | sort -u)
[ "$(grep -c . <<< "$ids")" = 1 ] || fail "8 parallel creates of $P gave $(grep -c . <<< "$ids") volume ids: $(paste -sd' ' <<< "$ids")"
PID_=$ids
[ "$(count_new image)" = 1 ] || fail "8 parallel creates of $P: $(count_new image) new images"
[ "$(count_new key)" = 1 ] || fail "8 parallel creates of $P: $(count_new key) new journal keys"
log "8 parallel creates: one volume $PID_, one image; slowest $(jq -s 'map(.elapsed) | max' "$CTL_BATCH")s"
ctl_state

section "4 parallel CreateSnapshot, one name; 4 parallel CreateVolume, 4 names"
sreq=$(snap_req "snap-par-$TAG" "$PID_")
for i in 1 2 3 4; do
  printf '{"name": "snap-%s", "method": "CreateSnapshot", "expect": "OK", "request": %s}\n' "$i" "$sreq"
done | ctl_batch "$K" --parallel
sids=$(jq -r '.response.snapshot.snapshot_id' "$CTL_BATCH" | sort -u)
[ "$(grep -c . <<< "$sids")" = 1 ] || fail "4 parallel snapshots gave $(grep -c . <<< "$sids") ids"
[ "$(count_new image)" = 1 ] || fail "4 parallel snapshots of one name: $(count_new image) new images"
ctl_state
for i in 1 2 3 4; do
  printf '{"name": "vol-%s", "method": "CreateVolume", "expect": "OK", "request": %s}\n' \
    "$i" "$(vol_req "pvc-many$i-$TAG" $((8 * MiB)))"
done | ctl_batch "$K" --parallel
many=$(jq -r '.response.volume.volume_id' "$CTL_BATCH" | sort -u)
[ "$(grep -c . <<< "$many")" = 4 ] || fail "4 creates of 4 names gave $(grep -c . <<< "$many") distinct ids"
[ "$(count_new image)" = 4 ] || fail "4 creates of 4 names: $(count_new image) new images"

section "Two controllers (two replicas, no leader election) race on one name"
# Each round: 8 CreateVolume calls of one name, 4 to each process, at once; then 4
# CreateSnapshot calls of one name of that volume, 2 to each. The journal's guarded swaps
# let one attempt at a time hold a name: every call answers OK or ABORTED (a retry code),
# the OK ones agree, a retry gets that volume, and one image and one key are left. (Before
# the swaps, a losing attempt's rollback could remove the winner's image: a lost PV.)
CTL2_SOCK=$TMPD/ctl2.sock CTL2_LOG=$TMPD/ctl2.log
CTL_LOGS+=("$CTL2_LOG")
_ctl2_ready() { local CTL_SOCK=$CTL2_SOCK; _ctl_ready; }
start_ready rbd-nbdd-csi-controller-2 "$CTL2_LOG" 30 _ctl2_ready \
  -- env -u CEPH_CONF -u CEPH_KEYRING -u CEPH_ARGS -u CEPH_MON_HOST -u CEPH_KUBE_KEYRING \
  "$CTL_BIN" --endpoint "unix://$CTL2_SOCK" --cluster-config "$CTL_CONFIG" --log-level debug
CTL2_PID=$STARTED_PID
on_exit 'kill -KILL $CTL2_PID 2>/dev/null'
# race_ids PATH : fails unless every code of the last batch is OK or ABORTED; prints the
# distinct .response.PATH of the OK ones
race_ids() {
  local bad
  bad=$(jq -r 'select(.code != "OK" and .code != "ABORTED") | "\(.name) \(.code): \(.details)"' "$CTL_BATCH")
  [ -z "$bad" ] || fail "two controllers racing: a call answered neither OK nor ABORTED: $bad"
  jq -r "select(.code == \"OK\") | .response.$1" "$CTL_BATCH" | sort -u
}
RACE_VOLS=() RACE_SNAPS=()
for round in 1 2 3; do
  R=pvc-two-$round-$TAG
  ctl_state
  req=$(vol_req "$R" $((16 * MiB)))
  for i in 1 2 3 4 5 6 7 8; do
    ep=$CTL_SOCK; [ $((i % 2)) = 0 ] && ep=$CTL2_SOCK
    printf '{"name": "two-%s-%s", "method": "CreateVolume", "expect": "ANY", "endpoint": "%s", "request": %s}\n' \
      "$round" "$i" "$ep" "$req"
  done | ctl_batch "$K" --parallel
  ok_ids=$(race_ids volume.volume_id)
  [ "$(grep -c . <<< "$ok_ids")" -le 1 ] || fail "round $round: two controllers gave two volume ids: $(paste -sd' ' <<< "$ok_ids")"
  log "round $round: $(jq -r .code "$CTL_BATCH" | sort | uniq -c | paste -sd' ')"
  ctl CreateVolume OK "$req" "$K"  # the CO's retry
  RID=$(ctl_resp .volume.volume_id)
  [ -z "$ok_ids" ] || [ "$RID" = "$ok_ids" ] || fail "round $round: the retry gave $RID, the race $ok_ids (a lost volume)"
  rimg=$(ctl_resp .volume.volume_context.imageName)
  [ -n "$(img_field "kube/$rimg" .size)" ] || fail "round $round: the volume's image kube/$rimg is gone"
  [ "$(count_new image)" = 1 ] || fail "round $round: $(count_new image) new images (expected 1)"
  [ "$(count_new key)" = 1 ] || fail "round $round: $(count_new key) new journal keys (expected 1)"
  RACE_VOLS+=("$RID")
  ctl_state
  sreq=$(snap_req "snap-two-$round-$TAG" "$RID")
  for i in 1 2 3 4; do
    ep=$CTL_SOCK; [ $((i % 2)) = 0 ] && ep=$CTL2_SOCK
    printf '{"name": "snap-two-%s-%s", "method": "CreateSnapshot", "expect": "ANY", "endpoint": "%s", "request": %s}\n' \
      "$round" "$i" "$ep" "$sreq"
  done | ctl_batch "$K" --parallel
  ok_sids=$(race_ids snapshot.snapshot_id)
  [ "$(grep -c . <<< "$ok_sids")" -le 1 ] || fail "round $round: two controllers gave two snapshot ids"
  ctl CreateSnapshot OK "$sreq" "$K"
  RSID=$(ctl_resp .snapshot.snapshot_id)
  [ -z "$ok_sids" ] || [ "$RSID" = "$ok_sids" ] || fail "round $round: the snapshot retry gave $RSID, the race $ok_sids"
  [ "$(count_new image)" = 1 ] || fail "round $round: $(count_new image) new snapshot images (expected 1)"
  RACE_SNAPS+=("$RSID")
done
for sid in "${RACE_SNAPS[@]}"; do ctl DeleteSnapshot OK "{\"snapshot_id\": \"$sid\"}" "$K"; done
for v in "${RACE_VOLS[@]}"; do ctl DeleteVolume OK "{\"volume_id\": \"$v\"}" "$K"; done
stop_checked rbd-nbdd-csi-controller-2 "$CTL2_PID" "$CTL2_LOG" 30

section "SIGKILL between a create and its repeat"
Q=pvc-restart-$TAG
ctl CreateVolume OK "$(vol_req "$Q" $((16 * MiB)))" "$K"
QID=$(ctl_resp .volume.volume_id)
ctl_state
ctl_kill9
ctl_start
ctl GetCapacity FAILED_PRECONDITION '{"parameters": {"clusterID": "dev", "pool": "kube"}}'
details_has "GetCapacity after a restart" 'credential|secret'
ctl CreateVolume OK "$(vol_req "$Q" $((16 * MiB)))" "$K"
[ "$(ctl_resp .volume.volume_id)" = "$QID" ] || fail "after a restart the repeat of $Q gave $(ctl_resp .volume.volume_id), not $QID"
assert_unchanged "the repeat of $Q after a restart"
ctl_get_capacity

section "SIGKILL while an encrypted create is in flight"
ENC=$TMPD/enc.json
secrets_file "$ENC" kube "$KUBE_KEY" "pass-$RANDOM-$TAG"
L=pvc-inflight-$TAG
lreq=$(vol_req "$L" $((32 * MiB)) '"encrypted": "true"')
ctl_state
_ctl_send S2 "" --expect ANY call CreateVolume "$lreq" --secrets "$ENC" || fail "could not submit the create"
# wait until the name is reserved (the journal key exists), then kill at once
for _ in $(seq 1 100); do
  [ -n "$(journal_value kube rbd-nbdd-csi.volumes "name/$L")" ] && break
  nap 0.05
done
ctl_kill9
_ctl_send C2 "" || true
log "the create cut by SIGKILL answered ${_CODE:-nothing} (${_DETAILS:0:120})"
log "left by the cut create: $(count_new image) image(s), $(count_new key) key(s)"
ctl_start
# The dead process's watch on the half-made image lasts until the OSD drops it (30 s): the
# repeat may have to wait for that, like a provisioner retrying. Until it succeeds it must
# answer a code that says "in progress, retry" (external-provisioner treats every other code
# as final: it would stop retrying, and a deleted PVC would leave the half-made image behind).
t0=$SECONDS
while :; do
  ctl CreateVolume 'OK|ABORTED|UNAVAILABLE|DEADLINE_EXCEEDED' "$lreq" "$ENC"
  [ "$CTL_CODE" != OK ] || break
  [ $((SECONDS - t0)) -lt 90 ] || fail "the repeat of the cut create still fails after 90 s: $CTL_CODE"
  nap 2
done
log "the repeat of the cut create succeeded after $((SECONDS - t0)) s"
LID=$(ctl_resp .volume.volume_id); LIMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(count_new image)" = 1 ] || fail "after the cut create and its repeat: $(count_new image) new images (expected 1)"
[ "$(count_new key)" = 1 ] || fail "after the cut create and its repeat: $(count_new key) new journal keys"
[ "$(count_new trash)" = 0 ] || fail "after the cut create and its repeat: trash entries"
[ "$(luks_version "kube/$LIMG")" = 2 ] || fail "kube/$LIMG after the repeat: $(luks_version "kube/$LIMG"), expected LUKS2"
[ "$(img_field "kube/$LIMG" .size)" -ge $((32 * MiB)) ] || fail "kube/$LIMG is $(img_field "kube/$LIMG" .size) bytes"

section "SIGTERM while an encrypted create is in flight: it finishes, then exit 0"
G=pvc-drain-$TAG
greq=$(vol_req "$G" $((32 * MiB)) '"encrypted": "true"')
ctl_state
_ctl_send S3 "" --expect ANY call CreateVolume "$greq" --secrets "$ENC" || fail "could not submit the create"
for _ in $(seq 1 100); do
  [ -n "$(journal_value kube rbd-nbdd-csi.volumes "name/$G")" ] && break
  nap 0.05
done
dpid=$CTL_PID
CTL_PID=
kill -TERM "$dpid"
_ctl_send C3 "" || true
log "the create in flight at SIGTERM -> ${_CODE:-nothing} after ${_ELAPSED}s${_DETAILS:+: $_DETAILS}"
[ "$_CODE" = OK ] || fail "a create in flight at SIGTERM did not finish: ${_CODE:-no answer} ($_DETAILS)"
GID=$(jq -r '.response.volume.volume_id' <<< "${_OUT%%$'\x1e'*}")
printf 'V %s %s\n' "$GID" "$ENC" >> "$TMPD/created"
wait_checked rbd-nbdd-csi-controller "$dpid" "$CTL_LOG" 60
[ "$(luks_version "kube/csi-vol-$(uuid_of "$GID")")" = 2 ] || fail "the volume finished at SIGTERM has no LUKS2 header"
[ "$(count_new image)" = 1 ] || fail "the create finished at SIGTERM: $(count_new image) new images"
ctl_start

section "Delete everything; SIGTERM"
ctl DeleteSnapshot OK "{\"snapshot_id\": \"$sids\"}" "$K"
for v in "$PID_" $many "$QID" "$LID" "$GID"; do ctl DeleteVolume OK "{\"volume_id\": \"$v\"}" "$K"; done
ctl_assert_clean
ctl_assert_no_leak "$KUBE_SECRETS" "$ENC"
ctl_stop
pass "parallel creates make one volume; restarts keep ids; a cut create completes on repeat"
