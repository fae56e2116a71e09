#include "csi/volume_locks.h"

#include "csi/csi_error.h"

namespace rbdnbd::csi {

Result<VolumeLocks::Guard> VolumeLocks::TryLock(const std::string& volume_id) {
  std::lock_guard lock(mu_);
  if (!held_.insert(volume_id).second) {
    return Err(kAborted, "an operation on volume {} is already in progress", volume_id);
  }
  return Guard(this, volume_id);
}

bool VolumeLocks::IsLocked(const std::string& volume_id) {
  std::lock_guard lock(mu_);
  return held_.count(volume_id) != 0;
}

void VolumeLocks::Unlock(const std::string& volume_id) {
  std::lock_guard lock(mu_);
  held_.erase(volume_id);
}

}  // namespace rbdnbd::csi
