// DeviceVitals: what the daemon remembers about one device between looks, to
// judge its health (the "health" object of `status`/`list-mapped`, which the
// CSI plugin turns into VolumeCondition) and to count its reattaches and
// stalls (rbdnbd_device_stalled_seconds_total).
//
// Contract
// --------
// * Not thread-safe: the DeviceManager keeps one per device and calls it under
//   its lock, from the control thread, a reattach worker or a scrape. Nothing
//   here runs per request: the I/O side is the device's DeviceIoStats
//   (device/io_stats.h), read by snapshot.
// * Times are CLOCK_MONOTONIC nanoseconds (io_stats.h's MonotonicNowNs), given
//   by the caller, so tests drive the clock.
// * Stalls: a device is stalled (for the stall counter) while it is
//   reattaching: the kernel holds its I/O and nobody serves it. EnterStall and
//   LeaveStall are idempotent; StalledSeconds() includes the stall in
//   progress.
// * Observe() takes a look at the I/O totals (at most one window sample per
//   second is kept): it feeds the 60 s error window and the "no progress"
//   clock. The daemon's main thread calls it about once a second, and every
//   status call and scrape calls it too.
// * Health(): a pure reading, see api::DeviceHealth for the wire meaning.
//   "Stalled" is: reattaching; or requests in flight and neither a completion
//   nor an idle look (nothing in flight) for kStallAfter.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "api/messages.h"
#include "device/io_stats.h"

namespace rbdnbd {

class DeviceVitals {
 public:
  static constexpr uint64_t kSecondNs = 1'000'000'000;
  static constexpr uint64_t kErrorWindowNs = 60 * kSecondNs;
  static constexpr uint64_t kStallAfterNs = 30 * kSecondNs;

  // `now_ns`: when the device appeared (errors before it are not "recent").
  explicit DeviceVitals(uint64_t now_ns);

  void EnterStall(uint64_t now_ns);
  void LeaveStall(uint64_t now_ns);
  bool stalling() const { return stall_since_ns_ != 0; }
  double StalledSeconds(uint64_t now_ns) const;

  // A look at the device's I/O (and its state: `reattaching` starts or ends a stall).
  void Observe(const IoStatsSnapshot& io, bool reattaching, uint64_t now_ns);

  // Requests answered with an error since about kErrorWindowNs ago.
  uint64_t RecentErrors(uint64_t errors_total, uint64_t now_ns) const;

  // The control path's last failure (a reattach try), Unix seconds.
  void SetControlError(std::string message, uint64_t unix_s);

  // The health object. `state` is the device's state as status reports it.
  api::DeviceHealth Health(api::DeviceState state, const IoStatsSnapshot& io, uint64_t now_ns) const;

 private:
  struct Sample {
    uint64_t t_ns;
    uint64_t errors;
  };
  std::deque<Sample> window_;       // oldest first; the first one is the baseline
  uint64_t stall_since_ns_ = 0;     // 0: not stalled
  uint64_t stalled_total_ns_ = 0;   // finished stalls
  uint64_t progress_ns_ = 0;        // last look with nothing in flight (or creation)
  std::string control_error_;
  uint64_t control_error_unix_ = 0;
};

// "EIO (Input/output error)": how a request error reads in last_error.
std::string IoErrorMessage(int err);

}  // namespace rbdnbd
