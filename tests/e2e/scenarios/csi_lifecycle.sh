#!/bin/bash
# The CSI node lifecycle of a filesystem volume, as kubelet drives it, through the real gRPC
# socket of rbd-nbdd-csi (client.kube credentials from the stage secrets, never admin):
#   identity and node info; NodeStage of a fresh 256 MiB image makes ext4 (blkid) and mounts
#   it at the staging path; NodePublish to two pod targets, one read-write, one readonly;
#   files written through the rw target read back through the ro target; writes through the
#   ro target fail with EROFS; NodeGetVolumeStats (bytes and inodes against df, used grows
#   with the data); unpublish both (targets removed), unstage (device unmapped: the daemon
#   lists nothing, the kernel has no nbd device); stage again: no mkfs (same filesystem UUID,
#   the data still there); every call repeated returns OK (idempotency). Then an xfs volume
#   (512 MiB: mkfs.xfs refuses less than 300 MB): made, mounted with nouuid, same cycle.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi1
# e2e-batch@6.12: k612
# e2e-kernel: uml 6.12
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

csi_up

step "identity and node info"
csi_ok call GetPluginInfo
[ "$(csi_resp .name)" = "$CSI_DRIVER" ] || fail "GetPluginInfo name '$(csi_resp .name)', expected $CSI_DRIVER"
[ -n "$(csi_resp '.vendor_version // empty')" ] || fail "GetPluginInfo has no vendor_version"
csi_ok call Probe
csi_ok call GetPluginCapabilities
csi_ok call NodeGetInfo
[ "$(csi_resp .node_id)" = "$CSI_NODE_ID" ] || fail "NodeGetInfo node_id '$(csi_resp .node_id)', expected $CSI_NODE_ID"
csi_ok call NodeGetCapabilities
caps=$(csi_resp '[.capabilities[].rpc.type] | sort | join(",")')
for c in STAGE_UNSTAGE_VOLUME GET_VOLUME_STATS EXPAND_VOLUME; do
  [[ ",$caps," == *",$c,"* ]] || fail "NodeGetCapabilities lacks $c (has $caps)"
done
log "node capabilities: $caps"

# ---------------------------------------------------------------------------------------
VOL=lc-ext4
ST=$(csi_staging $VOL)
T_RW=$(csi_target $VOL pod-rw)
T_RO=$(csi_target $VOL pod-ro)
SIZE=$((256 << 20))
csi_create_image $VOL 256M

step "ext4: stage a fresh 256 MiB volume"
csi_stage $VOL "$ST" --fs ext4
DEV=$(staged_dev "$ST")
[ "$(nbd_size "$DEV")" = "$SIZE" ] || fail "$DEV has $(nbd_size "$DEV") bytes, expected $SIZE"
[ "$(blkid -p -s TYPE -o value "$DEV")" = ext4 ] || fail "no ext4 on $DEV after stage: $(blkid -p "$DEV")"
[ "$(mount_fstype "$ST")" = ext4 ] || fail "$ST is mounted as $(mount_fstype "$ST"), expected ext4"
UUID=$(blkid -p -s UUID -o value "$DEV")
[ -n "$UUID" ] || fail "the ext4 on $DEV has no UUID"
log "staged at $DEV, ext4 UUID $UUID, options $(mount_opts "$ST")"
assert_mapped_as_kube "$DEV" "kube/$VOL"

step "stage again (idempotent): OK, nothing new"
csi_stage $VOL "$ST" --fs ext4
[ "$(findmnt -n --mountpoint "$ST" | wc -l)" = 1 ] || fail "$ST is mounted more than once after a repeated stage"
[ "$(mapped_json | jq length)" = 1 ] || fail "a repeated stage mapped another device: $(mapped_json)"

step "publish read-write and readonly"
csi_publish $VOL "$ST" "$T_RW" --fs ext4
csi_publish $VOL "$ST" "$T_RO" --fs ext4 --readonly
csi_publish $VOL "$ST" "$T_RW" --fs ext4               # idempotent repeats
csi_publish $VOL "$ST" "$T_RO" --fs ext4 --readonly
for tg in "$T_RW" "$T_RO"; do
  [ "$(findmnt -n --mountpoint "$tg" | wc -l)" = 1 ] || fail "$tg is not mounted exactly once"
  [ "$(mount_source "$tg")" = "$DEV" ] || fail "$tg shows source '$(mount_source "$tg")', expected $DEV"
