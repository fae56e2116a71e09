#!/bin/bash
# Stage-2 init of the e2e guest (PID 1, root = tmpfs overlay over the host's /; see run.sh).
#
# 1. Mounts the usual pseudo filesystems and the host control dir (kernel parameter e2e_ctl=)
#    at /run/vm, read-write; then every directory listed in /run/vm/rwdirs at its own path.
# 2. Loads /run/vm/modules, then runs /run/vm/job.sh in its own session, bounded by
#    /run/vm/timeout seconds (TERM, then KILL 15 s later).
# 3. Writes the exit code to /run/vm/rc (124 on timeout) and the kernel log to dmesg.log
#    (after a timeout, also a dump of blocked tasks and ps.log), then powers off.
# No step here may block forever: a hung init would only end at the host-side timeout.
# Every exec costs ~0.3-1 s in UML (page faults are host round trips): use bash builtins
# where one will do, and one command for many arguments.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8 LC_ALL=C.UTF-8
umask 022

say() { echo "e2e init: $*"; }
poweroff_now() {
  sync
  echo o > /proc/sysrq-trigger          # UML: linux.uml exits at once
  mkfifo /run/halt.fifo 2>/dev/null       # a builtin wait: no exec while the kernel halts
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
umount -l /oldroot 2>/dev/null
mount --bind /usr/lib/uml/modules /lib/modules   # for modprobe

CTL= NET=
read -r -a _cmdline < /proc/cmdline
for _w in "${_cmdline[@]}"; do
  case $_w in
    e2e_ctl=*) CTL=${_w#e2e_ctl=} ;;
    e2e_net=*) NET=${_w#e2e_net=} ;;
  esac
done
if ! mount -t hostfs -o "$CTL" hostfs /run/vm; then
  say "FATAL: cannot mount the control dir $CTL"
  poweroff_now
fi

ip link set lo up
if [ -n "$NET" ]; then   # run.sh gave the guest a NIC (VM_TAP)
  ip addr add "$NET" dev eth0 && ip link set eth0 up || say "cannot configure eth0 with $NET"
fi
echo e2e-guest > /proc/sys/kernel/hostname
echo "127.0.1.1 e2e-guest" >> /etc/hosts   # the overlay's copy: some tools resolve it
ulimit -n 65536

while IFS= read -r d; do
  [ -n "$d" ] || continue
  mkdir -p "$d" && mount -t hostfs -o "$d" hostfs "$d" || say "cannot mount rw dir $d"
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
# timeout(1) says 124, or 137 when the job ignored TERM and was KILLed; a job that merely
# exits 137 early is not a timeout.
if [ "$rc" = 137 ] && awk -v t="$took" -v T="$T" 'BEGIN{exit !(t >= T)}'; then rc=124; fi
echo "$rc" > /run/vm/rc.tmp && mv /run/vm/rc.tmp /run/vm/rc
if [ "$rc" = 124 ]; then
  say "job timed out after ${T}s: dumping blocked tasks"
  echo w > /proc/sysrq-trigger
  timeout 10 ps -eo pid,ppid,stat,wchan:32,etime,args > /run/vm/ps.log 2>&1
fi
timeout 10 dmesg > /run/vm/dmesg.log 2>&1
say "job exit code $rc after ${done_at}s of uptime"

# Stop whatever the job left behind, so the rw mounts can be flushed and released.
kill -KILL -1 2>/dev/null
sleep 0.2
sync
while IFS= read -r d; do
  [ -n "$d" ] && timeout 10 umount "$d" 2>/dev/null
done < /run/vm/rwdirs
timeout 10 umount /run/vm
poweroff_now
