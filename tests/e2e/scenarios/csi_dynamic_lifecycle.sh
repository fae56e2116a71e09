#!/bin/bash
# The dynamic lifecycle, as Kubernetes drives it with a StorageClass, through the real gRPC
# sockets of rbd-nbdd-csi-controller and rbd-nbdd-csi, with client.kube credentials in the
# requests' secrets only (no CEPH_* and no keyring in either plugin's environment):
#   CreateVolume (all default features) -> NodeStage (mkfs ext4, mount) -> NodePublish;
#   write files; CreateSnapshot while fio writes to the mounted filesystem: the daemon's log
#   shows the freeze and the thaw of that filesystem, and fio goes on without an error;
#   CreateVolume from the snapshot, staged as a block volume: e2fsck -fn is clean; staged
#   as a mount: the files written before the snapshot are there, byte for byte; a clone of
#   the volume (bigger than its source: the image and the filesystem grow); ControllerExpand
#   (node_expansion_required) then NodeExpand (df grows); NodeExpand to a size the image
#   never reaches is OUT_OF_RANGE at once; then unpublish, unstage, DeleteSnapshot and every
#   DeleteVolume (the source goes while a clone still needs its snapshot: trash, then a
#   purge once the clones are gone), ending with nothing left in the pool: no image, no
#   trash entry, no controller object with keys.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi3
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

csi_up
start_controller
SECRETS=$CSI_SECRETS
PARAMS='{"clusterID": "'$CSI_CLUSTER_ID'", "pool": "'$CSI_POOL'", "csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "e2e"}'
MiB=$((1 << 20))
rados_() { t 60 rados -c "$CEPH_CONF" --keyring "$CEPH_KEYRING" "$@"; }

step "controller identity and capabilities"
ctl_ok call GetPluginCapabilities
caps=$(csi_resp '[.capabilities[] | (.service.type // .volume_expansion.type // empty)] | sort | join(",")')
[[ ",$caps," == *,CONTROLLER_SERVICE,* && ",$caps," == *,ONLINE,* ]] \
  || fail "GetPluginCapabilities lacks CONTROLLER_SERVICE or online expansion: $caps"
ctl_ok call ControllerGetCapabilities
caps=$(csi_resp '[.capabilities[].rpc.type] | sort | join(",")')
for c in CREATE_DELETE_VOLUME CREATE_DELETE_SNAPSHOT CLONE_VOLUME EXPAND_VOLUME LIST_VOLUMES LIST_SNAPSHOTS GET_CAPACITY SINGLE_NODE_MULTI_WRITER; do
  [[ ",$caps," == *",$c,"* ]] || fail "ControllerGetCapabilities lacks $c (has $caps)"
done

# ---------------------------------------------------------------------------------------
step "CreateVolume: 256 MiB, every default feature"
ctl_ok call CreateVolume --secrets "$SECRETS" \
  '{"name": "pvc-dyn-src", "capacity_range": {"required_bytes": "'$((256 * MiB))'"},
    "volume_capabilities": ['"$(csi_mount_cap ext4)"'], "parameters": '"$PARAMS"'}'
VID=$(csi_resp .volume.volume_id)
IMG=$(csi_resp .volume.volume_context.imageName)
[ "$(csi_resp .volume.capacity_bytes)" = $((256 * MiB)) ] || fail "capacity $(csi_resp .volume.capacity_bytes), expected 256 MiB"
[ -n "$IMG" ] && [ "${#VID}" -le 128 ] || fail "bad CreateVolume answer: $CSI_LAST"
ctx_args_of_last; SRC_CTX=("${CTX_ARGS[@]}")
feat=$(rbd_ info --format json "$CSI_POOL/$IMG" | jq -r '.features | sort | join(",")')
for f in layering exclusive-lock object-map fast-diff deep-flatten; do
  [[ ",$feat," == *",$f,"* ]] || fail "$CSI_POOL/$IMG lacks feature $f (has $feat)"
