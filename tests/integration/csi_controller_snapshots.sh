#!/bin/bash
# rbd-nbdd-csi-controller's snapshots and clones against the real dev cluster (see
# csi_controller.sh for the set-up): CreateSnapshot (ready_to_use, size_bytes,
# creation_time, source, the id's format; its own image csi-snap-<uuid> with the RBD snapshot
# of that name; no snapshot left on the source; repeat = same id; the same name for another
# source = ALREADY_EXISTS; quiesce required/best-effort/skip; a bad quiesce value and an
# unknown parameter = INVALID_ARGUMENT, nothing left); DeleteSnapshot twice; ListSnapshots
# by id, by source, all, one page at a time, unknown ids (empty), a bad token (ABORTED);
# CreateVolume from a snapshot (a clone: `rbd info` shows the parent; the data written
# before the snapshot; bigger = grown; smaller = OUT_OF_RANGE; an unknown snapshot =
# NOT_FOUND) and from a volume (a clone, no snapshot left on the source); a snapshot whose
# source volume was deleted still lists and restores; the pool ends with no image, no trash
# entry and no journal key.
. "$(dirname "$0")/lib_csi_controller.sh"
ctl_setup
ctl_start
K=$KUBE_SECRETS
HEX32='[0-9a-f]{32}'
declare -A LAT=()
del_snap() { ctl DeleteSnapshot OK "{\"snapshot_id\": \"$1\"}" "$K"; }
del_vol() { ctl DeleteVolume OK "{\"volume_id\": \"$1\"}" "$K"; }
user_snaps() { rbd_json snap ls "$1" | jq -r '[.[].name] | join(",")'; }

section "Two source volumes, 1 MiB of data written into the first"
A=pvc-sa-$TAG B=pvc-sb-$TAG
ctl CreateVolume OK "$(vol_req "$A" $((64 * MiB)))" "$K"
AID=$(ctl_resp .volume.volume_id); AIMG=$(ctl_resp .volume.volume_context.imageName)
ctl CreateVolume OK "$(vol_req "$B" $((32 * MiB)))" "$K"
BID=$(ctl_resp .volume.volume_id)
DATA=$(t 60 "$CTL_PY" "$CTL_CHECK" write --spec "kube/$AIMG" --bytes $MiB --seed 11) || fail "writing kube/$AIMG failed"

section "CreateSnapshot"
S1=snap-1-$TAG
ctl CreateSnapshot OK "$(snap_req "$S1" "$AID")" "$K"
LAT[CreateSnapshot]=$CTL_ELAPSED
SID=$(ctl_resp .snapshot.snapshot_id)
[[ "$SID" =~ ^rns1\.cdev\.kube\.\.$(uuid_of "$AID")\.$HEX32$ ]] || fail "snapshot_id $SID is not rns1.cdev.kube..<source uuid>.<uuid>"
[ "${#SID}" -le 128 ] || fail "snapshot_id is ${#SID} bytes"
[ "$(ctl_resp .snapshot.ready_to_use)" = true ] || fail "not ready_to_use: $CTL_LAST"
[ "$(ctl_resp .snapshot.size_bytes)" = $((64 * MiB)) ] || fail "size_bytes $(ctl_resp .snapshot.size_bytes)"
[ "$(ctl_resp .snapshot.source_volume_id)" = "$AID" ] || fail "source_volume_id $(ctl_resp .snapshot.source_volume_id)"
ct=$(ctl_resp .snapshot.creation_time)
ct_s=$(date -d "$ct" +%s 2>/dev/null) || fail "creation_time '$ct' is not a timestamp"
[ $(( $(date +%s) - ct_s )) -ge -5 ] && [ $(( $(date +%s) - ct_s )) -le 120 ] || fail "creation_time $ct is not now"
SIMG=csi-snap-$(uuid_of "$SID")
[ "$(user_snaps "kube/$SIMG")" = "$SIMG" ] || fail "kube/$SIMG has snapshots '$(user_snaps "kube/$SIMG")', expected $SIMG"
[ -z "$(user_snaps "kube/$AIMG")" ] || fail "the source kube/$AIMG kept snapshots: $(user_snaps "kube/$AIMG")"
[ "$(head_sha "kube/$SIMG@$SIMG")" = "$DATA" ] || fail "kube/$SIMG@$SIMG does not hold the source's data"
[ -n "$(journal_value kube rbd-nbdd-csi.snapshots "name/$S1")" ] || fail "no journal key name/$S1 in kube/rbd-nbdd-csi.snapshots"
log "snapshot $SID = kube/$SIMG@$SIMG, created $ct"
ctl_state
ctl CreateSnapshot OK "$(snap_req "$S1" "$AID")" "$K"
[ "$(ctl_resp .snapshot.snapshot_id)" = "$SID" ] || fail "the repeat gave another snapshot: $(ctl_resp .snapshot.snapshot_id)"
[ "$(ctl_resp .snapshot.creation_time)" = "$ct" ] || fail "the repeat has another creation_time"
ctl CreateSnapshot ALREADY_EXISTS "$(snap_req "$S1" "$BID")" "$K"
ctl CreateSnapshot INVALID_ARGUMENT "$(snap_req "snap-q-$TAG" "$AID" '"quiesce": "sometimes"')" "$K"
details_has "a bad quiesce value" quiesce
ctl CreateSnapshot INVALID_ARGUMENT "$(snap_req "snap-u-$TAG" "$AID" '"colour": "blue"')" "$K"
details_has "an unknown snapshot parameter" colour
assert_unchanged "repeats, a conflicting name and bad parameters"
declare -A QS=()
for q in required best-effort skip; do
  ctl CreateSnapshot OK "$(snap_req "snap-$q-$TAG" "$AID" "\"quiesce\": \"$q\"")" "$K"
  QS[$q]=$(ctl_resp .snapshot.snapshot_id)
