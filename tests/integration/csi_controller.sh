#!/bin/bash
# rbd-nbdd-csi-controller against the real dev cluster, through its gRPC socket with the
# real client (tests/csi/csi_client.py), credentials in the requests' secrets only (no CEPH_*
# in its environment), every result checked as client.admin with the rbd/rados CLI:
#   Identity and ControllerGetCapabilities; GetCapacity/ListVolumes before any call taught
#   it credentials (FAILED_PRECONDITION); CreateVolume: the default features exactly, the
#   id's format and length, volume_context, the image metadata (csi.name, csi.pvc.*,
#   csi.pv.name), the name journal, capacity rounding and limit_bytes, repeats (same id) and
#   conflicts (ALREADY_EXISTS); imageFeatures with journaling, objectSize, radosNamespace
#   (a dotted name: percent-encoded in the id), dataPool (as admin), monitors instead of a
#   clusterID (carried by the id, percent-encoded; expand through it), LUKS2 and LUKS1 (the
#   header in `rbd export`), a missing passphrase; ControllerExpandVolume (mount: node
#   expansion, block: none, repeat, shrink, unknown id); ValidateVolumeCapabilities;
#   GetCapacity against `ceph df`; ListVolumes with pagination and a bad token;
#   DeleteVolume of a mapped image (a real watcher: `rbd-nbdd serve --rbd`), then of
#   everything, twice; at the end nothing is left in the pool and no key or passphrase is in
#   the controller's log, argv or environment. Snapshots and clones: csi_controller_snapshots;
#   bad input: csi_controller_errors; parallel creates and restarts: csi_controller_concurrency.
. "$(dirname "$0")/lib_csi_controller.sh"
ctl_setup
ctl_start
declare -A LAT=()
K=$KUBE_SECRETS
HEX32='[0-9a-f]{32}'

section "Identity and capabilities"
ctl GetPluginInfo OK
[ "$(ctl_resp .name)" = "$CTL_DRIVER" ] || fail "GetPluginInfo name: $(ctl_resp .name)"
[ -n "$(ctl_resp .vendor_version)" ] || fail "GetPluginInfo has no vendor_version"
ctl GetPluginCapabilities OK
caps=$(ctl_resp '[.capabilities[] | (.service.type // empty), (.volume_expansion.type // empty)] | sort | join(",")')
[ "$caps" = CONTROLLER_SERVICE,ONLINE ] || fail "GetPluginCapabilities: $caps, expected CONTROLLER_SERVICE and ONLINE expansion"
ctl Probe OK
[ "$(ctl_resp .ready)" = true ] || fail "Probe: not ready: $CTL_LAST"
ctl ControllerGetCapabilities OK
caps=$(ctl_resp '[.capabilities[].rpc.type] | sort | join(",")')
want=CLONE_VOLUME,CREATE_DELETE_SNAPSHOT,CREATE_DELETE_VOLUME,EXPAND_VOLUME,GET_CAPACITY,LIST_SNAPSHOTS,LIST_VOLUMES,SINGLE_NODE_MULTI_WRITER
[ "$caps" = "$want" ] || fail "ControllerGetCapabilities: $caps, expected $want"

section "Before any call with secrets: GetCapacity and ListVolumes have no credentials"
CAP_REQ='{"parameters": {"clusterID": "dev", "pool": "'$CTL_POOL'"}, "volume_capabilities": ['"$(mount_cap)"']}'
ctl GetCapacity FAILED_PRECONDITION "$CAP_REQ"
details_has "GetCapacity without credentials" 'credential|secret'
ctl ListVolumes FAILED_PRECONDITION '{}'
details_has "ListVolumes without credentials" 'credential|secret'