done
log "volume $VID is $CSI_POOL/$IMG, features $feat"
ctl_ok call CreateVolume --secrets "$SECRETS" \
  '{"name": "pvc-dyn-src", "capacity_range": {"required_bytes": "'$((256 * MiB))'"},
    "volume_capabilities": ['"$(csi_mount_cap ext4)"'], "parameters": '"$PARAMS"'}'
[ "$(csi_resp .volume.volume_id)" = "$VID" ] || fail "a repeated CreateVolume gave another volume: $(csi_resp .volume.volume_id)"

step "NodeStage + NodePublish the new volume, write files"
ST=$(csi_staging src); TG=$(csi_target src pod-a)
mkdir -p "$ST" "$(dirname "$TG")"
csi_ok stage --vol "$VID" --staging "$ST" "${SRC_CTX[@]}" --secrets "$SECRETS" --fs ext4
DEV=$(staged_dev "$ST")
csi_ok publish --vol "$VID" --staging "$ST" --target "$TG" "${SRC_CTX[@]}" --fs ext4
mkdir -p "$TG/dir"
for i in 1 2 3 4 5 6; do t 120 dd if=/dev/urandom of="$TG/dir/f$i" bs=1M count=2 status=none || fail "writing f$i failed"; done
(cd "$TG" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$E2E_WORK/dyn.sha256"
sync

step "CreateSnapshot while fio writes to the mounted filesystem: freeze, snapshot, thaw"
mark=$(wc -l < "$DAEMON_LOG")
(cd "$E2E_WORK" && t 300 fio --name=busy --directory="$TG" --filename=busy.dat --rw=randwrite --bs=16k \
   --size=32M --ioengine=psync --fsync=8 --time_based --runtime=25 --eta=never --output-format=json \
   --output="$E2E_WORK/fio-busy.json") 2> "$E2E_WORK/fio-busy.err" &
FIO=$!
sleep 6
ctl_ok call CreateSnapshot --secrets "$SECRETS" \
  '{"name": "snap-dyn-1", "source_volume_id": "'"$VID"'", "parameters": {"quiesce": "required"}}'
SID=$(csi_resp .snapshot.snapshot_id)
[ "$(csi_resp .snapshot.ready_to_use)" = true ] || fail "the snapshot is not ready_to_use: $CSI_LAST"
[ "$(csi_resp .snapshot.size_bytes)" = $((256 * MiB)) ] || fail "snapshot size_bytes $(csi_resp .snapshot.size_bytes)"
[ -n "$(csi_resp '.snapshot.creation_time // empty')" ] || fail "the snapshot has no creation_time"
[ "$(csi_resp .snapshot.source_volume_id)" = "$VID" ] || fail "the snapshot's source is $(csi_resp .snapshot.source_volume_id)"
wait "$FIO" || fail "fio on the mounted filesystem failed across the snapshot: $(head -c 600 "$E2E_WORK/fio-busy.err")"
[ "$(jq '[.jobs[].error] | add' "$E2E_WORK/fio-busy.json")" = 0 ] || fail "fio reported a job error"
new_log=$(tail -n +"$((mark + 1))" "$DAEMON_LOG")
froze=$(grep -F "quiesce: froze $ST" <<< "$new_log" | head -n 1)
thawed=$(grep -F "quiesce: thawed $ST" <<< "$new_log" | head -n 1)
[ -n "$froze" ] || fail "the daemon's log shows no 'quiesce: froze $ST': $(grep -i quiesce <<< "$new_log" | head -n 5)"
[ -n "$thawed" ] || fail "the daemon's log shows no 'quiesce: thawed $ST'"
log "daemon: $froze"
log "daemon: $thawed"
log "fio: $(jq -r '.jobs[0].write.iops | floor' "$E2E_WORK/fio-busy.json") write IOPS across the snapshot"
ctl_ok call CreateSnapshot --secrets "$SECRETS" '{"name": "snap-dyn-1", "source_volume_id": "'"$VID"'"}'
[ "$(csi_resp .snapshot.snapshot_id)" = "$SID" ] || fail "a repeated CreateSnapshot gave another snapshot"
ctl_ok call ListSnapshots --secrets "$SECRETS" '{"source_volume_id": "'"$VID"'"}'
[ "$(csi_resp '[.entries[].snapshot.snapshot_id] | join(",")')" = "$SID" ] || fail "ListSnapshots by source: $CSI_LAST"

step "CreateVolume from the snapshot: fsck clean (block stage), the files there (mount stage)"
ctl_ok call CreateVolume --secrets "$SECRETS" \
  '{"name": "pvc-dyn-restore", "capacity_range": {"required_bytes": "'$((256 * MiB))'"},
    "volume_capabilities": ['"$(csi_mount_cap ext4)"'], "parameters": '"$PARAMS"',
    "volume_content_source": {"snapshot": {"snapshot_id": "'"$SID"'"}}}'