done
[[ ",$(mount_opts "$T_RW")," == *,rw,* ]] || fail "$T_RW is not mounted rw: $(mount_opts "$T_RW")"
[[ ",$(mount_opts "$T_RO")," == *,ro,* ]] || fail "$T_RO is not mounted ro: $(mount_opts "$T_RO")"

csi_ok stats --vol $VOL --path "$T_RW"
# VolumeCondition (VOLUME_CONDITION): a healthy mapped device reads as normal
[ "$(csi_resp '.volume_condition.abnormal // false')" = false ] \
  || fail "volume_condition abnormal on a healthy device: $(csi_resp .volume_condition.message)"
[[ "$(csi_resp .volume_condition.message)" == healthy* ]] || fail "volume_condition: $CSI_LAST"
used0=$(csi_usage BYTES used)
log "stats before writing: bytes $(csi_usage BYTES total) total $used0 used; inodes $(csi_usage INODES total) total $(csi_usage INODES used) used"

step "data: written through rw, read through ro; the ro target refuses writes"
# a modest data set (~17 MiB, one file sparse): make_files' 70 MiB with 30 s per file timed
# out on a loaded host while the kernel throttled dirty pages
mkdir -p "$T_RW/a/b"
for i in 1 2 3 4 5 6 7 8; do t 120 dd if=/dev/urandom of="$T_RW/a/f$i" bs=1M count=2 status=none || fail "writing $T_RW/a/f$i failed"; done
for i in $(seq 1 12); do t 120 dd if=/dev/urandom of="$T_RW/a/b/small.$i" bs=4k count=$((i % 5 + 1)) status=none || fail "writing small.$i failed"; done
t 120 dd if=/dev/urandom of="$T_RW/holes" bs=1M count=1 seek=20 status=none || fail "writing $T_RW/holes failed"
(cd "$T_RW" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$E2E_WORK/lc-ext4.sha256"
log "wrote $(wc -l < "$E2E_WORK/lc-ext4.sha256") files ($(du -sh "$T_RW" | cut -f1)) in $T_RW"
sync
verify_files "$T_RO" "$E2E_WORK/lc-ext4.sha256"
expect_erofs "$T_RO"

step "NodeGetVolumeStats"
csi_ok stats --vol $VOL --path "$T_RW"
btot=$(csi_usage BYTES total) bused=$(csi_usage BYTES used) bavail=$(csi_usage BYTES available)
itot=$(csi_usage INODES total) iused=$(csi_usage INODES used) iavail=$(csi_usage INODES available)
log "stats: bytes total $btot used $bused available $bavail; inodes total $itot used $iused available $iavail"
log "df:    bytes total $(df_bytes "$T_RW" size) used $(df_bytes "$T_RW" used) available $(df_bytes "$T_RW" avail); inodes $(df_inodes "$T_RW" itotal)/$(df_inodes "$T_RW" iused)"
for v in "$btot" "$bused" "$bavail" "$itot" "$iused" "$iavail"; do
  [[ "$v" =~ ^[0-9]+$ ]] || fail "NodeGetVolumeStats lacks a BYTES or INODES figure: $CSI_LAST"
done
near "$btot" "$(df_bytes "$T_RW" size)" 2 || fail "stats total $btot bytes, df says $(df_bytes "$T_RW" size)"
[ "$btot" -le "$SIZE" ] && [ "$btot" -ge $((SIZE * 8 / 10)) ] || fail "stats total $btot is not close to the 256 MiB volume"
near "$bavail" "$(df_bytes "$T_RW" avail)" 2 || fail "stats available $bavail, df says $(df_bytes "$T_RW" avail)"
[ $((bused + bavail)) -le "$btot" ] || fail "stats used $bused + available $bavail > total $btot"
near "$bused" "$(df_bytes "$T_RW" used)" 2 || fail "stats used $bused, df says $(df_bytes "$T_RW" used)"
alloc=$(du -s -B1 "$T_RW" | cut -f1)   # what the files take (one is sparse)
[ $((bused - used0)) -ge $((alloc * 9 / 10)) ] || fail "stats used grew by $((bused - used0)) bytes; the files written take $alloc"
near "$itot" "$(df_inodes "$T_RW" itotal)" 1 || fail "stats inodes total $itot, df says $(df_inodes "$T_RW" itotal)"
[ "$iused" -ge 21 ] && [ "$iavail" -gt 0 ] || fail "stats inodes used $iused (>= 21 files exist), available $iavail"
csi_ok stats --vol $VOL --path "$T_RO"      # the readonly target answers too

step "unpublish both (and again), unstage (and again)"
csi_unpublish $VOL "$T_RW"
csi_unpublish $VOL "$T_RO"
csi_unpublish $VOL "$T_RW"
csi_unpublish $VOL "$T_RO"
for tg in "$T_RW" "$T_RO"; do
  ! mountpoint -q "$tg" || fail "$tg is still mounted after unpublish"
  [ ! -e "$tg" ] || fail "$tg still exists after unpublish (the plugin made it, it removes it)"
done
mountpoint -q "$ST" || fail "unpublish unmounted the staging path $ST"
csi_unstage $VOL "$ST"
csi_unstage $VOL "$ST"
! mountpoint -q "$ST" || fail "$ST is still mounted after unstage"
wait_nbd_size "$DEV" 0 30
assert_csi_clean

step "stage again: no mkfs, same filesystem, data intact"
csi_stage $VOL "$ST" --fs ext4
DEV=$(staged_dev "$ST")
[ "$(blkid -p -s UUID -o value "$DEV")" = "$UUID" ] \
  || fail "the filesystem UUID changed from $UUID to $(blkid -p -s UUID -o value "$DEV"): the volume was formatted again"
csi_publish $VOL "$ST" "$T_RW" --fs ext4
drop_caches
verify_files "$T_RW" "$E2E_WORK/lc-ext4.sha256"
csi_unpublish $VOL "$T_RW"
csi_unstage $VOL "$ST"
assert_csi_clean

# ---------------------------------------------------------------------------------------
VOL=lc-xfs
ST=$(csi_staging $VOL)
T_RW=$(csi_target $VOL pod-xfs-rw)
T_RO=$(csi_target $VOL pod-xfs-ro)
csi_create_image $VOL 512M

step "xfs: stage a fresh 512 MiB volume"
csi_stage $VOL "$ST" --fs xfs
csi_stage $VOL "$ST" --fs xfs
DEV=$(staged_dev "$ST")
[ "$(blkid -p -s TYPE -o value "$DEV")" = xfs ] || fail "no xfs on $DEV after stage: $(blkid -p "$DEV")"
[ "$(mount_fstype "$ST")" = xfs ] || fail "$ST is mounted as $(mount_fstype "$ST"), expected xfs"
[[ ",$(mount_opts "$ST")," == *,nouuid,* ]] || fail "xfs staged without nouuid: $(mount_opts "$ST")"
UUID=$(blkid -p -s UUID -o value "$DEV")
csi_publish $VOL "$ST" "$T_RW" --fs xfs
csi_publish $VOL "$ST" "$T_RO" --fs xfs --readonly
csi_publish $VOL "$ST" "$T_RO" --fs xfs --readonly
mkdir -p "$T_RW/d"
for i in 1 2 3 4 5 6 7 8; do t 30 dd if=/dev/urandom of="$T_RW/d/f$i" bs=1M count=2 status=none; done
(cd "$T_RW" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$E2E_WORK/lc-xfs.sha256"
sync
verify_files "$T_RO" "$E2E_WORK/lc-xfs.sha256"
expect_erofs "$T_RO"
csi_ok stats --vol $VOL --path "$T_RW"
btot=$(csi_usage BYTES total) bused=$(csi_usage BYTES used)
near "$btot" "$(df_bytes "$T_RW" size)" 2 || fail "xfs stats total $btot, df says $(df_bytes "$T_RW" size)"
near "$bused" "$(df_bytes "$T_RW" used)" 5 || fail "xfs stats used $bused, df says $(df_bytes "$T_RW" used)"
csi_unpublish $VOL "$T_RO"
csi_unpublish $VOL "$T_RW"
csi_unpublish $VOL "$T_RW"
csi_unstage $VOL "$ST"
csi_unstage $VOL "$ST"
assert_csi_clean

step "xfs: stage again, no mkfs"
csi_stage $VOL "$ST" --fs xfs
DEV=$(staged_dev "$ST")
[ "$(blkid -p -s UUID -o value "$DEV")" = "$UUID" ] || fail "the xfs UUID changed: the volume was formatted again"
csi_publish $VOL "$ST" "$T_RW" --fs xfs
drop_caches
verify_files "$T_RW" "$E2E_WORK/lc-xfs.sha256"
csi_unpublish $VOL "$T_RW"
csi_unstage $VOL "$ST"
assert_csi_clean

stop_csi
stop_daemon
pass
