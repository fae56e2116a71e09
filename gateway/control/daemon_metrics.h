// The daemon's /metrics: the daemon-wide families of gateway/metrics/METRICS.md
// (build info, uptime, devices by state, cluster connections by state,
// control-API calls) and, through io_stats.h's WriteDeviceFamilies, the
// per-device ones.
//
// Contract
// --------
// * ControlCalls: thread-safe (a mutex; control-API calls are rare, never on
//   the data path). Record() is called once per answered call from the
//   client's thread.
// * RenderDaemonMetrics(): pure; the scraping thread (the HTTP endpoint's).
//   Every family is written even when empty of devices, and the state families
//   always carry every state (0 included), so a dashboard's query never sees
//   a series vanish.
// * The inputs come from DeviceManager::Metrics(), which holds the manager's
//   lock only to copy them (never across a network wait).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "device/io_stats.h"

namespace rbdnbd {

// What the DeviceManager reports for a scrape.
struct ManagerMetrics {
  std::vector<DeviceSample> devices;
  std::array<uint64_t, 3> devices_by_state{};  // index: api::DeviceState (mapped, reattaching, unmapping)
  uint64_t clusters_connected = 0;  // open and serving at least one device
  uint64_t clusters_idle = 0;       // open, no device served through it (a map or reattach in progress)
};

class ControlCalls {
 public:
  // `op`: the wire op name ("map", ...), or "invalid" for a request that did
  // not decode. `err`: 0, or the errno of the error reply.
  void Record(std::string_view op, int err);
  // (op, result) -> calls; result "ok" or an errno name ("ENOENT").
  std::map<std::pair<std::string, std::string>, uint64_t> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> calls_;
};

struct DaemonMetricsInput {
  std::string version;
  std::string compiler;
  double uptime_seconds = 0;
  ManagerMetrics manager;
  std::map<std::pair<std::string, std::string>, uint64_t> control_calls;
};

std::string RenderDaemonMetrics(const DaemonMetricsInput& in);

}  // namespace rbdnbd