section "CreateVolume: defaults, id, context, metadata, journal"
A=pvc-a-$TAG
META='"csi.storage.k8s.io/pvc/name": "data-'$TAG'", "csi.storage.k8s.io/pvc/namespace": "ns-'$TAG'", "csi.storage.k8s.io/pv/name": "pv-'$TAG'"'
ctl CreateVolume OK "$(vol_req "$A" $((64 * MiB)) "$META")" "$K"
LAT[CreateVolume]=$CTL_ELAPSED
AID=$(ctl_resp .volume.volume_id)
AIMG=$(ctl_resp .volume.volume_context.imageName)
[[ "$AID" =~ ^rnv1\.cdev\.kube\.\.($HEX32)$ ]] || fail "volume_id '$AID' is not rnv1.cdev.kube..<32 hex>"
[ "${#AID}" -le 128 ] || fail "volume_id is ${#AID} bytes"
[ "$AIMG" = "csi-vol-$(uuid_of "$AID")" ] || fail "imageName $AIMG does not match the id $AID"
ctx=$(ctl_resp '.volume.volume_context | {pool, imageName, clusterID} | tojson')
[ "$ctx" = "{\"pool\":\"kube\",\"imageName\":\"$AIMG\",\"clusterID\":\"dev\"}" ] || fail "volume_context: $ctx"
[ "$(ctl_resp .volume.capacity_bytes)" = $((64 * MiB)) ] || fail "capacity_bytes $(ctl_resp .volume.capacity_bytes)"
[ "$(img_field "kube/$AIMG" .size)" = $((64 * MiB)) ] || fail "kube/$AIMG is $(img_field "kube/$AIMG" .size) bytes"
feat=$(img_features "kube/$AIMG")
[ "$feat" = "$(sorted_list "$RBD_FEATURES_DEFAULT")" ] || fail "kube/$AIMG features $feat, expected exactly $RBD_FEATURES_DEFAULT"
meta=$(rbd_json image-meta list "kube/$AIMG" | jq -c '{n: .["csi.name"], pn: .["csi.pvc.name"], pns: .["csi.pvc.namespace"], pv: .["csi.pv.name"]}')
[ "$meta" = "{\"n\":\"$A\",\"pn\":\"data-$TAG\",\"pns\":\"ns-$TAG\",\"pv\":\"pv-$TAG\"}" ] || fail "image metadata of kube/$AIMG: $meta"
rec=$(journal_value kube rbd-nbdd-csi.volumes "name/$A")
[ "$(jq -r '.uuid' <<< "$rec" 2>/dev/null | tr -d - | tr A-F a-f)" = "$(uuid_of "$AID")" ] \
  || fail "journal record name/$A in kube/rbd-nbdd-csi.volumes: '$rec'"
log "volume $AID = kube/$AIMG: $feat, metadata $meta, journal $rec"
ctl_state
ctl CreateVolume OK "$(vol_req "$A" $((64 * MiB)) "$META")" "$K"
LAT[CreateVolume-repeat]=$CTL_ELAPSED
[ "$(ctl_resp .volume.volume_id)" = "$AID" ] || fail "the repeat gave another id: $(ctl_resp .volume.volume_id)"
ctl CreateVolume ALREADY_EXISTS "$(vol_req "$A" $((128 * MiB)) "$META")" "$K"
ctl CreateVolume ALREADY_EXISTS "$(vol_req "$A" $((64 * MiB)) "$META"', "imageFeatures": "layering"')" "$K"
assert_unchanged "repeats and conflicting repeats of $A"

section "Capacity rounding and limit_bytes"
B=pvc-b-$TAG
REQ=$((10 * MiB + 1))
ctl CreateVolume OK "$(vol_req "$B" $REQ)" "$K"
BID=$(ctl_resp .volume.volume_id); BIMG=$(ctl_resp .volume.volume_context.imageName)
C=$(ctl_resp .volume.capacity_bytes)
[ "$C" -ge "$REQ" ] || fail "capacity $C < required $REQ"
[ "$(img_field "kube/$BIMG" .size)" = "$C" ] || fail "kube/$BIMG is $(img_field "kube/$BIMG" .size) bytes, capacity_bytes says $C"
log "required $REQ -> capacity $C"
ctl_state
if [ "$C" -gt "$REQ" ]; then
  lim='"capacity_range": {"required_bytes": "'$REQ'", "limit_bytes": "'$((C - 1))'"}'
  ctl CreateVolume OUT_OF_RANGE "$(vol_req "pvc-b2-$TAG" $REQ | jq -c ". + {$lim}")" "$K"
  assert_unchanged "a limit below the rounded size"
