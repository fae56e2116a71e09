#!/bin/bash
# tests/deploy/install_deps_test.sh - deploy/install-deps.sh's package decisions, against a
# dpkg database of the test's own (real dpkg-query, --admindir) and real kubectl states.
#   1. A package whose unpack failed and was rolled back ("install ok not-installed", what
#      a kubectl conflict leaves behind) counts as missing, although `dpkg -s` exits 0 for it.
#   2. "install ok installed" counts as installed; "deinstall ok config-files" and an
#      unknown package count as missing.
#   3. A working kubectl on PATH is kept (kubernetes-client is not asked for); with no
#      kubectl, or one that does not run, kubernetes-client is asked for.
#   4. --list-missing on the real machine prints only package names and installs nothing.
#   5. The 6.12 e2e guest's packages (qemu-system-x86, busybox-static) are on the list.
# No root needed. Prints "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/deploy/lib/packages.sh"
PASSED=0 FAILED=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; PASSED=$((PASSED + 1)); else echo "FAIL $name"; FAILED=$((FAILED + 1)); fi
}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
ADMIN=$TMP/dpkg; mkdir -p "$ADMIN/info" "$ADMIN/updates"; : > "$ADMIN/available"
stanza() {  # stanza PACKAGE STATUS
  printf 'Package: %s\nStatus: %s\nPriority: optional\nSection: misc\nMaintainer: t <t@t>\nArchitecture: amd64\nVersion: 1.0\nDescription: test\n' "$1" "$2"
  [ "$2" = "install ok installed" ] && printf 'Installed-Size: 1\n'
  echo
}
{
  stanza rolled-back "install ok not-installed"
  stanza present "install ok installed"
  stanza removed "deinstall ok config-files"
} > "$ADMIN/status"

# 1-2: the status field decides.
check "dpkg -s exits 0 for a rolled-back package (why dpkg -s is no test)" eval 'dpkg --admindir="$ADMIN" -s rolled-back >/dev/null 2>&1'
export DPKG_ADMINDIR=$ADMIN
check "a rolled-back package (install ok not-installed) is not installed" eval '! pkg_installed rolled-back'
check "an installed package is installed" pkg_installed present
check "a removed package (config-files) is not installed" eval '! pkg_installed removed'
check "an unknown package is not installed" eval '! pkg_installed no-such-package'
out=$(missing_packages rolled-back present removed no-such-package | tr '\n' ' ')
check "missing_packages lists exactly the three that are not installed ($out)" \
  test "$out" = "rolled-back removed no-such-package "

# 3: kubectl. A PATH with dpkg-query and timeout but no kubectl at all.
BIN=$TMP/bin; mkdir -p "$BIN"
for c in dpkg-query timeout bash; do ln -s "$(command -v "$c")" "$BIN/$c"; done
out=$(PATH=$BIN missing_packages kubectl)
check "no kubectl on PATH: kubernetes-client is asked for ($out)" test "$out" = kubernetes-client
printf '#!/bin/sh\nexit 1\n' > "$BIN/kubectl"; chmod +x "$BIN/kubectl"
out=$(PATH=$BIN missing_packages kubectl)
check "a kubectl that does not run: kubernetes-client is asked for ($out)" test "$out" = kubernetes-client
if command -v kubectl >/dev/null && timeout 20 kubectl version --client >/dev/null 2>&1; then
  rm "$BIN/kubectl"; ln -s "$(command -v kubectl)" "$BIN/kubectl"
  out=$(PATH=$BIN missing_packages kubectl)
  check "a working kubectl ($(command -v kubectl)) is kept: nothing asked for ('$out')" test -z "$out"
else
  echo "FAIL no working kubectl on this machine (install-deps should have provided one)"; FAILED=$((FAILED + 1))
fi

# 4: the real machine, read-only.
unset DPKG_ADMINDIR
out=$(bash "$ROOT/deploy/install-deps.sh" --list-missing 2>&1); rc=$?
check "install-deps --list-missing exits 0" test "$rc" = 0
check "install-deps --list-missing prints only package names ('$out')" \
  bash -c '[ -z "$1" ] || ! grep -qvE "^[a-z0-9][a-z0-9.+-]*$" <<< "$1"' _ "$out"
for p in qemu-system-x86 busybox-static; do
  check "install-deps asks for $p (the 6.12 e2e guest)" \
    grep -qE "^[[:space:]]+([a-z0-9.+-]+ )*$p( |\$)" "$ROOT/deploy/install-deps.sh"
done
check "install-deps rejects an unknown option" bash -c '! bash "$1" --bogus 2>/dev/null' _ "$ROOT/deploy/install-deps.sh"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
