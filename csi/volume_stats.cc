#include "csi/volume_stats.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

Result<VolumeUsageStats> VolumeStats::Get(const std::string& volume_id, const std::string& volume_path) {
  auto loaded = ctx_.store->Load(volume_id);
  if (!loaded) return Unexpected(loaded.error());
  if (!loaded->has_value()) return Err(kNotFound, "volume {} is not staged on this node", volume_id);
  const VolumeRecord& record = **loaded;
  struct stat st{};
  if (::stat(volume_path.c_str(), &st) != 0) {
    int e = errno;
    return Err(e == ENOENT || e == ENOTDIR ? kNotFound : e, "volume path {}: {}", volume_path, strerror(e));
  }
  VolumeUsageStats s;
  if (record.mode == VolumeMode::kBlock) {
    auto size = ctx_.devices->Size(record.device);
    if (!size) return Unexpected(size.error());
    s.bytes_total = static_cast<int64_t>(*size);
    s.condition = Condition(record);
    return s;
  }
  struct statvfs vfs{};
  if (::statvfs(volume_path.c_str(), &vfs) != 0) return Err(errno, "statvfs {}: {}", volume_path, strerror(errno));
  const auto frsize = static_cast<int64_t>(vfs.f_frsize);
  s.bytes_total = static_cast<int64_t>(vfs.f_blocks) * frsize;
  s.bytes_available = static_cast<int64_t>(vfs.f_bavail) * frsize;
  s.bytes_used = static_cast<int64_t>(vfs.f_blocks - vfs.f_bfree) * frsize;
  s.has_inodes = true;
  s.inodes_total = static_cast<int64_t>(vfs.f_files);
  s.inodes_available = static_cast<int64_t>(vfs.f_ffree);
  s.inodes_used = static_cast<int64_t>(vfs.f_files - vfs.f_ffree);
  s.condition = Condition(record);
  return s;
}

VolumeCondition VolumeStats::Condition(const VolumeRecord& record) {
  return EvaluateCondition(record, ctx_.daemon->Status(), static_cast<int64_t>(::time(nullptr)));
}

}  // namespace rbdnbd::csi
