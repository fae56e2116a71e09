#!/bin/bash
# Restarts under published CSI volumes. Two ext4 volumes are staged and published through
# rbd-nbdd-csi (ioTimeout 15 s, to keep the stall short); a writer keeps writing checksummed
# files (each fsync'ed) to the first while the second holds files written before.
#   (1) SIGKILL of the rbd-nbdd daemon under the writer, a new daemon on the same state dir
#       and socket: it reattaches both devices; the mounts never went away; the writer goes
#       on; everything written before and after the kill verifies (caches dropped).
#   (2) SIGTERM of the CSI plugin, a new plugin on the same state dir: the mounts and the
#       devices are untouched; stats, an idempotent republish and restage, unpublish and
#       unstage all work from the metadata the first plugin persisted.
# The kernel logs connection-level messages while the daemon is gone (see
# expect_nbd_reconnects); a user-visible I/O error or a filesystem error still fails.
# e2e-vm: VM_TIMEOUT=900
# e2e-batch: csi2
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_map.sh"
. "$(dirname "$0")/../lib_csi.sh"
expect_nbd_reconnects

csi_up

V1=rs1 V2=rs2
ST1=$(csi_staging $V1) ST2=$(csi_staging $V2)
T1=$(csi_target $V1 pod-a) T2=$(csi_target $V2 pod-b)
csi_create_image $V1 128M
csi_create_image $V2 128M

step "stage + publish two volumes"
csi_stage $V1 "$ST1" --fs ext4 --ctx ioTimeout=15
csi_stage $V2 "$ST2" --fs ext4 --ctx ioTimeout=15
csi_publish $V1 "$ST1" "$T1" --fs ext4
csi_publish $V2 "$ST2" "$T2" --fs ext4
D1=$(staged_dev "$ST1") D2=$(staged_dev "$ST2")
for d in "$D1" "$D2"; do
  l=$(mapped_json | jq -r --arg d "$d" '.[] | select(.device == $d) | .io_timeout')
  [ "$l" = 15 ] || fail "$d is mapped with io_timeout '$l', expected 15 (volume_context ioTimeout)"
