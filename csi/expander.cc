#include "csi/expander.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

Result<uint64_t> Expander::Expand(const std::string& volume_id, const std::string& volume_path,
                                  uint64_t required_bytes) {
  auto loaded = ctx_.store->Load(volume_id);
  if (!loaded) return Unexpected(loaded.error());
  if (!loaded->has_value()) return Err(kNotFound, "volume {} is not staged on this node", volume_id);
  struct stat st{};
  if (::stat(volume_path.c_str(), &st) != 0) {
    int e = errno;
    return Err(e == ENOENT || e == ENOTDIR ? kNotFound : e, "volume path {}: {}", volume_path, strerror(e));
  }
  auto guard = ctx_.locks->TryLock(volume_id);
  if (!guard) return Unexpected(guard.error());
  const VolumeRecord& record = **loaded;
  if (!record.staged || record.device.empty()) {
    return Err(kFailedPrecondition, "volume {} is not fully staged", volume_id);
  }

  auto start = std::chrono::steady_clock::now();
  uint64_t size = 0;
  for (;;) {
    auto s = ctx_.devices->Size(record.device);
    if (!s) return Unexpected(s.error());
    size = *s;
    if (size >= required_bytes) break;
    if (std::chrono::steady_clock::now() - start >= ctx_.resize_wait) {
      return Err(ETIMEDOUT, "{} is {} bytes after {} ms, expected at least {} (was the image resized?)",
                 record.device, size,
                 std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.resize_wait).count(), required_bytes);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (record.mode == VolumeMode::kMount && !record.read_only) {
    if (auto r = ctx_.fs->Grow(record.device, record.staging_path, record.fs_type); !r) return Unexpected(r.error());
  }
  spdlog::info("expanded {}: {} is {} bytes", volume_id, record.device, size);
  return size;
}

}  // namespace rbdnbd::csi