fi
ctl CreateVolume OK "$(vol_req "$B" $REQ | jq -c '.capacity_range.limit_bytes = "'"$C"'"')" "$K"
[ "$(ctl_resp .volume.volume_id)" = "$BID" ] || fail "the repeat of $B with limit_bytes=$C gave another id"

section "imageFeatures with journaling, objectSize"
J=pvc-j-$TAG
ctl CreateVolume OK "$(vol_req "$J" $((32 * MiB)) '"imageFeatures": "layering,exclusive-lock,journaling", "objectSize": "1M"')" "$K"
JID=$(ctl_resp .volume.volume_id); JIMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(img_features "kube/$JIMG")" = exclusive-lock,journaling,layering ] || fail "kube/$JIMG features $(img_features "kube/$JIMG")"
[ "$(img_field "kube/$JIMG" .object_size)" = $MiB ] || fail "kube/$JIMG object size $(img_field "kube/$JIMG" .object_size)"

section "radosNamespace (a dotted name, percent-encoded in the id)"
NS=ns1.$TAG
rbd_cli namespace create "kube/$NS" || fail "rbd namespace create kube/$NS"
CTL_NS+=("$NS")
N=pvc-n-$TAG
ctl CreateVolume OK "$(vol_req "$N" $((16 * MiB)) '"radosNamespace": "'"$NS"'", "objectSize": "65536"')" "$K"
NID=$(ctl_resp .volume.volume_id); NIMG=$(ctl_resp .volume.volume_context.imageName)
[[ "$NID" =~ ^rnv1\.cdev\.kube\.ns1%2[Ee]$TAG\.$HEX32$ ]] || fail "volume_id $NID: expected rnv1.cdev.kube.ns1%2E$TAG.<uuid>"
[ "$(img_field "kube/$NS/$NIMG" .object_size)" = 65536 ] || fail "kube/$NS/$NIMG: object size $(img_field "kube/$NS/$NIMG" .object_size)"
[ -n "$(journal_value "kube/$NS" rbd-nbdd-csi.volumes "name/$N")" ] || fail "no journal key name/$N in kube/$NS"
[ -z "$(journal_value kube rbd-nbdd-csi.volumes "name/$N")" ] || fail "the journal key of $N is in the default namespace"

section "dataPool (as client.admin: client.kube may not write pool rbd)"
D=pvc-d-$TAG
ctl CreateVolume OK "$(vol_req "$D" $((16 * MiB)) '"dataPool": "rbd"')" "$ADMIN_SECRETS"
DID=$(ctl_resp .volume.volume_id); DIMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(img_field "kube/$DIMG" .data_pool)" = rbd ] || fail "kube/$DIMG has data pool '$(img_field "kube/$DIMG" .data_pool)'"

section "monitors instead of clusterID: the id carries them"
M=pvc-m-$TAG
ctl CreateVolume OK "$(vol_req "$M" $((8 * MiB)) | jq -c --arg m "$CTL_MON" 'del(.parameters.clusterID) | .parameters.monitors = $m')" "$K"
MID=$(ctl_resp .volume.volume_id)
[[ "$MID" =~ ^rnv1\.m[A-Za-z0-9_%-]+\.kube\.\.$HEX32$ ]] && [ "${#MID}" -le 128 ] || fail "volume_id $MID: expected rnv1.m<encoded monitors>.kube..<uuid>"
[[ "$MID" != *"$CTL_MON"* ]] || fail "volume_id $MID: the monitors' '.' and ':' are not percent-encoded"
ctl ControllerExpandVolume OK "{\"volume_id\": \"$MID\", \"capacity_range\": {\"required_bytes\": \"$((16 * MiB))\"}}" "$K"
[ "$(img_field "kube/csi-vol-$(uuid_of "$MID")" .size)" = $((16 * MiB)) ] || fail "expand through a monitors id did not grow the image"

