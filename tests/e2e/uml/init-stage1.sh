#!/bin/sh
# Stage-1 init of the e2e guest (PID 1; see run.sh). The kernel mounted the host's / read-only
# through hostfs. Lay a tmpfs-backed overlay over it, so the guest can write anywhere without
# touching the host, pivot into the overlay and exec stage 2.
#
# Kernel parameters read here: e2e_stage2=PATH (the stage-2 init), e2e_ovl=SIZE (tmpfs size).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

fatal() {
  echo "e2e init-stage1: FATAL: $*" >&2
  echo o > /proc/sysrq-trigger   # power off: run.sh then reports 125
  sleep 30
}

mount -t proc proc /proc || fatal "mount /proc"
mount -t sysfs sysfs /sys || fatal "mount /sys"

param() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
STAGE2=$(param e2e_stage2)
OVL=$(param e2e_ovl)
[ -n "$STAGE2" ] || fatal "no e2e_stage2= on the kernel command line"

# The overlay driver is a module (with no dependencies). The UML kernel's modules live on the
# host in /usr/lib/uml/modules; the host may have no /lib/modules to bind them over, and the
# root is read-only until the overlay exists, so load it by path.
insmod "/usr/lib/uml/modules/$(uname -r)/kernel/fs/overlayfs/overlay.ko" || fatal "insmod overlay"

NEW=/run/e2e-root
mount -t tmpfs -o "mode=755,size=${OVL:-1g}" e2e-overlay /run || fatal "tmpfs on /run"
mkdir -p /run/upper /run/work "$NEW"
mount -t overlay -o lowerdir=/,upperdir=/run/upper,workdir=/run/work overlay "$NEW" \
  || fatal "overlay mount"
mkdir -p "$NEW/oldroot"
mount --move /dev "$NEW/dev" || fatal "move /dev"
umount /sys
umount /proc
cd "$NEW" || fatal "cd $NEW"
pivot_root . oldroot || fatal "pivot_root"
exec chroot . "$STAGE2"
fatal "exec $STAGE2"