RID=$(csi_resp .volume.volume_id)
RIMG=$(csi_resp .volume.volume_context.imageName)
[ "$(csi_resp .volume.content_source.snapshot.snapshot_id)" = "$SID" ] || fail "the restore does not name its source snapshot"
ctx_args_of_last; R_CTX=("${CTX_ARGS[@]}")
RST_B=$(csi_block_staging restore)
csi_ok stage --vol "$RID" --staging "$RST_B" "${R_CTX[@]}" --secrets "$SECRETS" --block
RDEV=$(mapped_json | jq -r --arg s "$CSI_POOL/$RIMG" '.[] | select(.spec == $s) | .device')
[[ "$RDEV" =~ ^/dev/nbd[0-9]+$ ]] || fail "the restored volume's device: '$RDEV' ($(mapped_json))"
fsck_out=$(t 120 e2fsck -fn "$RDEV" 2>&1) || fail "e2fsck -fn on the restored snapshot ($RDEV) is not clean: ${fsck_out:0:800}"
log "e2fsck -fn $RDEV: clean ($(tail -n 1 <<< "$fsck_out"))"
csi_unstage "$RID" "$RST_B"
RST=$(csi_staging restore); RTG=$(csi_target restore pod-b)
csi_ok stage --vol "$RID" --staging "$RST" "${R_CTX[@]}" --secrets "$SECRETS" --fs ext4
csi_ok publish --vol "$RID" --staging "$RST" --target "$RTG" "${R_CTX[@]}" --fs ext4
verify_files "$RTG" "$E2E_WORK/dyn.sha256"

step "CreateVolume from the volume (a clone, 384 MiB: bigger than its source)"
ctl_ok call CreateVolume --secrets "$SECRETS" \
  '{"name": "pvc-dyn-clone", "capacity_range": {"required_bytes": "'$((384 * MiB))'"},
    "volume_capabilities": ['"$(csi_mount_cap ext4)"'], "parameters": '"$PARAMS"',
    "volume_content_source": {"volume": {"volume_id": "'"$VID"'"}}}'
CID=$(csi_resp .volume.volume_id)
[ "$(csi_resp .volume.capacity_bytes)" = $((384 * MiB)) ] || fail "clone capacity $(csi_resp .volume.capacity_bytes)"
ctx_args_of_last; C_CTX=("${CTX_ARGS[@]}")
CST=$(csi_staging clone); CTG=$(csi_target clone pod-c)
csi_ok stage --vol "$CID" --staging "$CST" "${C_CTX[@]}" --secrets "$SECRETS" --fs ext4
csi_ok publish --vol "$CID" --staging "$CST" --target "$CTG" "${C_CTX[@]}" --fs ext4
verify_files "$CTG" "$E2E_WORK/dyn.sha256"
csize=$(df_bytes "$CTG" size)
[ "$csize" -gt $((300 * MiB)) ] || fail "the clone's filesystem is $csize bytes: it did not grow to the 384 MiB volume"