section "Encryption: LUKS2 (default) and LUKS1, formatted through librbd"
ENC=$TMPD/enc.json
secrets_file "$ENC" kube "$KUBE_KEY" "pass-$RANDOM-$RANDOM-$TAG"
ctl_state
ctl CreateVolume INVALID_ARGUMENT "$(vol_req "pvc-e0-$TAG" $((32 * MiB)) '"encrypted": "true"')" "$K"
details_has "encrypted without a passphrase" encryptionPassphrase
assert_unchanged "an encrypted volume without a passphrase"
ctl CreateVolume OK "$(vol_req "pvc-e2-$TAG" $((32 * MiB)) '"encrypted": "true"')" "$ENC"
LAT[CreateVolume-LUKS2]=$CTL_ELAPSED
E2ID=$(ctl_resp .volume.volume_id); E2IMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(luks_version "kube/$E2IMG")" = 2 ] || fail "kube/$E2IMG: $(luks_version "kube/$E2IMG"), expected LUKS2"
ctl CreateVolume OK "$(vol_req "pvc-e1-$TAG" $((32 * MiB)) '"encrypted": "true", "encryptionFormat": "luks1"')" "$ENC"
E1ID=$(ctl_resp .volume.volume_id); E1IMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(luks_version "kube/$E1IMG")" = 1 ] || fail "kube/$E1IMG: $(luks_version "kube/$E1IMG"), expected LUKS1"

section "ControllerExpandVolume"
exp_req() { printf '{"volume_id": "%s", "capacity_range": {"required_bytes": "%s"}, "volume_capability": %s}' "$1" "$2" "$3"; }
ctl ControllerExpandVolume OK "$(exp_req "$AID" $((128 * MiB)) "$(mount_cap)")" "$K"
LAT[ControllerExpandVolume]=$CTL_ELAPSED
[ "$(ctl_resp .capacity_bytes)" = $((128 * MiB)) ] || fail "expand: capacity_bytes $(ctl_resp .capacity_bytes)"
[ "$(ctl_resp .node_expansion_required)" = true ] || fail "a mount volume needs node expansion: $CTL_LAST"
[ "$(img_field "kube/$AIMG" .size)" = $((128 * MiB)) ] || fail "kube/$AIMG is $(img_field "kube/$AIMG" .size) bytes after expand"
ctl ControllerExpandVolume OK "$(exp_req "$AID" $((128 * MiB)) "$(mount_cap)")" "$K"
[ "$(ctl_resp .capacity_bytes)" = $((128 * MiB)) ] || fail "repeated expand: capacity_bytes $(ctl_resp .capacity_bytes)"
ctl ControllerExpandVolume OK "$(exp_req "$BID" $((20 * MiB)) "$(block_cap)")" "$K"
[ "$(ctl_resp .node_expansion_required)" != true ] || fail "a block volume needs no node expansion: $CTL_LAST"
[ "$(img_field "kube/$BIMG" .size)" -ge $((20 * MiB)) ] || fail "kube/$BIMG did not grow"
ctl ControllerExpandVolume OUT_OF_RANGE "$(exp_req "$AID" $((64 * MiB)) "$(mount_cap)")" "$K"
[ "$(img_field "kube/$AIMG" .size)" = $((128 * MiB)) ] || fail "a refused shrink changed kube/$AIMG"
ctl ControllerExpandVolume NOT_FOUND "$(exp_req "rnv1.cdev.kube..$(printf '%032x' 7)" $((64 * MiB)) "$(mount_cap)")" "$K"

section "ValidateVolumeCapabilities"
val_req() { printf '{"volume_id": "%s", "volume_capabilities": [%s], "volume_context": {"pool": "kube", "clusterID": "dev"}}' "$1" "$2"; }
ctl ValidateVolumeCapabilities OK "$(val_req "$AID" "$(mount_cap)")" "$K"
[ "$(ctl_resp '.confirmed.volume_capabilities | length')" = 1 ] || fail "SINGLE_NODE_WRITER mount not confirmed: $CTL_LAST"
ctl ValidateVolumeCapabilities OK "$(val_req "$AID" "$(block_cap SINGLE_NODE_MULTI_WRITER)")" "$K"
[ "$(ctl_resp '.confirmed.volume_capabilities | length')" = 1 ] || fail "SINGLE_NODE_MULTI_WRITER block not confirmed: $CTL_LAST"
ctl ValidateVolumeCapabilities OK "$(val_req "$AID" "$(mount_cap ext4 MULTI_NODE_MULTI_WRITER)")" "$K"
[ -z "$(ctl_resp .confirmed)" ] || fail "MULTI_NODE_MULTI_WRITER mount confirmed: $CTL_LAST"
[ -n "$(ctl_resp .message)" ] || fail "an unconfirmed validation says nothing: $CTL_LAST"
ctl ValidateVolumeCapabilities NOT_FOUND "$(val_req "rnv1.cdev.kube..$(printf '%032x' 7)" "$(mount_cap)")" "$K"

