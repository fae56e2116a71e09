#!/bin/bash
# rbd-nbdd-csi with volume_context deviceType on Debian's 6.12 (ublk_drv, no UBLK_F_UPDATE_SIZE):
# (1) the plugin logs at start what the node's ublk offers: driver loaded, no online resize;
# (2) deviceType krbd is INVALID_ARGUMENT naming the key and the values, nothing mapped;
# (3) deviceType ublk: stage maps /dev/ublkbN (the daemon lists it as ublk), mkfs + mount
#     of ext4 on it, publish, data written and read back, NodeGetVolumeStats answers with a
#     healthy volume_condition;
# (4) NodeExpandVolume after an rbd resize is FAILED_PRECONDITION at once, naming
#     UBLK_F_UPDATE_SIZE (6.12 cannot resize a ublk device online);
# (5) unpublish + unstage: no /dev/ublkb*, nothing mapped; stage again: the data is there;
# (6) deviceType ublk with block access (ublkQueueDepth 32, ublkMaxIoSize 128K: the device has that
#     shape): publish gives the ublk device node, an O_DIRECT
#     pattern reads back, NodeGetVolumeStats has the (new, re-mapped) size;
# (7) deviceType auto stages /dev/nbdN here (no UPDATE_SIZE), and the log says why.
# e2e-kernel: 6.12
# e2e-batch: k612
# e2e-vm: VM_MEM=3G VM_TIMEOUT=600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"

load_ublk
csi_up

step "the plugin's view of the node's ublk"
grep -q 'ublk: driver loaded, features 0x[0-9a-f]*, online resize (UBLK_F_UPDATE_SIZE) no; deviceType auto maps nbd' "$CSI_LOG" \
  || fail "the plugin did not log the node's ublk support: $(grep -i ublk "$CSI_LOG")"
log "$(grep -o 'ublk: driver loaded.*' "$CSI_LOG" | head -n 1)"

VOL=ublk1
ST=$(csi_staging $VOL)
TG=$(csi_target $VOL pod-ublk)
csi_create_image $VOL 128M

step "deviceType krbd: INVALID_ARGUMENT, nothing mapped"
mkdir -p "$ST"
# shellcheck disable=SC2046
csi_expect INVALID_ARGUMENT stage --vol $VOL --staging "$ST" $(csi_ctx $VOL) --ctx deviceType=krbd \
  --secrets "$CSI_SECRETS" --fs ext4
[[ "$CSI_DETAILS" == *"'deviceType' must be nbd, ublk or auto, not 'krbd'"* ]] || fail "unclear error: $CSI_DETAILS"
[ "$(mapped_json | jq length)" = 0 ] || fail "a bad deviceType mapped something: $(mapped_json)"

step "deviceType ublk: stage (ext4) and publish on /dev/ublkbN"
csi_stage $VOL "$ST" --fs ext4 --ctx deviceType=ublk
csi_stage $VOL "$ST" --fs ext4 --ctx deviceType=ublk
DEV=$(mount_source "$ST")
[[ "$DEV" =~ ^/dev/ublkb[0-9]+$ ]] || fail "$ST is mounted from '${DEV:-nothing}', not a /dev/ublkbN"
[ "$(mapped_json | jq -r --arg d "$DEV" '.[] | select(.device == $d) | .type')" = ublk ] \
  || fail "the daemon does not list $DEV as ublk: $(mapped_json)"