step "ControllerExpandVolume to 512 MiB, then NodeExpandVolume"
before=$(df_bytes "$TG" size)
ctl_ok call ControllerExpandVolume --secrets "$SECRETS" \
  '{"volume_id": "'"$VID"'", "capacity_range": {"required_bytes": "'$((512 * MiB))'"}, "volume_capability": '"$(csi_mount_cap ext4)"'}'
[ "$(csi_resp .capacity_bytes)" = $((512 * MiB)) ] || fail "ControllerExpandVolume capacity $(csi_resp .capacity_bytes)"
[ "$(csi_resp .node_expansion_required)" = true ] || fail "a filesystem volume needs node expansion: $CSI_LAST"
csi_ok expand --vol "$VID" --path "$TG" --staging "$ST" --bytes $((512 * MiB)) --fs ext4
after=$(df_bytes "$TG" size)
[ "$after" -gt $((before + 200 * MiB)) ] || fail "df size $before -> $after after expanding to 512 MiB"
log "filesystem grew from $before to $after bytes"
t0=$SECONDS
csi_expect OUT_OF_RANGE expand --vol "$VID" --path "$TG" --staging "$ST" --bytes $((2048 * MiB)) --fs ext4
[ $((SECONDS - t0)) -lt 25 ] || fail "NodeExpandVolume past the image's size took $((SECONDS - t0)) s to answer"

step "unpublish, unstage, DeleteSnapshot, DeleteVolume: nothing left"
ctl_expect FAILED_PRECONDITION call DeleteVolume --secrets "$SECRETS" '{"volume_id": "'"$VID"'"}'   # still mapped
for pair in "$VID $TG $ST" "$RID $RTG $RST" "$CID $CTG $CST"; do
  read -r v tg st <<< "$pair"
  csi_unpublish "$v" "$tg"
  csi_unstage "$v" "$st"
done
assert_csi_clean
ctl_ok call DeleteSnapshot --secrets "$SECRETS" '{"snapshot_id": "'"$SID"'"}'
ctl_ok call DeleteSnapshot --secrets "$SECRETS" '{"snapshot_id": "'"$SID"'"}'
ctl_ok call DeleteVolume --secrets "$SECRETS" '{"volume_id": "'"$VID"'"}'   # its snapshots back two clones
ctl_ok call DeleteVolume --secrets "$SECRETS" '{"volume_id": "'"$RID"'"}'
ctl_ok call DeleteVolume --secrets "$SECRETS" '{"volume_id": "'"$CID"'"}'
ctl_ok call DeleteVolume --secrets "$SECRETS" '{"volume_id": "'"$VID"'"}'   # idempotent
ctl_ok call ListVolumes '{}'   # no secrets in this RPC: the controller's remembered credentials
for v in "$VID" "$RID" "$CID"; do
  [ "$(jq -r --arg v "$v" '[.response.entries[]? | select(.volume.volume_id == $v)] | length' <<< "$CSI_LAST")" = 0 ] \
    || fail "ListVolumes still lists a deleted volume: $CSI_LAST"
done
left=$(rbd_ ls "$CSI_POOL"); trash=$(rbd_ trash ls "$CSI_POOL")
[ -z "$left" ] || fail "images left in $CSI_POOL: $left"
[ -z "$trash" ] || fail "trash left in $CSI_POOL: $trash"
for o in $(rados_ -p "$CSI_POOL" ls | grep -i 'csi' || true); do
  keys=$(rados_ -p "$CSI_POOL" listomapkeys "$o" | wc -l)
  [ "$keys" = 0 ] || fail "controller object $o still has $keys keys: $(rados_ -p "$CSI_POOL" listomapkeys "$o" | head -n 5)"
done
log "pool $CSI_POOL: no image, no trash, no controller record"
assert_no_secret_leak "$(kube_key)"

stop_controller
stop_csi
stop_daemon
pass
