#include "control/daemon_metrics.h"

#include <cstring>

#include "api/messages.h"
#include "metrics/errno_label.h"
#include "metrics/exposition.h"
#include "metrics/process_info.h"

namespace rbdnbd {

void ControlCalls::Record(std::string_view op, int err) {
  std::string result = err == 0 ? std::string("ok") : metrics::ErrnoLabel(err);
  std::lock_guard lock(mu_);
  calls_[{std::string(op), std::move(result)}]++;
}

std::map<std::pair<std::string, std::string>, uint64_t> ControlCalls::Snapshot() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::string RenderDaemonMetrics(const DaemonMetricsInput& in) {
  using metrics::Type;
  metrics::TextWriter w;
  metrics::WriteProcessFamilies(w, in.version, in.compiler, in.uptime_seconds);

  w.Family("rbdnbd_devices", "Mapped devices by state.", Type::kGauge);
  for (auto state : {api::DeviceState::kMapped, api::DeviceState::kReattaching, api::DeviceState::kUnmapping}) {
    w.Sample({{"state", api::DeviceStateName(state)}},
             in.manager.devices_by_state[static_cast<size_t>(state)]);
  }
  w.Family("rbdnbd_cluster_connections", "Pooled cluster connections by state.", Type::kGauge);
  w.Sample({{"state", "connected"}}, in.manager.clusters_connected);
  w.Sample({{"state", "idle"}}, in.manager.clusters_idle);

  w.Family("rbdnbd_control_requests_total", "Control-API calls by op and result (ok, or the errno name).",
           Type::kCounter);
  for (const auto& [key, n] : in.control_calls) w.Sample({{"op", key.first}, {"result", key.second}}, n);

  WriteDeviceFamilies(w, in.manager.devices);
  if (in.manager.devices.empty()) {
    // WriteDeviceFamilies writes the daemon-only families only for devices
    // that carry daemon values: with none, the families still exist (empty).
    w.Family("rbdnbd_device_configured_connections", "Connections the device was mapped with.", Type::kGauge);
    w.Family("rbdnbd_device_reattaches_total", "Reattaches completed.", Type::kCounter);
    w.Family("rbdnbd_device_stalled_seconds_total", "Seconds spent waiting for a reattach.", Type::kCounter);
  }
  return w.Take();
}

}  // namespace rbdnbd
