#include "metrics/process_info.h"

#include <cstdint>

#include <fmt/format.h>

namespace rbdnbd::metrics {

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
}

}  // namespace rbdnbd::metrics
