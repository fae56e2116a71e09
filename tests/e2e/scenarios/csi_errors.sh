#!/bin/bash
# Every error code rbd-nbdd-csi owes a CO, each checked on the wire:
#   INVALID_ARGUMENT for each missing required field of every Node call, checked before
#     anything else (the other fields point at bogus paths and pools);
#   NOT_FOUND for stats/expand of an unknown volume (absolute and relative paths) and for
#     stats of a known volume at a path that does not exist;
#   FAILED_PRECONDITION for publish without a staging path and for publish of an unstaged
#     volume;
#   ALREADY_EXISTS for a republish to the same target with another readonly flag or another
#     capability (the same publish again is OK);
#   ABORTED for a stage or unstage of a volume whose stage is still running (a slow stage:
#     its monitors are 127.0.0.1:1, unreachable), while other calls still answer; the slow
#     stage then fails with a clear error and leaves no device and no mount;
#   bad credentials (a wrong key for client.kube, an unknown user; connectTimeout=10):
#     PERMISSION_DENIED naming the secret's userID/userKey, both when the monitors refuse at
#     once (msgr2) and when they answer but keep refusing until the connect timeout (v1: the
#     daemon's probe sees their banner and reports a refusal, EACCES); an error naming the
#     credentials, no device left;
#     no key (good or bad) in any log, the state dir, or a process's argv;
#   UNIMPLEMENTED for Controller calls; GetPluginInfo, GetPluginCapabilities (no controller
#     service), NodeGetInfo and Probe OK; Probe FAILED_PRECONDITION while the daemon is down,
#     OK again once it is back.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

csi_up

VOL=err1
ST=$(csi_staging $VOL)
TG=$(csi_target $VOL pod-err)
csi_create_image $VOL 64M
mkdir -p "$ST" "$(dirname "$TG")"
BOGUS=/nonexistent/bogus/path
STAGE=$(csi_stage_json $VOL "$ST" ext4)
PUB=$(csi_publish_json $VOL "$ST" "$TG" ext4)
XP='{"volume_id": "'$VOL'", "volume_path": "'$TG'", "staging_target_path": "'$ST'", "capacity_range": {"required_bytes": "134217728"}}'
SP='{"volume_id": "'$VOL'", "volume_path": "'$TG'"}'
# batch_lines JQ_PROGRAM : batch lines made by ONE jq (an exec costs up to a second in the
# guest), with the requests above as $S (stage), $P (publish), $SP (stats), $XP (expand),
# read from stdin (the stage request holds the key: not on jq's command line), and:
#   req(NAME; METHOD; EXPECT; REQUEST)  one line
#   bogus  every path in a request replaced by $b (a bogus one), the pool by one that does
#          not exist
batch_lines() {
  printf '%s\n' "$STAGE" "$PUB" "$SP" "$XP" | jq -c -s --arg b "$BOGUS" \
    '.[0] as $S | .[1] as $P | .[2] as $SP | .[3] as $XP
     | def req($n; $m; $e; $r): {name: $n, method: $m, expect: $e, request: $r};
       def bogus: with_entries(if (.key | test("path$")) then .value = $b else . end)
         | if .volume_context.pool then .volume_context.pool = "no-such-pool" else . end;
     '"$1"
}

step "identity, node info, and UNIMPLEMENTED controller calls"
{
  csi_req info GetPluginInfo OK '{}'
  csi_req caps GetPluginCapabilities OK '{}'
  csi_req probe Probe OK '{}'
  csi_req node-info NodeGetInfo OK '{}'
  csi_req node-caps NodeGetCapabilities OK '{}'
  csi_req create-volume CreateVolume UNIMPLEMENTED '{"name": "pvc-1"}'
  csi_req delete-volume DeleteVolume UNIMPLEMENTED '{"volume_id": "pvc-1"}'
  csi_req controller-publish ControllerPublishVolume UNIMPLEMENTED '{"volume_id": "pvc-1", "node_id": "e2e"}'
  csi_req controller-caps ControllerGetCapabilities UNIMPLEMENTED '{}'
} | csi_batch
jq -s -e '.[] | select(.name == "caps") | [.response.capabilities[]?.service.type // empty] | all(. != "CONTROLLER_SERVICE")' \
  "$CSI_BATCH_OUT" > /dev/null || fail "GetPluginCapabilities advertises CONTROLLER_SERVICE: $(jq -c 'select(.name == "caps")' "$CSI_BATCH_OUT")"