done
mkdir -p "$T2/pre"
for i in 1 2 3 4 5 6; do t 30 dd if=/dev/urandom of="$T2/pre/f$i" bs=1M count=2 status=none; done
(cd "$T2" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$E2E_WORK/v2.sha256"
sync

# the writer: files of 512 KiB, each fsync'ed, its checksum recorded only once it is durable
WSRC=/run/wsrc
mkdir -p "$WSRC" "$T1/w"
: > "$E2E_WORK/v1.sha256"
writer() {
  local i=0
  while [ ! -e "$WSRC/stop" ]; do
    i=$((i + 1))
    head -c 524288 /dev/urandom > "$WSRC/cur"
    dd if="$WSRC/cur" of="$T1/w/f$i" bs=128k conv=fsync status=none || { echo "writer: f$i failed" >&2; exit 1; }
    echo "$(sha256sum < "$WSRC/cur" | cut -d' ' -f1)  ./w/f$i" >> "$E2E_WORK/v1.sha256"
  done
}
writer &
WPID=$!
on_exit "touch $WSRC/stop; kill $WPID 2>/dev/null || true"
written() { wc -l < "$E2E_WORK/v1.sha256"; }
wait_until 60 "the writer to write 5 files" eval '[ "$(written)" -ge 5 ]'

step "(1) SIGKILL the daemon under the writer, start a new one"
t_kill=$SECONDS
kill_daemon
sleep 2
for m in "$ST1" "$ST2" "$T1" "$T2"; do mountpoint -q "$m" || fail "$m was unmounted when the daemon died"; done
n_kill=$(written)
# VolumeCondition with the daemon gone: stats still answer, the condition says why it is abnormal
csi_ok stats --vol $V1 --path "$T1"
[ "$(csi_resp '.volume_condition.abnormal')" = true ] || fail "volume_condition not abnormal with the daemon dead: $CSI_LAST"
[[ "$(csi_resp .volume_condition.message)" == *"cannot ask the rbd-nbdd daemon"* ]] \
  || fail "volume_condition message with the daemon dead: $(csi_resp .volume_condition.message)"
start_daemon
[ "$(mapped_json | jq -c '[.[] | .live_connections] | add')" = 2 ] \
  || fail "after the restart the daemon has not reattached both devices: $(mapped_json | jq -c .)"
assert_mapped_as_kube "$D1" "$CSI_POOL/$V1"
assert_mapped_as_kube "$D2" "$CSI_POOL/$V2"
wait_until 120 "the writer to go on after the restart" eval '[ "$(written)" -ge $((n_kill + 5)) ]'
log "the writer wrote $(( $(written) - n_kill )) files since the SIGKILL ($((SECONDS - t_kill)) s ago)"
kill -0 "$WPID" 2>/dev/null || fail "the writer died"
touch "$WSRC/stop"
wait "$WPID" || fail "the writer failed"
rm -f "$WSRC/stop"
drop_caches
verify_files "$T1" "$E2E_WORK/v1.sha256"
verify_files "$T2" "$E2E_WORK/v2.sha256"
for m in "$ST1" "$ST2" "$T1" "$T2"; do mountpoint -q "$m" || fail "$m is not mounted after the restart"; done

step "(2) SIGTERM the CSI plugin, start a new one: state from the persisted metadata"
m_before=$(findmnt -rn -o TARGET,SOURCE,OPTIONS | grep "$CSI_KUBELET" | sort)
maps_before=$(mapped_json | jq -c '[.[] | {device, spec, cookie}] | sort_by(.device)')
stop_csi
[ "$(findmnt -rn -o TARGET,SOURCE,OPTIONS | grep "$CSI_KUBELET" | sort)" = "$m_before" ] \
  || fail "the mounts changed when the plugin stopped"
t 30 dd if=/dev/urandom of="$T1/while-no-plugin" bs=1M count=1 conv=fsync status=none \
  || fail "writing with no plugin running failed"
start_csi
[ "$(mapped_json | jq -c '[.[] | {device, spec, cookie}] | sort_by(.device)')" = "$maps_before" ] \
  || fail "the mappings changed over the plugin's restart: $maps_before -> $(mapped_json | jq -c .)"
csi_ok stats --vol $V1 --path "$T1"
near "$(csi_usage BYTES total)" "$(df_bytes "$T1" size)" 2 || fail "stats after the plugin restart: $(csi_usage BYTES total) vs df $(df_bytes "$T1" size)"
csi_ok stats --vol $V2 --path "$T2"
csi_stage $V1 "$ST1" --fs ext4 --ctx ioTimeout=15      # idempotent after the restart
csi_publish $V1 "$ST1" "$T1" --fs ext4
# shellcheck disable=SC2046
csi_expect ALREADY_EXISTS publish --vol $V2 --staging "$ST2" --target "$T2" --fs ext4 --readonly $(csi_ctx $V2)
[ "$(findmnt -rn -o TARGET,SOURCE,OPTIONS | grep "$CSI_KUBELET" | sort)" = "$m_before" ] \
  || fail "the repeated stage/publish after the restart changed the mounts"
drop_caches
verify_files "$T1" "$E2E_WORK/v1.sha256"
verify_files "$T2" "$E2E_WORK/v2.sha256"

step "unpublish, unstage, from the persisted metadata"
csi_unpublish $V1 "$T1"
csi_unpublish $V2 "$T2"
csi_unstage $V1 "$ST1"
csi_unstage $V2 "$ST2"
wait_nbd_size "$D1" 0 30
wait_nbd_size "$D2" 0 30
assert_csi_clean

stop_csi
stop_daemon
if dmesg | grep -E "$E2E_DMESG_IOERRS" >&2; then fail "a user-visible I/O error in the kernel log"; fi
pass
