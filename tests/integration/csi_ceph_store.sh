#!/bin/bash
# The CSI controller's librbd CephStore (csi/controller/librbd_store.h) against the dev
# cluster: runs tests/ceph/csi_ceph_store_test (GoogleTest: images, clones, snapshots, the
# trash and its purge chain, watchers, quiesce, the omap name journal under races, refusals,
# connection reuse) as client.kube on pool kube, with client.admin for set-up and checks.
# Keys reach it as keyring file paths (CEPH_KEYRING, CEPH_KUBE_KEYRING), never in argv; it
# runs without CEPH_CONF, as the controller does. Afterwards the pool holds no image and no
# trash entry of the test's (csi-t*), and its output holds neither key.
#
# The binary: $CSI_CEPH_STORE_TEST, or tests/ceph/csi_ceph_store_test in the build dir that
# holds $RBDNBD (run-all passes RBDNBD=BUILD/gateway/control/rbd-nbdd). Missing: a skip, and
# under CI=true a failure.
. "$(dirname "$0")/lib_rbd.sh"

BIN=${CSI_CEPH_STORE_TEST:-$(dirname "$RBDNBD")/../../tests/ceph/csi_ceph_store_test}
[ -x "$BIN" ] || rbd_skip "no csi_ceph_store_test at $BIN (build the target csi_ceph_store_test)"
ceph_up
unset CEPH_ARGS
for f in "$CEPH_KEYRING" "$CEPH_KUBE_KEYRING"; do
  [ -f "$f" ] || fail "no keyring at $f after ceph_up"
done
[ -n "${CEPH_MON_HOST:-}" ] || fail "no CEPH_MON_HOST after ceph_up"

OUT="$TMPD/csi_ceph_store_test.out"
rc=0
t 900 env -u CEPH_CONF CEPH_MON_HOST="$CEPH_MON_HOST" CEPH_KEYRING="$CEPH_KEYRING" \
  CEPH_KUBE_KEYRING="$CEPH_KUBE_KEYRING" "$BIN" --gtest_color=no >"$OUT" 2>&1 || rc=$?
grep -E '^\[ (measure|note) ' "$OUT" | sed 's/^/    /' >&2
grep -E '^\[  (FAILED|PASSED)  \]|tests? from .* ran' "$OUT" | sed 's/^/    /' >&2
if [ "$rc" != 0 ]; then
  grep -v 'connected to the cluster' "$OUT" | tail -n 80 >&2
  fail "csi_ceph_store_test failed (exit $rc)"
fi
grep -q '^\[  PASSED  \] [1-9]' "$OUT" || fail "csi_ceph_store_test ran no test"

# Independent of the program: nothing of its own left in pool kube.
left=$(rbd_cli ls kube | grep '^csi-t' || true)
[ -z "$left" ] || fail "images left in pool kube: $left"
trash=$(rbd_cli trash ls kube | grep ' csi-t' || true)
[ -z "$trash" ] || fail "trash entries left in pool kube: $trash"

# Neither key in its output (compared in the shell: a key never goes into argv).
out=$(<"$OUT")
for kr in "$CEPH_KEYRING" "$CEPH_KUBE_KEYRING"; do
  while read -r name _ value; do
    if [ "$name" = key ] && [ -n "$value" ] && [[ "$out" == *"$value"* ]]; then
      fail "a key from $kr appears in the test's output"
    fi
  done <"$kr"
done
pass "$(grep -E '^\[  PASSED  \]' "$OUT" | sed 's/^\[  PASSED  \] //')"
