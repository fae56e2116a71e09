#include "csi/volume_condition.h"

#include <fmt/format.h>

#include <vector>

namespace rbdnbd::csi {

namespace {

// "5 s", "3 min", "2 h": how long ago, for a person.
std::string Ago(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return fmt::format("{} s", seconds);
  if (seconds < 7200) return fmt::format("{} min", seconds / 60);
  return fmt::format("{} h", seconds / 3600);
}

// The reasons a mapped device is not well, in the order a person should read them.
std::vector<std::string> DeviceProblems(const MappedDevice& d, int64_t now_unix) {
  std::vector<std::string> problems;
  const api::DeviceState state = d.health ? d.health->state : d.state;
  const std::string& last_error = d.health ? d.health->last_error : d.last_error;
  const uint64_t last_error_time = d.health ? d.health->last_error_time : d.last_error_unix;

  if (!d.kernel_connected) problems.push_back("the kernel no longer has the device");
  if (state == api::DeviceState::kReattaching) {
    problems.push_back(d.reattach_attempts > 0
                           ? fmt::format("waiting for a reattach (I/O is held; {} tries so far)", d.reattach_attempts)
                           : std::string("waiting for a reattach (I/O is held)"));
  } else if (state == api::DeviceState::kUnmapping) {
    problems.push_back("being unmapped");
  }
  if (d.health) {
    const api::DeviceHealth& h = *d.health;
    if (h.stalled && state != api::DeviceState::kReattaching) {
      problems.push_back(h.seconds_since_last_io >= 0
                             ? fmt::format("stalled: {} requests in flight, none completed for {}", h.inflight,
                                           Ago(h.seconds_since_last_io))
                             : fmt::format("stalled: {} requests in flight, none completed yet", h.inflight));
    }
    if (h.recent_errors > 0) problems.push_back(fmt::format("{} requests failed in the last 60 s", h.recent_errors));
  }
  if (!last_error.empty() && last_error_time > 0) {
    const int64_t age = now_unix - static_cast<int64_t>(last_error_time);
    if (age <= kRecentErrorWindow.count()) {
      problems.push_back(fmt::format("last error {} ago: {}", Ago(age), last_error));
    }
  }
  return problems;
}

std::string JoinProblems(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

}  // namespace

VolumeCondition EvaluateCondition(const VolumeRecord& record, const Result<DaemonStatus>& status, int64_t now_unix) {
  if (!status) return {true, "cannot ask the rbd-nbdd daemon how the device is: " + status.error().message};
  if (record.device.empty()) return {true, "the volume has no device: its stage has not finished"};
  const MappedDevice* device = nullptr;
  for (const MappedDevice& d : status->devices) {
    if (d.device == record.device) device = &d;
  }
  if (device == nullptr) {
    return {true, fmt::format("{} ({}) is no longer mapped by the rbd-nbdd daemon", record.device, record.spec)};
  }
  if (!record.spec.empty() && device->spec != record.spec) {
    return {true, fmt::format("{} now serves {}, not this volume's {}", record.device, device->spec, record.spec)};
  }
  auto problems = DeviceProblems(*device, now_unix);
  if (!problems.empty()) return {true, fmt::format("{} ({}): {}", record.device, record.spec, JoinProblems(problems))};
  if (device->health) {
    return {false, fmt::format("healthy: {} mapped, {} requests in flight", record.device, device->health->inflight)};
  }
  return {false, fmt::format("healthy: {} mapped", record.device)};
}

}  // namespace rbdnbd::csi
