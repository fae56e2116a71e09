#include "metrics/process_info.h"

#include <atomic>
#include <cstdint>

#include <fmt/format.h>

namespace rbdnbd::metrics {
namespace {

std::atomic<int64_t> last_render_ns{0};

}  // namespace

std::string CompilerLabel() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

void WriteProcessFamilies(TextWriter& w, std::string_view version, std::string_view compiler,
                          double uptime_seconds) {
  w.Family("rbdnbd_build_info", "Always 1; the labels name the build (version, compiler).", Type::kGauge);
  w.Sample({{"version", version}, {"compiler", compiler}}, uint64_t{1});
  w.Family("rbdnbd_uptime_seconds", "Seconds since the process started.", Type::kGauge);
  w.Sample({}, uptime_seconds);
  w.Family("rbdnbd_metrics_render_seconds",
           "Seconds the previous GET /metrics of this process took to collect and render its answer.",
           Type::kGauge);
  w.Sample({}, static_cast<double>(last_render_ns.load(std::memory_order_relaxed)) / 1e9);
}

void NoteMetricsRender(std::chrono::nanoseconds took) {
  last_render_ns.store(took.count(), std::memory_order_relaxed);
}

}  // namespace rbdnbd::metrics
