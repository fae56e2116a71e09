#!/bin/bash
# tests/e2e/qemu/fetch-kernel.sh [DEST] - fetch Debian 12's own Linux 6.12 kernel for the
# qemu e2e guest (tests/e2e/qemu/run.sh), WITHOUT installing it.
#
# `apt-get download` of the newest linux-image-6.12.N+deb12-amd64 that apt can fetch, then
# `dpkg-deb -x` into DEST (default build/guest-kernel, outside git). Nothing goes to the
# host's /boot or /lib/modules; no dpkg -i. Then, in DEST:
#   vmlinuz                         the kernel (a symlink into the unpacked tree)
#   vmlinux                         the same kernel decompressed (an ELF that qemu boots
#                                   through its PVH entry): TCG takes seconds to run the
#                                   bzImage's own zstd decompressor, so run.sh prefers it
#   version                         its release (uname -r in the guest)
#   lib/modules/VERSION/            every module; the ones the guest needs decompressed
#                                   (.ko.xz -> .ko: busybox's insmod in the initramfs, and
#                                   a modprobe that need not decompress); depmod run on it
#   initrd-mods/                    the decompressed modules the initramfs loads itself
#                                   (netfs 9pnet 9pnet_virtio 9p overlay, in load order)
# Cached: a second run with the package unpacked does nothing (prints the version).
# Settings: E2E_KERNEL_PKG=linux-image-... forces a package (default: the newest 6.12).
# Exit: 0 ready; 1 with a message on stderr when the download or unpacking failed.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
DEST=${1:-$ROOT/build/guest-kernel}
die() { echo "fetch-kernel.sh: $*" >&2; exit 1; }

# The modules the initramfs loads before the host's / is reachable, in dependency order.
INITRD_MODS=(fs/netfs/netfs net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p fs/overlayfs/overlay)
# Modules decompressed in the tree (with what they depend on, found through modules.dep):
# the block drivers the scenarios load, their filesystems, and the guest's network.
WANT_MODS=(nbd rbd ublk_drv loop brd ext4 xfs virtio_net tun crc32c_generic crc32c-intel
           libcrc32c)

# extract_vmlinux VERSION : DEST/vmlinux from the bzImage's zstd payload (Debian builds
# CONFIG_KERNEL_ZSTD and CONFIG_PVH). Best effort: without it run.sh boots the bzImage.
extract_vmlinux() {
  local z=$DEST/boot/vmlinuz-$1 off
  [ -s "$DEST/vmlinux" ] && return 0
  command -v zstd >/dev/null || return 0
  for off in $(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$z" | cut -d: -f1); do
    # zstd complains about what follows the frame (the size, the rest of the image): the
    # output decides, not its exit code.
    tail -c +$((off + 1)) "$z" | zstd -dcq 2>/dev/null > "$DEST/vmlinux.tmp" || true
    if [ "$(head -c 4 "$DEST/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
      mv "$DEST/vmlinux.tmp" "$DEST/vmlinux"
      return 0
    fi
  done
  rm -f "$DEST/vmlinux.tmp"
  return 0
}

if [ -f "$DEST/.complete" ] && [ -s "$DEST/version" ]; then
  v=$(cat "$DEST/version")
  if [ -f "$DEST/boot/vmlinuz-$v" ] && [ -f "$DEST/lib/modules/$v/modules.dep" ]; then
    extract_vmlinux "$v"
    echo "$v"
    exit 0
  fi
fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb (Debian)"
PKG=${E2E_KERNEL_PKG:-}
if [ -z "$PKG" ]; then
  # The newest linux-image-6.12.N+deb12-amd64 (the signed image; -unsigned has the same
  # kernel) that has a download candidate.
  PKG=$(apt-cache pkgnames linux-image-6.12. 2>/dev/null \
          | grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' | sort -V -r \
          | while read -r p; do
              c=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
              [ -n "$c" ] && [ "$c" != "(none)" ] && { echo "$p"; break; }
            done) || true
  [ -n "$PKG" ] || die "no linux-image-6.12.*+deb12-amd64 package known to apt (run apt-get update; Debian 12 main has them)"
fi
VERSION=${PKG#linux-image-}

mkdir -p "$DEST"
DL=$(mktemp -d "$DEST/.dl.XXXXXX")
trap 'rm -rf "$DL"' EXIT
echo "fetch-kernel.sh: apt-get download $PKG" >&2
# apt-get download writes into the cwd; as root it drops privileges to _apt, which must
# be able to write there.
chmod 777 "$DL"
if ! (cd "$DL" && timeout 600 apt-get download -q "$PKG") > "$DL/apt.log" 2>&1; then
  cat "$DL/apt.log" >&2
  die "apt-get download $PKG failed (no network or no mirror?). The qemu e2e guest needs it."
fi
deb=$(ls "$DL"/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "apt-get download $PKG left no .deb"

rm -rf "$DEST/boot" "$DEST/lib" "$DEST/usr" "$DEST/initrd-mods" "$DEST/.complete"
dpkg-deb -x "$deb" "$DEST" || die "dpkg-deb -x $deb failed"
# Debian 12 packages ship /lib/modules; a merged-/usr package would ship usr/lib/modules.
if [ ! -d "$DEST/lib/modules/$VERSION" ] && [ -d "$DEST/usr/lib/modules/$VERSION" ]; then
  mkdir -p "$DEST/lib/modules"
  mv "$DEST/usr/lib/modules/$VERSION" "$DEST/lib/modules/$VERSION"
fi
MODDIR=$DEST/lib/modules/$VERSION
[ -f "$DEST/boot/vmlinuz-$VERSION" ] || die "no boot/vmlinuz-$VERSION in $deb"
[ -d "$MODDIR/kernel" ] || die "no lib/modules/$VERSION in $deb"

# depmod over the tree as shipped (kmod reads .ko.xz), to find the dependencies.
depmod -b "$DEST" "$VERSION" || die "depmod failed"
declare -A need=()
for m in "${WANT_MODS[@]}"; do
  path=$(modinfo -b "$DEST" -k "$VERSION" -n "$m" 2>/dev/null) || continue
  need[$path]=1
  for d in $(modprobe -d "$DEST" -S "$VERSION" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'); do
    need[$d]=1
  done
done
for m in "${INITRD_MODS[@]}"; do need[$MODDIR/kernel/$m.ko.xz]=1; done
for f in "${!need[@]}"; do
  case "$f" in *.ko.xz) [ -f "$f" ] && { xz -d -f "$f" || die "xz -d $f failed"; } ;; esac
done
depmod -b "$DEST" "$VERSION" || die "depmod failed"

mkdir -p "$DEST/initrd-mods"
i=0
for m in "${INITRD_MODS[@]}"; do
  [ -f "$MODDIR/kernel/$m.ko" ] || die "module $m.ko missing from $PKG"
  cp "$MODDIR/kernel/$m.ko" "$DEST/initrd-mods/$i-$(basename "$m").ko"
  i=$((i + 1))
done
ln -sfn "boot/vmlinuz-$VERSION" "$DEST/vmlinuz"
rm -f "$DEST/vmlinux"
extract_vmlinux "$VERSION"
echo "$VERSION" > "$DEST/version"
touch "$DEST/.complete"
echo "fetch-kernel.sh: $PKG unpacked in $DEST" >&2
echo "$VERSION"
