#!/bin/bash
# The restricted user client.kube (mon 'profile rbd', osd 'profile rbd pool=kube') with its
# own keyring: serves an image of pool kube (write, read back, `rbd export` by admin
# agrees), and is refused an image of pool rbd with one line naming the caps problem,
# exit code 2, nothing left running and no socket listening.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdinfo
rbd_setup
make_scratch
[ -f "$CEPH_KUBE_KEYRING" ] || fail "no client.kube keyring at $CEPH_KUBE_KEYRING"
KUBE=(--id kube --keyring "$CEPH_KUBE_KEYRING")
# CEPH_KEYRING (client.admin's, from ceph_up) is not the server's business here
RBD_SERVER_ENV=(-u CEPH_KEYRING)

KIMG=kube/$(unique_image_name)
RIMG=rbd/$(unique_image_name)
rbd_create "$KIMG" 32M
rbd_create "$RIMG" 32M

start_rbd_server "${KUBE[@]}" --rbd "$KIMG"
grep -q 'as client.kube' "$SERVER_LOG" || fail "the server did not say it connected as client.kube"
U=$(rbd_uri "$KIMG")
random_file "$SCRATCH/data" 32
D=$(sha256 "$SCRATCH/data")
t 120 nbdcopy --flush "$SCRATCH/data" "$U" || fail "client.kube: writing kube/ failed"
t 120 nbdcopy "$U" "$SCRATCH/back" || fail "client.kube: reading kube/ failed"
[ "$(sha256 "$SCRATCH/back")" = "$D" ] || fail "client.kube: read-back differs"
[ "$(rbd_sha256 "$KIMG")" = "$D" ] || fail "rbd export (admin) of $KIMG differs from what client.kube wrote"
stop_rbd_server
log "client.kube served $KIMG: 32 MiB round trip ok"

expect_start_failure "client.kube on pool rbd" "not allowed.*caps|caps.*(denied|not allowed)|permission" 15 \
  "${KUBE[@]}" --rbd "$RIMG" || fail "client.kube on pool rbd was not refused properly"
pass "client.kube: pool kube works, pool rbd refused ($(server_errors "$RBD_FAIL_OUT" | sed 's/^[^]]*] //'))"
