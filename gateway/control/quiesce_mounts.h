// Which filesystems are mounted from a block device, read from
// /proc/self/mountinfo: what the daemon freezes when librbd asks it to quiesce
// an image (see quiesce_session.h for the whole flow).
//
// Contract
// --------
// * Pure functions over text, plus DeviceNumbersOf() which reads stat() and
//   sysfs. No locks, any thread; nothing here blocks on I/O of the device.
// * A block device has at most one superblock, so every mountinfo line with
//   the device's major:minor is a mount of that one filesystem: a CSI staging
//   mount plus its bind mounts into pods is ONE filesystem. MountsToFreeze()
//   returns one mount point per superblock: the first line in mountinfo order
//   (the oldest mount, normally the staging path), which is the one a freeze
//   and the log lines name. Freezing it twice would fail with EBUSY.
// * Partitions (nbdNpK, when the module has max_part > 0) have their own
//   major:minor; DeviceNumbersOf() lists them too, so "the filesystems on a
//   device" includes those on its partitions.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rbdnbd {

struct MountInfoEntry {
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;         // the path inside the filesystem that is mounted ("/" or a bind source)
  std::string mount_point;  // unescaped (\040 -> ' ')
  std::string fs_type;
  std::string source;
};

// Parses /proc/PID/mountinfo text (proc(5)); lines it cannot read are skipped.
std::vector<MountInfoEntry> ParseMountInfo(std::string_view text);

struct DeviceNumber {
  unsigned major = 0;
  unsigned minor = 0;
  bool operator==(const DeviceNumber&) const = default;
};

// One mount point per filesystem mounted from any of `devices`, in mountinfo
// order (the first mount of each superblock).
std::vector<std::string> MountsToFreeze(const std::vector<MountInfoEntry>& mounts,
                                        const std::vector<DeviceNumber>& devices);

// The device's own number and those of its partitions. ENOTBLK when `path`
// is not a block device.
Result<std::vector<DeviceNumber>> DeviceNumbersOf(const std::string& path);

}  // namespace rbdnbd
