#!/bin/bash
# rbd-nbdd-csi-controller refuses bad input with the right code and a message naming the
# cause, and leaves nothing behind: after every refusal (or batch of refusals) pool kube has
# no new image, trash entry or journal key, and no pool appeared. Against the real dev
# cluster (set-up: csi_controller.sh):
#   an unknown pool, clusterID, parameter, feature, encryptionFormat; a missing pool,
#   clusterID, name, capability, secret; feature dependencies; bad objectSize values; a
#   wrong key (PERMISSION_DENIED, quickly), an unknown user, a user without caps (mon 'allow
#   r'); sizes: none (a default, > 0), only a limit, negative, huge, a limit below the
#   required size; unreachable monitors (DEADLINE_EXCEEDED, in the background); a wrong key
#   on every RPC that takes secrets, against a real volume (never an idempotent OK);
#   malformed and unknown volume and snapshot ids on every RPC that takes one; missing
#   fields; the RPCs it does not offer (UNIMPLEMENTED).
. "$(dirname "$0")/lib_csi_controller.sh"
ctl_setup
ctl_start
K=$KUBE_SECRETS
hex() { printf '%032x' "$1"; }
# bad WHAT CODE ERE METHOD JSON [SECRETS] : refused with CODE, the message matches ERE, and
# Ceph is as it was.
bad() {
  local what=$1 code=$2 re=$3
  shift 3
  ctl "$1" "$code" "$2" "${3:-}"
  [ -z "$re" ] || details_has "$what" "$re"
  assert_unchanged "$what"
}
ctl_state

section "Unreachable monitors: started now, collected at the end (it may wait for a timeout)"
_ctl_send S1 "" --expect ANY call CreateVolume "$(vol_req "pvc-dead-$TAG" $MiB | jq -c '.parameters.clusterID = "dead"')" --secrets "$K" \
  || fail "could not submit the call to unreachable monitors"

section "Where: pool, cluster"
bad "an unknown pool" INVALID_ARGUMENT "nopool-$TAG" CreateVolume "$(vol_req "pvc-e1-$TAG" $MiB | jq -c ".parameters.pool = \"nopool-$TAG\"")" "$K"
bad "an unknown clusterID" INVALID_ARGUMENT "nocluster-$TAG" CreateVolume "$(vol_req "pvc-e2-$TAG" $MiB | jq -c ".parameters.clusterID = \"nocluster-$TAG\"")" "$K"
bad "no pool" INVALID_ARGUMENT pool CreateVolume "$(vol_req "pvc-e3-$TAG" $MiB | jq -c 'del(.parameters.pool)')" "$K"
bad "neither clusterID nor monitors" INVALID_ARGUMENT clusterID CreateVolume "$(vol_req "pvc-e4-$TAG" $MiB | jq -c 'del(.parameters.clusterID)')" "$K"

section "Who: wrong key, unknown user, no caps, missing secrets"
# The kube key was used above, so a connection as client.kube is pooled: a wrong key for the
# same user must still be refused (the pool is keyed by the key too, or it checks it).
WRONG=$TMPD/wrong.json NOBODY=$TMPD/nobody.json NOCAPS=$TMPD/nocaps.json
secrets_file "$WRONG" kube "$(ceph-authtool --gen-print-key)"
secrets_file "$NOBODY" "nobody-$TAG" "$(ceph-authtool --gen-print-key)"
rbd_user_create "nocaps-$TAG" mon 'allow r'
secrets_file "$NOCAPS" "nocaps-$TAG" "$(cat "$TMPD/client.nocaps-$TAG.key")"
# monitors as a bare IP:PORT: Ceph's v1 protocol retries a refused key until the connect
# timeout, so these two are collected at the end
_ctl_send S2 "" --expect ANY call CreateVolume "$(vol_req "pvc-e5b-$TAG" $MiB)" --secrets "$WRONG" || fail "submit"
_ctl_send S3 "" --expect ANY call CreateVolume "$(vol_req "pvc-e6b-$TAG" $MiB)" --secrets "$NOBODY" || fail "submit"
dev2() { vol_req "$1" $MiB | jq -c '.parameters.clusterID = "dev2"'; }
bad "a wrong key (v2 monitors)" PERMISSION_DENIED 'userID.*userKey|userKey.*userID' CreateVolume "$(dev2 "pvc-e5-$TAG")" "$WRONG"
awk -v e="$CTL_ELAPSED" 'BEGIN { exit !(e < 10) }' || fail "a wrong key took ${CTL_ELAPSED}s to be refused"
log "a wrong key refused in ${CTL_ELAPSED}s"
bad "an unknown user (v2 monitors)" PERMISSION_DENIED 'userID' CreateVolume "$(dev2 "pvc-e6-$TAG")" "$NOBODY"
awk -v e="$CTL_ELAPSED" 'BEGIN { exit !(e < 10) }' || fail "an unknown user took ${CTL_ELAPSED}s to be refused"
bad "a user without caps (mon 'allow r')" PERMISSION_DENIED 'userID' CreateVolume "$(vol_req "pvc-e7-$TAG" $MiB)" "$NOCAPS"
awk -v e="$CTL_ELAPSED" 'BEGIN { exit !(e < 10) }' || fail "a user without caps took ${CTL_ELAPSED}s to be refused"
bad "no secrets" INVALID_ARGUMENT userID CreateVolume "$(vol_req "pvc-e8-$TAG" $MiB)"
printf '{"userID": "kube"}\n' > "$TMPD/nokey.json"
bad "no userKey" INVALID_ARGUMENT userKey CreateVolume "$(vol_req "pvc-e9-$TAG" $MiB)" "$TMPD/nokey.json"

