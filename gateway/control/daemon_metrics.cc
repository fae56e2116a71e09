#include "control/daemon_metrics.h"

#include <cstring>

#include <fmt/format.h>

#include "api/messages.h"
#include "metrics/exposition.h"

namespace rbdnbd {

std::string ErrnoName(int err) {
  const char* name = err > 0 ? strerrorname_np(err) : nullptr;
  return name != nullptr ? name : "EUNKNOWN";
}

std::string CompilerName() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

void ControlCalls::Record(std::string_view op, int err) {
  std::string result = err == 0 ? std::string("ok") : ErrnoName(err);
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
  w.Family("rbdnbd_build_info", "Build of this rbd-nbdd (always 1).", Type::kGauge);
  w.Sample({{"version", in.version}, {"compiler", in.compiler}}, uint64_t{1});
  w.Family("rbdnbd_uptime_seconds", "Seconds since the daemon started.", Type::kGauge);
  w.Sample({}, in.uptime_seconds);

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