done
[ -z "$(user_snaps "kube/$AIMG")" ] || fail "the source kube/$AIMG kept snapshots: $(user_snaps "kube/$AIMG")"

section "ListSnapshots"
ls_ids() { ctl_resp '[.entries[]?.snapshot.snapshot_id] | sort | join(" ")'; }
ctl ListSnapshots OK "{\"snapshot_id\": \"$SID\"}" "$K"
[ "$(ls_ids)" = "$SID" ] || fail "ListSnapshots by id: $(ls_ids)"
e=$(ctl_resp '.entries[0].snapshot | [.size_bytes, .source_volume_id, .ready_to_use, .creation_time] | map(tostring) | join(" ")')
[ "$e" = "$((64 * MiB)) $AID true $ct" ] || fail "ListSnapshots by id: the entry differs from CreateSnapshot's: $e"
ctl ListSnapshots OK "{\"source_volume_id\": \"$AID\"}" "$K"
want=$(printf '%s\n' "$SID" "${QS[@]}" | sort | paste -sd' ')
[ "$(ls_ids)" = "$want" ] || fail "ListSnapshots by source: $(ls_ids), expected $want"
ctl ListSnapshots OK "{\"source_volume_id\": \"$BID\"}" "$K"
[ -z "$(ls_ids)" ] || fail "ListSnapshots of a source without snapshots: $(ls_ids)"
ctl ListSnapshots OK '{}' "$K"
all=$(ls_ids)
for s in $want; do [[ " $all " == *" $s "* ]] || fail "ListSnapshots (all) lacks $s"; done
paged='' token='' pages=0
while :; do
  ctl ListSnapshots OK "{\"max_entries\": 1${token:+, \"starting_token\": \"$token\"}}" "$K"
  [ "$(ctl_resp '.entries | length')" -le 1 ] || fail "max_entries=1 gave $(ctl_resp '.entries | length') entries"
  paged+=" $(ls_ids)"
  token=$(ctl_resp .next_token)
  pages=$((pages + 1))
  [ -n "$token" ] || break
  [ "$pages" -lt 200 ] || fail "ListSnapshots pagination does not end"
done
[ "$(tr ' ' '\n' <<< "$paged" | grep . | sort | paste -sd' ')" = "$all" ] || fail "the pages ($paged) are not the full list ($all)"
ctl ListSnapshots ABORTED '{"starting_token": "no-such-token"}' "$K"
ctl ListSnapshots OK "{\"snapshot_id\": \"rns1.cdev.kube..$(uuid_of "$AID").$(printf '%032x' 9)\"}" "$K"
[ -z "$(ls_ids)" ] || fail "ListSnapshots of an unknown snapshot_id: $(ls_ids)"
ctl ListSnapshots OK '{"snapshot_id": "not-a-snapshot-id"}' "$K"
[ -z "$(ls_ids)" ] || fail "ListSnapshots of a malformed snapshot_id: $(ls_ids)"

