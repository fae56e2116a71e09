// What "quiesce this device" means: freezing the filesystems mounted from it
// (the default), or running the operator's hook (--quiesce-hook).
//
// Contract
// --------
// * A Quiescer belongs to one QuiesceSession (quiesce_session.h) and is only
//   called from that session's worker thread, never concurrently.
// * Quiesce(deadline) returns 0 or -errno, and returns by `deadline` (then
//   -ETIMEDOUT). On any failure nothing it did stays in place: frozen
//   filesystems are thawed again, a failed hook's `unquiesce` is run. A
//   freeze ioctl cannot be interrupted, so one still running at the deadline
//   is left to a thread of its own that thaws the filesystem the moment the
//   freeze returns (Drain() waits for those).
// * Unquiesce() undoes the last successful Quiesce(). Bounded (a thaw does no
//   I/O; a hook is bounded by the timeout given at construction).
// * Log lines (the e2e tests and operators grep them):
//     info  "quiesce: froze MOUNTPOINT (DEVICE, POOL/IMAGE)"
//     info  "quiesce: thawed MOUNTPOINT (DEVICE, POOL/IMAGE)"
//     warn  "quiesce: cannot freeze MOUNTPOINT (DEVICE, POOL/IMAGE): ERRNO TEXT ..."
//     debug "quiesce: no filesystem mounted from DEVICE (POOL/IMAGE)"
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "control/quiesce_mounts.h"

namespace rbdnbd {

using QuiesceClock = std::chrono::steady_clock;

class Quiescer {
 public:
  virtual ~Quiescer() = default;
  virtual int Quiesce(QuiesceClock::time_point deadline) = 0;
  virtual void Unquiesce() = 0;
  // Waits up to `deadline` for operations that outlived their own deadline
  // (a freeze stuck in the kernel); true when none is left.
  virtual bool Drain(QuiesceClock::time_point /*deadline*/) { return true; }
};

// Freezes and thaws one mounted filesystem (FIFREEZE/FITHAW on its mount
// point). Blocking; any thread; 0 or -errno.
class Freezer {
 public:
  virtual ~Freezer() = default;
  virtual int Freeze(const std::string& mount_point) = 0;
  virtual int Thaw(const std::string& mount_point) = 0;
};
std::shared_ptr<Freezer> MakeIoctlFreezer();

// Where FsQuiescer looks, replaceable by tests.
struct FsQuiescerSources {
  std::function<Result<std::string>()> mountinfo;                  // default: /proc/self/mountinfo
  std::function<Result<std::vector<DeviceNumber>>()> device_numbers;  // default: DeviceNumbersOf(device)
  std::shared_ptr<Freezer> freezer;                                 // default: MakeIoctlFreezer()
};

class FsQuiescer final : public Quiescer {
 public:
  // `device` (/dev/nbdN) and `spec` (POOL/IMAGE) name it in the log lines.
  FsQuiescer(std::string device, std::string spec, FsQuiescerSources sources = {});
  ~FsQuiescer() override;
  int Quiesce(QuiesceClock::time_point deadline) override;
  void Unquiesce() override;
  bool Drain(QuiesceClock::time_point deadline) override;

 private:
  struct PendingFreeze;
  int FreezeBounded(const std::string& mount_point, QuiesceClock::time_point deadline);
  void ThawAll();
  void ReapStragglers();

  std::string device_;
  std::string label_;  // "DEVICE, POOL/IMAGE"
  FsQuiescerSources src_;
  std::vector<std::string> frozen_;  // in freeze order
  std::vector<std::pair<std::shared_ptr<PendingFreeze>, std::thread>> stragglers_;
};

// `PATH DEVICE quiesce` / `PATH DEVICE unquiesce` (rbd-nbd's convention).
class HookQuiescer final : public Quiescer {
 public:
  HookQuiescer(std::string hook, std::string device, std::string spec, std::chrono::milliseconds timeout);
  int Quiesce(QuiesceClock::time_point deadline) override;
  void Unquiesce() override;

 private:
  std::string hook_;
  std::string device_;
  std::string label_;
  std::chrono::milliseconds timeout_;
};

}  // namespace rbdnbd
