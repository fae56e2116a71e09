// NameLocks: one operation at a time per key (a CSI name or an id), where a
// second caller WAITS for the first instead of failing.
//
// Why not VolumeLocks (csi/volume_locks.h): the node plugin answers ABORTED
// to a concurrent call, and kubelet retries. The controller's README promises
// that concurrent CreateVolume calls of one name return the one volume, so
// the second call waits for the first and then finds its journal record.
//
// Contract: Lock() blocks until the key is free and returns a guard holding
// it until destroyed. No lock of NameLocks is held while a guard's owner
// works (only while the key set changes). Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace rbdnbd::csi {

class NameLocks {
 public:
  class Guard {
   public:
    Guard(NameLocks* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Guard(Guard&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), key_(std::move(o.key_)) {}
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    ~Guard() {
      if (owner_ != nullptr) owner_->Unlock(key_);
    }

   private:
    NameLocks* owner_;
    std::string key_;
  };

  Guard Lock(const std::string& key) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_.count(key) == 0; });
    held_.insert(key);
    return Guard(this, key);
  }

  bool IsLocked(const std::string& key) {
    std::lock_guard lock(mu_);
    return held_.count(key) != 0;
  }

 private:
  void Unlock(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      held_.erase(key);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

}  // namespace rbdnbd::csi
