#!/bin/bash
# Eight volumes at once through rbd-nbdd-csi: eight NodeStageVolume calls sent in parallel
# (one client, eight threads on one gRPC channel), then eight NodePublishVolume in parallel;
# eight distinct /dev/nbdN, each mapped once as client.kube with ext4 on it; data written to
# each target and verified (after dropping caches); eight unpublish and eight unstage in
# parallel; nothing left mounted, mapped or connected.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

N=8
csi_up

vols=()
for i in $(seq 1 $N); do
  vols+=("many$i")
  mkdir -p "$(csi_staging "many$i")" "$(dirname "$(csi_target "many$i" "pod$i")")"
done
rbd_create_many $((64 << 20)) "${vols[@]/#/$CSI_POOL/}" || fail "creating the $N images failed"

step "$N stages in parallel"
for v in "${vols[@]}"; do
  csi_req "$v $(csi_staging "$v")" NodeStageVolume OK "$(csi_stage_json "$v" "$(csi_staging "$v")" ext4)"
done | csi_batch --parallel
log "stage times: $(jq -r .elapsed "$CSI_BATCH_OUT" | sort -n | tr '\n' ' ')"
devs=()
mapped=$(mapped_json) || fail "list-mapped failed"
for v in "${vols[@]}"; do
  d=$(staged_dev "$(csi_staging "$v")")
  [ "$(blkid -p -s TYPE -o value "$d")" = ext4 ] || fail "$v: no ext4 on $d"
  assert_mapped_as_kube "$d" "$CSI_POOL/$v" "$mapped"
  devs+=("$d")
done
[ "$(printf '%s\n' "${devs[@]}" | sort -u | wc -l)" = $N ] || fail "the $N volumes do not have $N distinct devices: ${devs[*]}"
[ "$(jq length <<< "$mapped")" = $N ] || fail "the daemon lists $(jq length <<< "$mapped") devices, expected $N"
log "devices: ${devs[*]}"

step "$N publishes in parallel"
i=0
for v in "${vols[@]}"; do
  i=$((i + 1))
  csi_req "$v $(csi_target "$v" "pod$i")" NodePublishVolume OK "$(csi_publish_json "$v" "$(csi_staging "$v")" "$(csi_target "$v" "pod$i")" ext4)"
done | csi_batch --parallel
log "publish times: $(jq -r .elapsed "$CSI_BATCH_OUT" | sort -n | tr '\n' ' ')"

step "write and verify each"
i=0
for v in "${vols[@]}"; do
  i=$((i + 1))
  tg=$(csi_target "$v" "pod$i")
  mountpoint -q "$tg" || fail "$tg is not mounted"
  [ "$(mount_source "$tg")" = "${devs[i - 1]}" ] || fail "$tg shows $(mount_source "$tg"), expected ${devs[i - 1]}"
  t 30 dd if=/dev/urandom of="$tg/data" bs=1M count=3 status=none || fail "writing to $tg failed"
  echo "$v" > "$tg/name"
  (cd "$tg" && sha256sum data name) > "$E2E_WORK/$v.sha256"
done
drop_caches
i=0
for v in "${vols[@]}"; do
  i=$((i + 1))
  tg=$(csi_target "$v" "pod$i")
  verify_files "$tg" "$E2E_WORK/$v.sha256"
  [ "$(< "$tg/name")" = "$v" ] || fail "$tg holds the data of $(< "$tg/name")"
done

step "$N unpublishes, then $N unstages, in parallel"
i=0
for v in "${vols[@]}"; do
  i=$((i + 1))
  csi_req "unpublish $v" NodeUnpublishVolume OK "$(csi_unpublish_json "$v" "$(csi_target "$v" "pod$i")")"
done | csi_batch --parallel
for v in "${vols[@]}"; do
  csi_req "unstage $v" NodeUnstageVolume OK "$(csi_unstage_json "$v" "$(csi_staging "$v")")"
done | csi_batch --parallel
log "unstage times: $(jq -r .elapsed "$CSI_BATCH_OUT" | sort -n | tr '\n' ' ')"
for d in "${devs[@]}"; do wait_nbd_size "$d" 0 30; done
assert_csi_clean

stop_csi
stop_daemon
pass