section "What: parameters, features, object size, encryption, capabilities, name"
p() { vol_req "pvc-p$RANDOM-$TAG" $MiB "$1"; }
bad "an unknown feature" INVALID_ARGUMENT teleport CreateVolume "$(p '"imageFeatures": "layering,teleport"')" "$K"
bad "object-map without exclusive-lock" INVALID_ARGUMENT exclusive-lock CreateVolume "$(p '"imageFeatures": "layering,object-map"')" "$K"
bad "fast-diff without object-map" INVALID_ARGUMENT object-map CreateVolume "$(p '"imageFeatures": "layering,exclusive-lock,fast-diff"')" "$K"
bad "journaling without exclusive-lock" INVALID_ARGUMENT exclusive-lock CreateVolume "$(p '"imageFeatures": "layering,journaling"')" "$K"
for os in 3M 64M 2K 0 abc; do
  bad "objectSize $os" INVALID_ARGUMENT objectSize CreateVolume "$(p "\"objectSize\": \"$os\"")" "$K"
done
ENC=$TMPD/enc.json
secrets_file "$ENC" kube "$KUBE_KEY" "pass-$RANDOM-$TAG"
bad "encryptionFormat luks3" INVALID_ARGUMENT encryptionFormat CreateVolume "$(p '"encrypted": "true", "encryptionFormat": "luks3"')" "$ENC"
bad "encrypted maybe" INVALID_ARGUMENT encrypted CreateVolume "$(p '"encrypted": "maybe"')" "$ENC"
bad "a namespace that makes the volume_id longer than 128 bytes" INVALID_ARGUMENT '128' CreateVolume \
  "$(p "\"radosNamespace\": \"$(printf 'n%.0s' {1..100})\"")" "$K"
bad "an unknown parameter" INVALID_ARGUMENT colour CreateVolume "$(p '"colour": "blue"')" "$K"
bad "no name" INVALID_ARGUMENT name CreateVolume "$(p '' | jq -c 'del(.name)')" "$K"
bad "no volume_capabilities" INVALID_ARGUMENT capabilit CreateVolume "$(p '' | jq -c 'del(.volume_capabilities)')" "$K"
bad "MULTI_NODE_MULTI_WRITER mount" INVALID_ARGUMENT 'MULTI_NODE|access' CreateVolume \
  "$(p '' | jq -c ".volume_capabilities = [$(mount_cap ext4 MULTI_NODE_MULTI_WRITER)]")" "$K"
bad "a capability without block or mount" INVALID_ARGUMENT 'block|mount|capabilit' CreateVolume \
  "$(p '' | jq -c '.volume_capabilities = [{"access_mode": {"mode": "SINGLE_NODE_WRITER"}}]')" "$K"

section "Sizes"
bad "a huge size" OUT_OF_RANGE '' CreateVolume "$(vol_req "pvc-h-$TAG" 9223372036854775807)" "$K"
bad "limit below required" OUT_OF_RANGE '' CreateVolume "$(vol_req "pvc-l-$TAG" $((20 * MiB)) | jq -c ".capacity_range.limit_bytes = \"$((10 * MiB))\"")" "$K"
bad "a negative size" 'INVALID_ARGUMENT|OUT_OF_RANGE' '' CreateVolume "$(vol_req "pvc-n-$TAG" -1)" "$K"
ctl CreateVolume OK "$(vol_req "pvc-z-$TAG" 0 | jq -c 'del(.capacity_range)')" "$K"
ZID=$(ctl_resp .volume.volume_id); ZC=$(ctl_resp .volume.capacity_bytes)
[ "$ZC" -gt 0 ] && [ "$(img_field "kube/$(ctl_resp .volume.volume_context.imageName)" .size)" = "$ZC" ] \
  || fail "no capacity_range: capacity $ZC, image $(img_field "kube/$(ctl_resp .volume.volume_context.imageName)" .size)"
