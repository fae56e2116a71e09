// MountInfo: parses /proc/self/mountinfo (proc(5)) to answer "what is mounted
// where".
//
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   id parent dev root mount_point options [optional...] - fstype source super_options
//
// Contract: ParseMountInfo() is pure and skips malformed lines; octal escapes
// (\040 for a space, \011, \012, \134) in paths are decoded. ReadMountInfo()
// reads the calling process's table. Any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rbdnbd::csi {

struct MountEntry {
  int id = 0;
  int parent = 0;
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;         // the path inside the filesystem ("/" unless a bind of a subdir)
  std::string mount_point;
  std::string options;      // per-mount options: rw|ro,...
  std::string fs_type;
  std::string source;       // /dev/nbd0, tmpfs, ...
  std::string super_options;

  bool read_only() const;   // "ro" among the per-mount options
};

std::vector<MountEntry> ParseMountInfo(std::string_view text);
Result<std::vector<MountEntry>> ReadMountInfo(const std::string& path = "/proc/self/mountinfo");

// The top-most mount at exactly `mount_point` (the last one listed), if any.
std::optional<MountEntry> FindMount(const std::vector<MountEntry>& table, const std::string& mount_point);

std::string UnescapeMountPath(std::string_view s);

}  // namespace rbdnbd::csi