[ "$(mount_fstype "$ST")" = ext4 ] || fail "$ST is $(mount_fstype "$ST"), not ext4"
grep -q '"device_type": "ublk"' "$CSI_STATE"/*.json || fail "the staging record has no device_type ublk: $(cat "$CSI_STATE"/*.json)"
csi_publish $VOL "$ST" "$TG" --fs ext4
t 30 dd if=/dev/urandom of="$TG/data" bs=1M count=8 status=none || fail "writing through $TG failed"
sync
SUM=$(sha256sum < "$TG/data")
csi_ok stats --vol $VOL --path "$TG"
[ "$(csi_usage BYTES total)" -gt 0 ] || fail "NodeGetVolumeStats has no total: $CSI_LAST"
[ "$(csi_resp '.volume_condition.abnormal // false')" = false ] \
  || fail "the ublk volume's condition is abnormal: $(csi_resp .volume_condition.message)"
log "$DEV: ext4 mounted, published, 8 MiB written"

step "NodeExpandVolume on 6.12's ublk: FAILED_PRECONDITION naming UBLK_F_UPDATE_SIZE"
rbd_ resize --size 256M "$CSI_POOL/$VOL" > /dev/null 2>&1 || fail "rbd resize failed"
t0=$SECONDS
csi_expect FAILED_PRECONDITION expand --vol $VOL --path "$TG" --staging "$ST" --fs ext4 --bytes $((256 << 20))
[[ "$CSI_DETAILS" == *UBLK_F_UPDATE_SIZE* ]] || fail "the expand error does not name UBLK_F_UPDATE_SIZE: $CSI_DETAILS"
[ $((SECONDS - t0)) -lt 20 ] || fail "the expand took $((SECONDS - t0)) s to fail (it waited for the resize)"

step "unpublish, unstage: no ublk device left; stage again: the data is there"
csi_unpublish $VOL "$TG"
csi_unstage $VOL "$ST"
csi_unstage $VOL "$ST"
[ "$(mapped_json | jq length)" = 0 ] || fail "still mapped after unstage: $(mapped_json)"
wait_until 20 "no /dev/ublkb*" sh -c '! ls /dev/ublkb* > /dev/null 2>&1'
csi_stage $VOL "$ST" --fs ext4 --ctx deviceType=ublk
csi_publish $VOL "$ST" "$TG" --fs ext4
[ "$(sha256sum < "$TG/data")" = "$SUM" ] || fail "the data changed across unstage and stage"
csi_unpublish $VOL "$TG"
csi_unstage $VOL "$ST"

step "deviceType ublk, block access, ublkQueueDepth 32 and ublkMaxIoSize 128K: publish gives the /dev/ublkbN node, data reads back"
BST=$(csi_block_staging $VOL)
BTG=$(csi_block_target $VOL pod-blk)
csi_stage $VOL "$BST" --block --ctx deviceType=ublk --ctx ublkQueueDepth=32 --ctx ublkMaxIoSize=128K
BDEV=$(mapped_json | jq -r --arg s "$CSI_POOL/$VOL" '.[] | select(.spec == $s) | .device')
[[ "$BDEV" =~ ^/dev/ublkb[0-9]+$ ]] || fail "the daemon maps $CSI_POOL/$VOL at '${BDEV:-nothing}', not a /dev/ublkbN"
shape="$(cat /sys/block/${BDEV#/dev/}/mq/*/nr_tags | sort -u | paste -sd,) $(cat /sys/block/${BDEV#/dev/}/queue/max_hw_sectors_kb)"
[ "$shape" = "32 128" ] || fail "$BDEV has nr_tags/max_hw_sectors_kb '$shape', expected '32 128' from the volume_context"
csi_publish $VOL "$BST" "$BTG" --block
[ -b "$BTG" ] || fail "$BTG is not a block device after publish ($(stat -c %F "$BTG" 2>&1))"
[ "$(stat -L -c %t:%T "$BTG")" = "$(stat -L -c %t:%T "$BDEV")" ] \
  || fail "$BTG is device $(stat -L -c %t:%T "$BTG"), $BDEV is $(stat -L -c %t:%T "$BDEV")"
t 60 dd if=/dev/urandom of="$E2E_WORK/blk.pat" bs=1M count=4 status=none
t 60 dd if="$E2E_WORK/blk.pat" of="$BTG" bs=1M seek=200 oflag=direct conv=notrunc,fsync status=none \
  || fail "writing through $BTG failed"
[ "$(t 60 dd if="$BTG" bs=1M skip=200 count=4 iflag=direct status=none | sha256sum)" = "$(sha256sum < "$E2E_WORK/blk.pat")" ] \
  || fail "the pattern reads back wrong through $BTG"
csi_ok stats --vol $VOL --path "$BTG"
[ "$(csi_usage BYTES total)" = $((256 << 20)) ] || fail "block stats total $(csi_usage BYTES total), expected the resized image's 256 MiB"
csi_unpublish $VOL "$BTG"
csi_unstage $VOL "$BST"
[ "$(mapped_json | jq length)" = 0 ] || fail "still mapped after the block unstage: $(mapped_json)"
log "$BDEV: block publish, O_DIRECT pattern at 200 MiB read back, stats 256 MiB"

step "deviceType auto: nbd on a kernel without UPDATE_SIZE, and the log says why"
csi_stage $VOL "$ST" --fs ext4 --ctx deviceType=auto
DEV=$(mount_source "$ST")
[[ "$DEV" =~ ^/dev/nbd[0-9]+$ ]] || fail "auto staged '${DEV:-nothing}', expected /dev/nbdN on 6.12"
grep -q 'deviceType auto chose nbd: the kernel.s ublk driver lacks UBLK_F_UPDATE_SIZE' "$CSI_LOG" \
  || fail "the plugin did not log why auto chose nbd: $(grep -i 'deviceType' "$CSI_LOG" | tail -n 3)"
[ "$(sha256sum < "$ST/data")" = "$SUM" ] || fail "the data differs on the nbd stage"
csi_unstage $VOL "$ST"
assert_csi_clean

stop_csi
stop_daemon
pass