log "no capacity_range: a ${ZC}-byte volume$([ "$ZC" = $GiB ] && echo ' (1 GiB)')"
ctl CreateVolume OK "$(vol_req "pvc-z2-$TAG" 0 | jq -c ".capacity_range = {\"limit_bytes\": \"$((32 * MiB))\"}")" "$K"
Z2ID=$(ctl_resp .volume.volume_id); Z2C=$(ctl_resp .volume.capacity_bytes)
[ "$Z2C" -gt 0 ] && [ "$Z2C" -le $((32 * MiB)) ] || fail "only limit_bytes=32 MiB: capacity $Z2C"
log "only limit_bytes = 32 MiB: a ${Z2C}-byte volume"

section "A wrong key on every RPC with secrets, against a real volume (v2 monitors: refused at once)"
ctl CreateVolume OK "$(vol_req "pvc-w-$TAG" $((16 * MiB)) | jq -c '.parameters.clusterID = "dev2"')" "$K"
WID=$(ctl_resp .volume.volume_id)
ctl CreateSnapshot OK "$(snap_req "snap-w-$TAG" "$WID")" "$K"
WSID=$(ctl_resp .snapshot.snapshot_id)
ctl_state
bad "DeleteVolume, wrong key" PERMISSION_DENIED userKey DeleteVolume "{\"volume_id\": \"$WID\"}" "$WRONG"
bad "DeleteSnapshot, wrong key" PERMISSION_DENIED userKey DeleteSnapshot "{\"snapshot_id\": \"$WSID\"}" "$WRONG"
bad "CreateSnapshot, wrong key" PERMISSION_DENIED userKey CreateSnapshot "$(snap_req "snap-w2-$TAG" "$WID")" "$WRONG"
bad "ListSnapshots, wrong key" PERMISSION_DENIED userKey ListSnapshots "{\"source_volume_id\": \"$WID\"}" "$WRONG"
bad "ControllerExpandVolume, wrong key" PERMISSION_DENIED userKey ControllerExpandVolume \
  "{\"volume_id\": \"$WID\", \"capacity_range\": {\"required_bytes\": \"$((32 * MiB))\"}}" "$WRONG"
bad "CreateVolume from a volume, wrong key" PERMISSION_DENIED userKey CreateVolume \
  "$(vol_req "pvc-w2-$TAG" $((16 * MiB)) '' "\"volume_content_source\": {\"volume\": {\"volume_id\": \"$WID\"}}" | jq -c '.parameters.clusterID = "dev2"')" "$WRONG"

bad "a content source in another cluster" INVALID_ARGUMENT clusterID CreateVolume \
  "$(vol_req "pvc-x-$TAG" $((16 * MiB)) '' "\"volume_content_source\": {\"snapshot\": {\"snapshot_id\": \"$WSID\"}}")" "$K"

section "Malformed and unknown volume ids on every RPC that takes one (one batch each)"
LONG=$(printf 'v%.0s' {1..200})
VIDS=(garbage rnv1 "rnv1.cdev.kube..zz" "rnv1.cdev.kube..$(printf '%031x' 1)" "rnv1.cdev.kube..$(hex 1)x"
      "rnv1.cdev.kube.%zz.$(hex 1)" "rnv2.cdev.kube..$(hex 1)" "rns1.cdev.kube..$(hex 1).$(hex 2)" "$LONG"
      "rnv1.cdev.kube/../..$(hex 1)" "rnv1.cdev.kube..$(hex 1)"
      "rnv1.cdev.nopool-$TAG..$(hex 1)" "rnv1.cdev.kube.nons-$TAG.$(hex 1)")