section "CreateVolume from the snapshot: same size, bigger, smaller, unknown"
from_snap() { printf '"volume_content_source": {"snapshot": {"snapshot_id": "%s"}}' "$1"; }
from_vol() { printf '"volume_content_source": {"volume": {"volume_id": "%s"}}' "$1"; }
ctl CreateVolume OK "$(vol_req "pvc-r1-$TAG" $((64 * MiB)) '' "$(from_snap "$SID")")" "$K"
LAT[CreateVolume-from-snapshot]=$CTL_ELAPSED
R1=$(ctl_resp .volume.volume_id); R1IMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(ctl_resp .volume.content_source.snapshot.snapshot_id)" = "$SID" ] || fail "the restore does not name its source: $CTL_LAST"
par=$(rbd_json info "kube/$R1IMG" | jq -r '.parent | "\(.pool)/\(.image)@\(.snapshot)"')
[ "$par" = "kube/$SIMG@$SIMG" ] || fail "kube/$R1IMG's parent is $par, expected kube/$SIMG@$SIMG"
[ "$(head_sha "kube/$R1IMG")" = "$DATA" ] || fail "kube/$R1IMG does not hold the snapshot's data"
ctl CreateVolume OK "$(vol_req "pvc-r2-$TAG" $((96 * MiB)) '' "$(from_snap "$SID")")" "$K"
R2=$(ctl_resp .volume.volume_id); R2IMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(ctl_resp .volume.capacity_bytes)" = $((96 * MiB)) ] || fail "a bigger restore: capacity $(ctl_resp .volume.capacity_bytes)"
[ "$(img_field "kube/$R2IMG" .size)" = $((96 * MiB)) ] || fail "kube/$R2IMG is $(img_field "kube/$R2IMG" .size) bytes"
ctl_state
ctl CreateVolume OUT_OF_RANGE "$(vol_req "pvc-r3-$TAG" $((32 * MiB)) '' "$(from_snap "$SID")")" "$K"
ctl CreateVolume NOT_FOUND "$(vol_req "pvc-r4-$TAG" $((64 * MiB)) '' "$(from_snap "rns1.cdev.kube..$(uuid_of "$AID").$(printf '%032x' 9)")")" "$K"
ctl CreateVolume ALREADY_EXISTS "$(vol_req "pvc-r1-$TAG" $((64 * MiB)) '' "$(from_snap "${QS[skip]}")")" "$K"
assert_unchanged "a smaller restore, an unknown snapshot, a repeat with another source"

section "CreateVolume from a volume (a clone, bigger than its source)"
ctl CreateVolume OK "$(vol_req "pvc-c1-$TAG" $((80 * MiB)) '' "$(from_vol "$AID")")" "$K"
LAT[CreateVolume-from-volume]=$CTL_ELAPSED
C1=$(ctl_resp .volume.volume_id); C1IMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(ctl_resp .volume.content_source.volume.volume_id)" = "$AID" ] || fail "the clone does not name its source: $CTL_LAST"
[ "$(img_field "kube/$C1IMG" .size)" = $((80 * MiB)) ] || fail "kube/$C1IMG is $(img_field "kube/$C1IMG" .size) bytes"
[ -n "$(img_field "kube/$C1IMG" .parent.image)" ] || fail "kube/$C1IMG has no parent: not a clone"
[ "$(head_sha "kube/$C1IMG")" = "$DATA" ] || fail "the clone kube/$C1IMG does not hold its source's data"
[ -z "$(user_snaps "kube/$AIMG")" ] || fail "the source kube/$AIMG kept snapshots: $(user_snaps "kube/$AIMG")"
ctl CreateVolume NOT_FOUND "$(vol_req "pvc-c2-$TAG" $((80 * MiB)) '' "$(from_vol "rnv1.cdev.kube..$(printf '%032x' 5)")")" "$K"

section "A snapshot outlives its source volume"
X=pvc-sx-$TAG
ctl CreateVolume OK "$(vol_req "$X" $((16 * MiB)))" "$K"
XID=$(ctl_resp .volume.volume_id); XIMG=$(ctl_resp .volume.volume_context.imageName)
XDATA=$(t 60 "$CTL_PY" "$CTL_CHECK" write --spec "kube/$XIMG" --bytes $MiB --seed 23) || fail "writing kube/$XIMG failed"
ctl CreateSnapshot OK "$(snap_req "snap-x-$TAG" "$XID")" "$K"
XSID=$(ctl_resp .snapshot.snapshot_id)
del_vol "$XID"
[ -z "$(rbd_json ls kube | jq -r --arg i "$XIMG" '.[] | select(. == $i)')" ] || fail "kube/$XIMG still a head image after DeleteVolume"
ctl ListSnapshots OK "{\"snapshot_id\": \"$XSID\"}" "$K"
[ "$(ls_ids)" = "$XSID" ] || fail "the snapshot of a deleted volume is not listed: $(ls_ids)"
ctl CreateVolume OK "$(vol_req "pvc-rx-$TAG" $((16 * MiB)) '' "$(from_snap "$XSID")")" "$K"
RX=$(ctl_resp .volume.volume_id); RXIMG=$(ctl_resp .volume.volume_context.imageName)
[ "$(head_sha "kube/$RXIMG")" = "$XDATA" ] || fail "the restore of a deleted volume's snapshot lost its data"

section "DeleteSnapshot and DeleteVolume, each twice; nothing left"
for s in "$SID" "${QS[@]}" "$XSID"; do del_snap "$s"; LAT[DeleteSnapshot]=$CTL_ELAPSED; del_snap "$s"; done
ctl ListSnapshots OK "{\"source_volume_id\": \"$AID\"}" "$K"
[ -z "$(ls_ids)" ] || fail "deleted snapshots still listed: $(ls_ids)"
for v in "$AID" "$BID" "$R1" "$R2" "$C1" "$RX" "$XID"; do del_vol "$v"; del_vol "$v"; done
ctl_assert_clean
ctl_assert_no_leak "$KUBE_SECRETS"
ctl_stop
lat=''; for k in "${!LAT[@]}"; do lat+=" $k=${LAT[$k]}s"; done
log "latency:$lat"
pass "snapshots and clones"