jq -s -e '.[] | select(.name == "probe") | (.response.ready // true) == true' "$CSI_BATCH_OUT" > /dev/null \
  || fail "Probe answered ready=false with the daemon up"

step "INVALID_ARGUMENT for every missing field, before anything else"
batch_lines '
  def bad($n; $m; $r): req($n; $m; "INVALID_ARGUMENT"; $r);
  bad("stage-no-volume-id"; "NodeStageVolume"; $S | del(.volume_id) | bogus),
  bad("stage-no-staging-path"; "NodeStageVolume"; $S | del(.staging_target_path)),
  bad("stage-no-capability"; "NodeStageVolume"; $S | del(.volume_capability) | bogus),
  bad("stage-no-access-mode"; "NodeStageVolume"; $S | del(.volume_capability.access_mode) | bogus),
  bad("stage-no-secrets"; "NodeStageVolume"; $S | del(.secrets) | bogus),
  bad("stage-no-user-key"; "NodeStageVolume"; $S | del(.secrets.userKey) | bogus),
  bad("stage-no-user-id"; "NodeStageVolume"; $S | del(.secrets.userID) | bogus),
  bad("stage-no-pool"; "NodeStageVolume"; $S | del(.volume_context.pool)),
  bad("stage-no-image"; "NodeStageVolume"; $S | del(.volume_context.imageName)),
  bad("stage-no-context"; "NodeStageVolume"; $S | del(.volume_context)),
  bad("unstage-no-volume-id"; "NodeUnstageVolume"; {staging_target_path: $b}),
  bad("unstage-no-staging-path"; "NodeUnstageVolume"; {volume_id: $S.volume_id}),
  bad("publish-no-volume-id"; "NodePublishVolume"; $P | del(.volume_id) | bogus),
  bad("publish-no-target"; "NodePublishVolume"; $P | del(.target_path)),
  bad("publish-no-capability"; "NodePublishVolume"; $P | del(.volume_capability)),
  bad("unpublish-no-volume-id"; "NodeUnpublishVolume"; {target_path: $b}),
  bad("unpublish-no-target"; "NodeUnpublishVolume"; {volume_id: $S.volume_id}),
  bad("stats-no-volume-id"; "NodeGetVolumeStats"; $SP | del(.volume_id) | bogus),
  bad("stats-no-path"; "NodeGetVolumeStats"; $SP | del(.volume_path)),
  bad("stats-unknown-no-path"; "NodeGetVolumeStats"; {volume_id: "no-such-volume"}),
  bad("expand-no-volume-id"; "NodeExpandVolume"; $XP | del(.volume_id) | bogus),
  bad("expand-no-path"; "NodeExpandVolume"; $XP | del(.volume_path))
' | csi_batch
assert_no_nbd_connected
[ -z "$(csi_mounts)" ] || fail "an invalid request mounted something: $(csi_mounts)"

step "NOT_FOUND for stats/expand of an unknown volume; FAILED_PRECONDITION for publish of an unstaged volume"
{
  csi_req stats-unknown NodeGetVolumeStats NOT_FOUND '{"volume_id": "no-such-volume", "volume_path": "/run"}'
  csi_req stats-unknown-relative NodeGetVolumeStats NOT_FOUND '{"volume_id": "no-such-volume", "volume_path": "some/relative/path"}'
  csi_req expand-unknown NodeExpandVolume NOT_FOUND '{"volume_id": "no-such-volume", "volume_path": "/run", "capacity_range": {"required_bytes": "134217728"}}'
  csi_req expand-unknown-relative NodeExpandVolume NOT_FOUND '{"volume_id": "no-such-volume", "volume_path": "rel/path", "capacity_range": {"required_bytes": "134217728"}}'
  batch_lines 'req("publish-no-staging-path"; "NodePublishVolume"; "FAILED_PRECONDITION"; $P | del(.staging_target_path))'
  csi_req publish-unstaged NodePublishVolume FAILED_PRECONDITION "$PUB"
  csi_req unpublish-never-published NodeUnpublishVolume OK "$(csi_unpublish_json $VOL "$TG")"
  csi_req unstage-never-staged NodeUnstageVolume OK "$(csi_unstage_json $VOL "$ST")"
} | csi_batch
[ ! -e "$TG" ] || fail "a failed publish left $TG behind"

