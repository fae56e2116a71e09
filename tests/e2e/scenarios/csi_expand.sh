#!/bin/bash
# Online expansion through rbd-nbdd-csi, ext4 and xfs: stage + publish, data written,
# `rbd resize` of the image (as the controller side would), then NodeExpandVolume with
# required_bytes = the new size and both paths (as kubelet calls it): it returns OK with
# capacity_bytes >= required_bytes, the device has the new size, and df on the published
# path shows the grown filesystem at once; NodeGetVolumeStats agrees; a repeated expand is
# OK; the data is intact; unpublish/unstage leave nothing behind.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi1
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

csi_up

# expand_case FS FROM_MIB TO_MIB
expand_case() {
  local fs=$1 from=$2 to=$3
  local vol=exp-$fs
  local st tg dev new=$((to << 20)) cap df0 df1
  st=$(csi_staging "$vol")
  tg=$(csi_target "$vol" "pod-$fs")
  csi_create_image "$vol" "${from}M"

  step "$fs: stage + publish ${from} MiB, write data"
  csi_stage "$vol" "$st" --fs "$fs"
  csi_publish "$vol" "$st" "$tg" --fs "$fs"
  dev=$(staged_dev "$st")
  mkdir -p "$tg/d"
  for i in 1 2 3 4; do t 30 dd if=/dev/urandom of="$tg/d/f$i" bs=1M count=4 status=none; done
  (cd "$tg" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$E2E_WORK/$vol.sha256"
  sync
  df0=$(df_bytes "$tg" size)
  log "$fs on $dev: df size $df0"

  step "$fs: rbd resize to ${to} MiB, NodeExpandVolume"
  rbd_ resize --size "${to}M" "$CSI_POOL/$vol" > /dev/null 2>&1 || fail "rbd resize $CSI_POOL/$vol failed"
  csi_ok expand --vol "$vol" --path "$tg" --staging "$st" --fs "$fs" --bytes "$new"
  cap=$(csi_resp '.capacity_bytes // "0"')
  [ "$cap" -ge "$new" ] || fail "NodeExpandVolume returned capacity_bytes $cap, expected >= $new"
  [ "$(nbd_size "$dev")" = "$new" ] || fail "$dev has $(nbd_size "$dev") bytes after expand, expected $new"
  df1=$(df_bytes "$tg" size)
  log "$fs: capacity_bytes $cap; df size $df0 -> $df1"
  [ "$df1" -ge $((new * 85 / 100)) ] && [ "$df1" -le "$new" ] \
    || fail "df shows $df1 bytes on $tg after expanding to $new (before: $df0)"
  [ "$(df_bytes "$st" size)" = "$df1" ] || fail "the staging path shows $(df_bytes "$st" size) bytes, the target $df1"
  csi_ok stats --vol "$vol" --path "$tg"
  near "$(csi_usage BYTES total)" "$df1" 2 || fail "stats total $(csi_usage BYTES total) after expand, df says $df1"

  step "$fs: expand again (idempotent), data intact"
  csi_ok expand --vol "$vol" --path "$tg" --staging "$st" --fs "$fs" --bytes "$new"
  [ "$(csi_resp '.capacity_bytes // "0"')" -ge "$new" ] || fail "a repeated expand returned capacity_bytes $(csi_resp .capacity_bytes)"
  [ "$(df_bytes "$tg" size)" = "$df1" ] || fail "a repeated expand changed df size to $(df_bytes "$tg" size)"
  t 30 dd if=/dev/urandom of="$tg/d/after" bs=1M count=4 status=none || fail "writing after the expand failed"
  drop_caches
  verify_files "$tg" "$E2E_WORK/$vol.sha256"
  csi_unpublish "$vol" "$tg"
  csi_unstage "$vol" "$st"
  assert_csi_clean

  step "$fs: stage again: the grown filesystem, the data"
  csi_stage "$vol" "$st" --fs "$fs"
  [ "$(df_bytes "$st" size)" = "$df1" ] || fail "after a new stage df shows $(df_bytes "$st" size), expected $df1"
  drop_caches
  verify_files "$st" "$E2E_WORK/$vol.sha256"
  csi_unstage "$vol" "$st"
  assert_csi_clean
}

expand_case ext4 256 512
expand_case xfs 512 1024

stop_csi
stop_daemon
pass
