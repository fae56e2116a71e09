# deploy/lib/packages.sh - which Debian packages are really installed (sourced by
# install-deps.sh and by tests/deploy/test_install_deps.sh).
#
# `dpkg -s PKG` exits 0 for any package dpkg has a record of, including one whose unpack
# failed and was rolled back: its status is then "install ok not-installed". So the only
# test of "installed" is the status field itself. DPKG_ADMINDIR points dpkg-query at
# another database (the tests use a database of their own).

# pkg_installed PKG: exit 0 when PKG's dpkg status is exactly "install ok installed".
pkg_installed() {
  local admin=() status
  [ -n "${DPKG_ADMINDIR:-}" ] && admin=(--admindir="$DPKG_ADMINDIR")
  status=$(dpkg-query "${admin[@]}" -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [ "$status" = "install ok installed" ]
}

# kubectl_works: exit 0 when a kubectl on PATH runs (`kubectl version --client`). A
# working kubectl from any package is kept: Debian's kubernetes-client conflicts with
# other packages that ship /usr/bin/kubectl, and dpkg then refuses to overwrite it.
kubectl_works() {
  command -v kubectl >/dev/null 2>&1 || return 1
  timeout 20 kubectl version --client >/dev/null 2>&1
}

# missing_packages PKG...: print, one a line, each PKG that is not installed. The
# pseudo-package "kubectl" stands for "a working kubectl": when none works it becomes
# kubernetes-client (unless that is installed already).
missing_packages() {
  local p
  for p in "$@"; do
    if [ "$p" = kubectl ]; then
      kubectl_works || pkg_installed kubernetes-client || echo kubernetes-client
    elif ! pkg_installed "$p"; then
      echo "$p"
    fi
  done
}