section "GetCapacity (credentials learnt from the calls above), against ceph df"
ctl_get_capacity

section "ListVolumes: all, then one page at a time, a bad token"
ctl ListVolumes OK '{}'
all=$(ctl_resp '[.entries[]?.volume.volume_id] | sort | join(" ")')
for v in "$AID" "$BID" "$JID" "$E2ID" "$E1ID"; do [[ " $all " == *" $v "* ]] || fail "ListVolumes lacks $v: $all"; done
[ "$(ctl_resp '[.entries[]?.volume | select(.volume_id == "'"$AID"'") | .capacity_bytes][0]')" = $((128 * MiB)) ] \
  || fail "ListVolumes: $AID capacity is not 128 MiB: $CTL_LAST"
paged='' token='' pages=0
while :; do
  ctl ListVolumes OK "{\"max_entries\": 1${token:+, \"starting_token\": \"$token\"}}"
  [ "$(ctl_resp '.entries | length')" -le 1 ] || fail "ListVolumes max_entries=1 gave $(ctl_resp '.entries | length') entries"
  paged+=" $(ctl_resp '[.entries[]?.volume.volume_id] | join(" ")')"
  token=$(ctl_resp .next_token)
  pages=$((pages + 1))
  [ -n "$token" ] || break
  [ "$pages" -lt 200 ] || fail "ListVolumes pagination does not end"
done
[ "$(tr ' ' '\n' <<< "$paged" | grep . | sort | paste -sd' ')" = "$all" ] || fail "the pages ($paged) are not the full list ($all)"
log "ListVolumes: $pages pages of 1 = the full list"
ctl ListVolumes ABORTED '{"starting_token": "no-such-token"}'

section "DeleteVolume of a mapped volume (a real watcher), then of everything"
start_rbd_server --rbd "kube/$AIMG"
ctl_state
ctl DeleteVolume FAILED_PRECONDITION "{\"volume_id\": \"$AID\"}" "$K"
details_has "DeleteVolume of a watched image" "$AIMG"
assert_unchanged "DeleteVolume of a watched image"
stop_rbd_server
ctl DeleteVolume OK "{\"volume_id\": \"$AID\"}" "$K"
LAT[DeleteVolume]=$CTL_ELAPSED
ctl DeleteVolume OK "{\"volume_id\": \"$AID\"}" "$K"
LAT[DeleteVolume-repeat]=$CTL_ELAPSED
for v in "$BID" "$JID" "$NID" "$E2ID" "$E1ID" "$MID"; do
  ctl DeleteVolume OK "{\"volume_id\": \"$v\"}" "$K"
  ctl DeleteVolume OK "{\"volume_id\": \"$v\"}" "$K"
done
ctl DeleteVolume OK "{\"volume_id\": \"$DID\"}" "$ADMIN_SECRETS"
ctl ListVolumes OK '{}'
left=$(ctl_resp '[.entries[]?.volume.volume_id] | join(" ")')
for v in "$AID" "$BID" "$JID" "$NID" "$DID" "$E2ID" "$E1ID" "$MID"; do
  [[ " $left " != *" $v "* ]] || fail "ListVolumes still lists the deleted $v"
done
ctl_assert_clean
rbd_cli namespace remove "kube/$NS" || fail "kube/$NS could not be removed (not empty?)"
CTL_NS=()
ctl_assert_no_leak "$KUBE_SECRETS" "$ADMIN_SECRETS" "$ENC"
ctl_stop
lat=''; for k in "${!LAT[@]}"; do lat+=" $k=${LAT[$k]}s"; done
log "latency:$lat"
pass "every controller RPC, against the dev cluster"