i=0
for v in "${VIDS[@]}"; do
  i=$((i + 1))
  j=$(jq -Rc . <<< "$v")
  cat <<EOF
{"name": "v$i DeleteVolume", "method": "DeleteVolume", "expect": "OK", "request": {"volume_id": $j}}
{"name": "v$i ControllerExpandVolume", "method": "ControllerExpandVolume", "expect": "NOT_FOUND", "request": {"volume_id": $j, "capacity_range": {"required_bytes": "$((64 * MiB))"}}}
{"name": "v$i ValidateVolumeCapabilities", "method": "ValidateVolumeCapabilities", "expect": "NOT_FOUND", "request": {"volume_id": $j, "volume_capabilities": [$(mount_cap)]}}
{"name": "v$i CreateVolume from it", "method": "CreateVolume", "expect": "NOT_FOUND", "request": $(vol_req "pvc-bv$i-$TAG" $MiB '' "\"volume_content_source\": {\"volume\": {\"volume_id\": $j}}")}
{"name": "v$i CreateSnapshot of it", "method": "CreateSnapshot", "expect": "NOT_FOUND", "request": {"name": "snap-bv$i-$TAG", "source_volume_id": $j}}
EOF
done > "$TMPD/badvol.jsonl"
ctl_batch "$K" < "$TMPD/badvol.jsonl"
[ -z "$(jq -r 'select(.code != "OK" and .details == "") | .name' "$CTL_BATCH")" ] \
  || fail "refusals without a message: $(jq -r 'select(.code != "OK" and .details == "") | .name' "$CTL_BATCH" | paste -sd,)"
assert_unchanged "malformed and unknown volume ids (${#VIDS[@]} ids, 5 RPCs each)"

section "Malformed and unknown snapshot ids"
SIDS=(garbage rns1 "rns1.cdev.kube..$(hex 1)" "rns1.cdev.kube..$(hex 1).zz" "rnv1.cdev.kube..$(hex 1)" "$LONG"
      "rns1.cdev.kube..$(hex 1).$(hex 2)" "rns1.cdev.nopool-$TAG..$(hex 1).$(hex 2)"
      "$(sed 's/^rns1\.cdev2\./rns1.cdev./' <<< "${WSID%.*}").$(hex 3)")
i=0
for s in "${SIDS[@]}"; do
  i=$((i + 1))
  j=$(jq -Rc . <<< "$s")
  cat <<EOF
{"name": "s$i DeleteSnapshot", "method": "DeleteSnapshot", "expect": "OK", "request": {"snapshot_id": $j}}
{"name": "s$i CreateVolume from it", "method": "CreateVolume", "expect": "NOT_FOUND", "request": $(vol_req "pvc-bs$i-$TAG" $MiB '' "\"volume_content_source\": {\"snapshot\": {\"snapshot_id\": $j}}")}
{"name": "s$i ListSnapshots", "method": "ListSnapshots", "expect": "OK", "request": {"snapshot_id": $j}}
EOF
done > "$TMPD/badsnap.jsonl"
ctl_batch "$K" < "$TMPD/badsnap.jsonl"
[ "$(jq -r 'select(.method == "ListSnapshots") | .response.entries // [] | length' "$CTL_BATCH" | sort -u)" = 0 ] \
  || fail "ListSnapshots listed something for a malformed or unknown snapshot_id"
assert_unchanged "malformed and unknown snapshot ids (${#SIDS[@]} ids, 3 RPCs each)"

section "Ids naming a clusterID the config lacks: refused naming it (never OK: the image may exist)"
# README says an unknown id deletes OK; an unconfigured cluster is not proof that the volume is
# gone (the config may have lost it), so a refusal naming the clusterID is the safe answer.
NV="rnv1.cnope-$TAG.kube..$(hex 1)" NS_="rns1.cnope-$TAG.kube..$(hex 1).$(hex 2)"
bad "DeleteVolume, unconfigured cluster" INVALID_ARGUMENT "nope-$TAG" DeleteVolume "{\"volume_id\": \"$NV\"}" "$K"
bad "DeleteSnapshot, unconfigured cluster" INVALID_ARGUMENT "nope-$TAG" DeleteSnapshot "{\"snapshot_id\": \"$NS_\"}" "$K"
bad "ControllerExpandVolume, unconfigured cluster" 'INVALID_ARGUMENT|NOT_FOUND' "nope-$TAG" ControllerExpandVolume \
  "{\"volume_id\": \"$NV\", \"capacity_range\": {\"required_bytes\": \"$((64 * MiB))\"}}" "$K"
bad "ValidateVolumeCapabilities, unconfigured cluster" 'INVALID_ARGUMENT|NOT_FOUND' "nope-$TAG" ValidateVolumeCapabilities \
  "{\"volume_id\": \"$NV\", \"volume_capabilities\": [$(mount_cap)]}" "$K"
