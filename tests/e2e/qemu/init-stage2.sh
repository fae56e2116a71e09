#!/bin/bash
# Stage-2 init of the qemu e2e guest (PID 1, root = tmpfs overlay over the host's / on
# virtio-9p; see run.sh and initramfs-init.sh). The same job as tests/e2e/uml/init-stage2.sh:
# 1. Mounts the usual pseudo filesystems, the host control dir (9p tag "ctl") at /run/vm,
#    read-write, and every directory listed in /run/vm/rwdirs (9p tags rw0, rw1...) at its
#    own path; the guest kernel's modules (kernel parameter e2e_kmods=, the unpacked
#    package's lib/modules, depmod run) over /lib/modules, for modprobe; the network
#    (e2e_net=ADDR/PREFIX on eth0, when run.sh gave the guest a NIC).
# 2. Loads /run/vm/modules, then runs /run/vm/job.sh in its own session, bounded by
#    /run/vm/timeout seconds (TERM, then KILL 15 s later).
# 3. Writes the exit code to /run/vm/rc (124 on timeout) and the kernel log to dmesg.log
#    (after a timeout, also a dump of blocked tasks and ps.log), then powers off.
# No step here may block forever: a hung init would only end at the host-side timeout.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8 LC_ALL=C.UTF-8
umask 022

say() { echo "e2e init: $*"; }
poweroff_now() {
  sync
  echo o > /proc/sysrq-trigger          # ACPI power off: qemu exits
  mkfifo /run/halt.fifo 2>/dev/null
  read -r -t 30 _ <> /run/halt.fifo
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /dev/pts /dev/shm /dev/mqueue /run/lock /run/vm /run/ceph /lib/modules
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sfn /proc/self/fd /dev/fd
ln -sf pts/ptmx /dev/ptmx
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

KMODS= NET= MSIZE=512000
read -r -a _cmdline < /proc/cmdline
for _w in "${_cmdline[@]}"; do
  case $_w in
    e2e_kmods=*) KMODS=${_w#e2e_kmods=} ;;
    e2e_net=*) NET=${_w#e2e_net=} ;;
    e2e_msize=*) MSIZE=${_w#e2e_msize=} ;;
  esac
done
P9="trans=virtio,version=9p2000.L,msize=$MSIZE"
if ! mount -t 9p -o "$P9" ctl /run/vm; then
  say "FATAL: cannot mount the control dir (9p tag ctl)"
  poweroff_now
fi
[ -n "$KMODS" ] && mount --bind "$KMODS" /lib/modules   # for modprobe

ip link set lo up
echo e2e-guest > /proc/sys/kernel/hostname
echo "127.0.1.1 e2e-guest" >> /etc/hosts   # the overlay's copy: some tools resolve it
ulimit -n 65536

if [ -n "$NET" ]; then
  modprobe virtio_net 2>/dev/null
  for _ in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
  ip addr add "$NET" dev eth0 && ip link set eth0 up || say "cannot configure eth0 with $NET"
fi

i=0
while IFS= read -r d; do
  [ -n "$d" ] || continue
  mkdir -p "$d" && mount -t 9p -o "$P9" "rw$i" "$d" || say "cannot mount rw dir $d"
  i=$((i + 1))
done < /run/vm/rwdirs

for m in $(< /run/vm/modules); do
  modprobe "$m" || say "modprobe $m failed"
done

T=$(< /run/vm/timeout)
read -r boot _ < /proc/uptime
echo "boot=$boot" > /run/vm/timing
say "booted in ${boot}s, running the job (timeout ${T}s)"

timeout -k 15 "$T" setsid bash /run/vm/job.sh < /dev/null
rc=$?
read -r done_at _ < /proc/uptime
took=$(awk -v a="$boot" -v b="$done_at" 'BEGIN{printf "%.1f", b-a}')
echo "script=$took" >> /run/vm/timing
if [ "$rc" = 137 ] && awk -v t="$took" -v T="$T" 'BEGIN{exit !(t >= T)}'; then rc=124; fi
echo "$rc" > /run/vm/rc.tmp && mv /run/vm/rc.tmp /run/vm/rc
if [ "$rc" = 124 ]; then
  say "job timed out after ${T}s: dumping blocked tasks"
  echo w > /proc/sysrq-trigger
  timeout 10 ps -eo pid,ppid,stat,wchan:32,etime,args > /run/vm/ps.log 2>&1
fi
timeout 10 dmesg > /run/vm/dmesg.log 2>&1
say "job exit code $rc after ${done_at}s of uptime"

kill -KILL -1 2>/dev/null
sleep 0.2
sync
while IFS= read -r d; do
  [ -n "$d" ] && timeout 10 umount "$d" 2>/dev/null
done < /run/vm/rwdirs
timeout 10 umount /run/vm
poweroff_now
