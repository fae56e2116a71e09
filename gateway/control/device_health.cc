#include "control/device_health.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace rbdnbd {

DeviceVitals::DeviceVitals(uint64_t now_ns) : progress_ns_(now_ns) { window_.push_back({now_ns, 0}); }

void DeviceVitals::EnterStall(uint64_t now_ns) {
  if (stall_since_ns_ == 0) stall_since_ns_ = now_ns == 0 ? 1 : now_ns;
}

void DeviceVitals::LeaveStall(uint64_t now_ns) {
  if (stall_since_ns_ == 0) return;
  if (now_ns > stall_since_ns_) stalled_total_ns_ += now_ns - stall_since_ns_;
  stall_since_ns_ = 0;
  progress_ns_ = now_ns;  // served again: the no-progress clock restarts
}

double DeviceVitals::StalledSeconds(uint64_t now_ns) const {
  uint64_t ns = stalled_total_ns_;
  if (stall_since_ns_ != 0 && now_ns > stall_since_ns_) ns += now_ns - stall_since_ns_;
  return static_cast<double>(ns) / kSecondNs;
}

void DeviceVitals::Observe(const IoStatsSnapshot& io, bool reattaching, uint64_t now_ns) {
  if (reattaching) {
    EnterStall(now_ns);
  } else {
    LeaveStall(now_ns);
  }
  if (io.inflight <= 0) progress_ns_ = std::max(progress_ns_, now_ns);
  // One sample a second is plenty for a 60 s window; keep the newest sample
  // that is at least a window old as the baseline, drop the older ones.
  const uint64_t errors = io.errors_total();
  if (now_ns >= window_.back().t_ns + kSecondNs) window_.push_back({now_ns, errors});
  while (window_.size() > 1 && now_ns >= kErrorWindowNs && window_[1].t_ns <= now_ns - kErrorWindowNs) {
    window_.pop_front();
  }
}

uint64_t DeviceVitals::RecentErrors(uint64_t errors_total, uint64_t now_ns) const {
  // The newest sample at least a window old; without one (a young device),
  // the first sample, taken when the device appeared.
  uint64_t base = window_.front().errors;
  for (const Sample& s : window_) {
    if (now_ns >= kErrorWindowNs && s.t_ns <= now_ns - kErrorWindowNs) base = s.errors;
  }
  return errors_total > base ? errors_total - base : 0;
}

void DeviceVitals::SetControlError(std::string message, uint64_t unix_s) {
  control_error_ = std::move(message);
  control_error_unix_ = unix_s;
}

api::DeviceHealth DeviceVitals::Health(api::DeviceState state, const IoStatsSnapshot& io, uint64_t now_ns) const {
  api::DeviceHealth h;
  h.state = state;
  // The later of the two failures: a reattach try, or a request's error reply.
  h.last_error = control_error_;
  h.last_error_time = control_error_unix_;
  if (io.last_error != 0 && io.last_error_ns != 0) {
    auto io_unix = static_cast<uint64_t>(IoStatsSnapshot::ToUnixSeconds(io.last_error_ns));
    if (io_unix >= h.last_error_time) {
      h.last_error = "request answered with " + IoErrorMessage(io.last_error);
      h.last_error_time = io_unix;
    }
  }
  if (io.last_completion_ns != 0) {
    h.seconds_since_last_io =
        now_ns > io.last_completion_ns ? static_cast<int64_t>((now_ns - io.last_completion_ns) / kSecondNs) : 0;
  }
  h.inflight = io.inflight > 0 ? static_cast<uint64_t>(io.inflight) : 0;
  h.recent_errors = RecentErrors(io.errors_total(), now_ns);
  uint64_t progress = std::max(progress_ns_, io.last_completion_ns);
  bool no_progress = h.inflight > 0 && now_ns >= progress + kStallAfterNs;
  h.stalled = state == api::DeviceState::kReattaching || no_progress;
  return h;
}

std::string IoErrorMessage(int err) {
  const char* name = strerrorname_np(err);
  std::string label = name != nullptr ? std::string(name) : fmt::format("errno {}", err);
  return fmt::format("{} ({})", label, std::strerror(err));
}

}  // namespace rbdnbd