step "ALREADY_EXISTS for a republish with another readonly flag or capability"
csi_stage $VOL "$ST" --fs ext4
csi_publish $VOL "$ST" "$TG" --fs ext4
{
  csi_req republish-same NodePublishVolume OK "$PUB"
  csi_req republish-readonly NodePublishVolume ALREADY_EXISTS "$(csi_publish_json $VOL "$ST" "$TG" ext4 true)"
  csi_req republish-block NodePublishVolume ALREADY_EXISTS "$(csi_publish_json $VOL "$ST" "$TG" block)"
  batch_lines 'req("republish-other-mode"; "NodePublishVolume"; "ALREADY_EXISTS";
    $P | .volume_capability.access_mode.mode = "SINGLE_NODE_READER_ONLY")'
  csi_req stats-missing-path NodeGetVolumeStats NOT_FOUND '{"volume_id": "'$VOL'", "volume_path": "/run/no/such/path"}'
} | csi_batch
[[ ",$(mount_opts "$TG")," == *,rw,* ]] || fail "a refused republish changed $TG: $(mount_opts "$TG")"
csi_unpublish $VOL "$TG"
csi_unstage $VOL "$ST"
assert_csi_clean

step "ABORTED while a stage of the same volume is running (monitors unreachable)"
SLOW=slow1
SLOW_ST=$(csi_staging $SLOW)
mkdir -p "$SLOW_ST"
csi_create_image $SLOW 64M
# connectTimeout 15 s (the default is 30): the window for the concurrent calls below, which
# take a few seconds even in a loaded guest
slow_req=$(jq -c --arg s "$SLOW_ST" '.volume_context.monitors = "127.0.0.1:1" | del(.volume_context.clusterID)
  | .volume_context.connectTimeout = "15"
  | .volume_id = "slow1" | .volume_context.imageName = "slow1" | .staging_target_path = $s' <<< "$STAGE")
echo "S $SLOW $SLOW_ST" >> "$_CSI_UNDO"
# the concurrent calls are made beforehand: the slow stage's window is its connect timeout
concurrent=$(
  csi_req concurrent-stage NodeStageVolume ABORTED "$slow_req"
  csi_req concurrent-unstage NodeUnstageVolume ABORTED "$(csi_unstage_json slow1 "$SLOW_ST")"
  csi_req concurrent-expand NodeExpandVolume ABORTED '{"volume_id": "slow1", "volume_path": "'$SLOW_ST'", "capacity_range": {"required_bytes": "134217728"}}'
  csi_req other-call-answers NodeGetInfo OK '{}'
)
t0=$SECONDS
csi_req slow-stage NodeStageVolume ANY "$slow_req" | csi_submit slow batch
# the stage is under way once the plugin recorded the volume (it writes its record before it
# maps); give it at most 8 s to get there
deadline=$((SECONDS + 8))
until grep -rqs -- "$SLOW" "$CSI_STATE" || [ "$SECONDS" -ge "$deadline" ]; do nap 0.2; done
if grep -rqs -- "$SLOW" "$CSI_STATE"; then log "the slow stage is under way (state recorded after $((SECONDS - t0)) s)"
else log "no state record for $SLOW after 8 s: going on, the stage should still be waiting for its monitors"; fi
! csi_done slow || fail "the slow stage finished already: $(csi_collect slow 2>&1)"
printf '%s\n' "$concurrent" | csi_batch
! csi_done slow || fail "the slow stage finished during the concurrent calls, they proved nothing: $(csi_collect slow 2>&1)"
while ! csi_done slow; do
  [ "$((SECONDS - t0))" -lt 150 ] || fail "the slow stage is still running after 150 s"
  nap 0.5
done
r=$(csi_collect slow 2>/dev/null | head -n 1)
code=$(jq -r .code <<< "$r") det=$(jq -r .details <<< "$r")
log "the slow stage ended after $((SECONDS - t0)) s: $code: $det"
[ "$code" != OK ] && [ "$code" != ABORTED ] || fail "the stage against unreachable monitors returned $code"
grep -qiE 'monitor|connect|timed? ?out|unreachable|127\.0\.0\.1:1' <<< "$det" \
  || fail "the slow stage's error does not say what went wrong: '$det'"
! mountpoint -q "$SLOW_ST" || fail "the failed stage left $SLOW_ST mounted"
assert_no_nbd_connected
csi_unstage $SLOW "$SLOW_ST"

step "bad credentials: an error, no device, no key anywhere"
BAD=badkey1
BAD_ST=$(csi_staging $BAD)
mkdir -p "$BAD_ST"
csi_create_image $BAD 64M
BADKEY=$(ceph-authtool --gen-print-key)
[ -n "$BADKEY" ] && [ "$BADKEY" != "$(kube_key)" ] || fail "could not make a wrong key"
csi_secrets_file "$CSI_DIR/bad.json" kube "$BADKEY"
csi_secrets_file "$CSI_DIR/nouser.json" nobody "$(kube_key)"
echo "S $BAD $BAD_ST" >> "$_CSI_UNDO"
for sec in bad nouser; do
  # connectTimeout=10 (the volume_context key): the error comes after 10 s, not the default 30
  # shellcheck disable=SC2046
  csi_expect ANY stage --vol $BAD --staging "$BAD_ST" --fs ext4 $(csi_ctx $BAD) --ctx connectTimeout=10 \
    --secrets "$CSI_DIR/$sec.json"
  code=$(jq -r .code <<< "$CSI_LAST")
  [ "$code" != OK ] || fail "a stage with $sec credentials succeeded"
  log "stage with $sec credentials: $code: $(jq -r .details <<< "$CSI_LAST")"
  # csi/csi_error.h: cephx's EACCES/EPERM is PERMISSION_DENIED with the secret named (a
  # v1 refusal that lasts until connectTimeout is EACCES too: gateway/rbd/cluster.cc)
  [ "$code" = PERMISSION_DENIED ] || fail "a stage with $sec credentials returned $code (want PERMISSION_DENIED)"
  jq -r .details <<< "$CSI_LAST" | grep -q "userKey" \
    || fail "PERMISSION_DENIED for $sec credentials does not say to check userKey"
  # The plugin's monitors are a bare IP:PORT (Ceph's v1 protocol retries a refused key
  # until the connect timeout): the error must still say it is the credentials.
  jq -r .details <<< "$CSI_LAST" | grep -qE "authentication failed|wrong key" \
    || fail "a stage with $sec credentials did not name the credentials as the problem"
  # the monitors refused at once (msgr2), or the daemon waited the volume's connectTimeout
  jq -r .details <<< "$CSI_LAST" | grep -qE "authentication failed|within 10 s" \
    || fail "a stage with $sec credentials did not use the volume's connectTimeout (10 s)"
  ! mountpoint -q "$BAD_ST" || fail "a stage with $sec credentials left $BAD_ST mounted"
  assert_no_nbd_connected
  csi_unstage $BAD "$BAD_ST"
done
sleep 1
assert_no_secret_leak "$BADKEY"
assert_no_secret_leak "$(kube_key)"

step "Probe: FAILED_PRECONDITION while the daemon is down, OK once it is back"
stop_daemon
csi_expect FAILED_PRECONDITION call Probe
start_daemon
csi_ok call Probe
assert_csi_clean

stop_csi
stop_daemon
pass
