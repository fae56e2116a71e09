// VolumeLocks: at most one CSI operation per volume_id at a time.
//
// Contract: TryLock() never blocks. It returns a guard that holds the volume
// until destroyed, or kAborted (csi_error.h) when another operation holds it;
// CSI asks the CO to retry in that case. Thread-safe: called from gRPC
// threads concurrently.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/result.h"

namespace rbdnbd::csi {

class VolumeLocks {
 public:
  class Guard {
   public:
    Guard(VolumeLocks* owner, std::string id) : owner_(owner), id_(std::move(id)) {}
    Guard(Guard&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), id_(std::move(o.id_)) {}
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    ~Guard() {
      if (owner_ != nullptr) owner_->Unlock(id_);
    }

   private:
    VolumeLocks* owner_;
    std::string id_;
  };

  Result<Guard> TryLock(const std::string& volume_id);
  bool IsLocked(const std::string& volume_id);

 private:
  void Unlock(const std::string& volume_id);

  std::mutex mu_;
  std::set<std::string> held_;
};

}  // namespace rbdnbd::csi