bad "CreateSnapshot, unconfigured cluster" 'INVALID_ARGUMENT|NOT_FOUND' "nope-$TAG" CreateSnapshot "$(snap_req "snap-nc-$TAG" "$NV")" "$K"
bad "CreateVolume from a volume, unconfigured cluster" 'INVALID_ARGUMENT|NOT_FOUND' "nope-$TAG" CreateVolume \
  "$(vol_req "pvc-nc1-$TAG" $MiB '' "\"volume_content_source\": {\"volume\": {\"volume_id\": \"$NV\"}}")" "$K"
bad "CreateVolume from a snapshot, unconfigured cluster" 'INVALID_ARGUMENT|NOT_FOUND' "nope-$TAG" CreateVolume \
  "$(vol_req "pvc-nc2-$TAG" $MiB '' "\"volume_content_source\": {\"snapshot\": {\"snapshot_id\": \"$NS_\"}}")" "$K"

section "Missing fields, RPCs not offered"
bad "DeleteVolume without volume_id" INVALID_ARGUMENT volume_id DeleteVolume '{}' "$K"
bad "DeleteSnapshot without snapshot_id" INVALID_ARGUMENT snapshot_id DeleteSnapshot '{}' "$K"
bad "CreateSnapshot without name" INVALID_ARGUMENT name CreateSnapshot "{\"source_volume_id\": \"$WID\"}" "$K"
bad "CreateSnapshot without source" INVALID_ARGUMENT source CreateSnapshot "{\"name\": \"snap-ns-$TAG\"}" "$K"
bad "ControllerExpandVolume without volume_id" INVALID_ARGUMENT volume_id ControllerExpandVolume \
  "{\"capacity_range\": {\"required_bytes\": \"$((32 * MiB))\"}}" "$K"
bad "ControllerExpandVolume without capacity_range" INVALID_ARGUMENT capacity ControllerExpandVolume "{\"volume_id\": \"$WID\"}" "$K"
bad "ValidateVolumeCapabilities without volume_id" INVALID_ARGUMENT volume_id ValidateVolumeCapabilities "{\"volume_capabilities\": [$(mount_cap)]}" "$K"
bad "ValidateVolumeCapabilities without capabilities" INVALID_ARGUMENT capabilit ValidateVolumeCapabilities "{\"volume_id\": \"$WID\"}" "$K"
bad ControllerPublishVolume UNIMPLEMENTED '' ControllerPublishVolume "{\"volume_id\": \"$WID\", \"node_id\": \"n1\", \"volume_capability\": $(mount_cap)}" "$K"
bad ControllerUnpublishVolume UNIMPLEMENTED '' ControllerUnpublishVolume "{\"volume_id\": \"$WID\", \"node_id\": \"n1\"}" "$K"
bad ControllerGetVolume UNIMPLEMENTED '' ControllerGetVolume "{\"volume_id\": \"$WID\"}"
bad ControllerModifyVolume UNIMPLEMENTED '' ControllerModifyVolume "{\"volume_id\": \"$WID\", \"mutable_parameters\": {\"a\": \"b\"}}" "$K"

section "Collected: unreachable monitors, a wrong key and an unknown user on bare IP:PORT monitors"
collect() {  # ID WHAT CODE MAXSECS
  _ctl_send "C$1" "" || true
  log "$2 -> ${_CODE:-no answer} after ${_ELAPSED}s: $_DETAILS"
  [ "$_CODE" = "$3" ] || fail "$2: expected $3, got ${_CODE:-no answer} ($_DETAILS${_ERR:+; $_ERR})"
  awk -v e="$_ELAPSED" -v m="$4" 'BEGIN { exit !(e < m) }' || fail "$2 took ${_ELAPSED}s"
}
collect 1 "unreachable monitors" DEADLINE_EXCEEDED 60
collect 2 "a wrong key (bare IP:PORT monitors)" PERMISSION_DENIED 60
collect 3 "an unknown user (bare IP:PORT monitors)" PERMISSION_DENIED 60
assert_unchanged "unreachable monitors, refused users"

section "Clean up"
ctl DeleteSnapshot OK "{\"snapshot_id\": \"$WSID\"}" "$K"
for v in "$WID" "$ZID" "$Z2ID"; do ctl DeleteVolume OK "{\"volume_id\": \"$v\"}" "$K"; done
ctl_assert_clean
ctl_assert_no_leak "$KUBE_SECRETS" "$WRONG" "$NOBODY" "$NOCAPS" "$ENC"
ctl_stop
pass "bad input refused with the right codes, nothing left behind"
