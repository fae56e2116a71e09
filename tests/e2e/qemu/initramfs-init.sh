#!/bin/busybox sh
# /init of the qemu e2e guest's initramfs (built by run.sh: busybox-static, this script,
# the decompressed 9p and overlay modules in /mods). PID 1 until the switch_root.
#
# Loads netfs, 9pnet, 9pnet_virtio, 9p and overlay; mounts the host's / (virtio-9p tag
# "host", read-only) under a tmpfs-backed overlay, so the guest can write anywhere without
# touching the host; moves /dev over and switch_roots into the overlay, running stage 2.
# Kernel parameters read here: e2e_stage2=PATH, e2e_ovl=SIZE (tmpfs size), e2e_msize=N.
/bin/busybox mkdir -p /proc /sys /dev /host /ovl /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

fatal() {
  echo "e2e initramfs: FATAL: $*"
  echo o > /proc/sysrq-trigger    # power off: run.sh then reports 125
  sleep 30
}

mount -t proc proc /proc || fatal "mount /proc"
mount -t sysfs sysfs /sys || fatal "mount /sys"
mount -t devtmpfs devtmpfs /dev || fatal "mount /dev"

STAGE2= OVL=1g MSIZE=512000
for w in $(cat /proc/cmdline); do
  case "$w" in
    e2e_stage2=*) STAGE2=${w#e2e_stage2=} ;;
    e2e_ovl=*) OVL=${w#e2e_ovl=} ;;
    e2e_msize=*) MSIZE=${w#e2e_msize=} ;;
  esac
done
[ -n "$STAGE2" ] || fatal "no e2e_stage2= on the kernel command line"

for m in /mods/*.ko; do
  insmod "$m" || fatal "insmod $m"
done
# cache=loose: the host's / is read-only for the guest and the scenarios copy the binaries
# they run (lib.sh private_copy), so caching its pages and attributes is safe, and an exec
# reads the binary over 9p once.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=$MSIZE,cache=loose host /host \
  || fatal "mount the host's / over 9p"
mount -t tmpfs -o "mode=755,size=$OVL" e2e-overlay /ovl || fatal "tmpfs for the overlay"
mkdir -p /ovl/upper /ovl/work
mount -t overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot \
  || fatal "overlay mount"
mount --move /dev /newroot/dev || fatal "move /dev"
umount /sys
umount /proc
exec switch_root /newroot "$STAGE2"
fatal "switch_root to $STAGE2"
