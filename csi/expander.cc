#include "csi/expander.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

constexpr int kOutOfRange = CsiCode(grpc::StatusCode::OUT_OF_RANGE);

}  // namespace

uint64_t Expander::ImageSize(const std::string& device) {
  auto status = ctx_.daemon->Status();
  if (!status) return 0;  // not known: keep waiting for the kernel
  for (const MappedDevice& d : status->devices) {
    if (d.device == device) return d.image_size;
  }
  return 0;
}

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
  std::optional<std::chrono::steady_clock::time_point> image_short_since;
  if (record.device_type == DeviceType::kUblk) {
    // A kernel that cannot resize ublk devices would only end the wait below
    // in a timeout: say why at once.
    auto s = ctx_.devices->Size(record.device);
    if (!s) return Unexpected(s.error());
    if (*s < required_bytes) {
      if (auto r = CheckUblkCanGrow(record.device, ctx_.ublk); !r) return Unexpected(r.error());
    }
  }
  uint64_t size = 0;
  for (;;) {
    auto s = ctx_.devices->Size(record.device);
    if (!s) return Unexpected(s.error());
    size = *s;
    if (size >= required_bytes) break;
    auto now = std::chrono::steady_clock::now();
    // The kernel follows the image; an image that is itself too small will
    // never get there: answer at once (after a grace: the daemon learns of an
    // `rbd resize` through librbd's header watch, quick but not instant), not
    // after the whole wait.
    if (uint64_t image = ImageSize(record.device); image != 0 && image < required_bytes) {
      if (!image_short_since) image_short_since = now;
      if (now - *image_short_since >= ctx_.image_grace) {
        return Err(kOutOfRange,
                   "the image behind {} ({}) is {} bytes, less than the {} asked for: grow the image first "
                   "(ControllerExpandVolume, or rbd resize)",
                   record.device, record.spec, image, required_bytes);
      }
    } else {
      image_short_since.reset();
    }
    if (now - start >= ctx_.resize_wait) {
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
