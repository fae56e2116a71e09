// The two families every process of the project serves: rbdnbd_build_info and
// rbdnbd_uptime_seconds (gateway/metrics/METRICS.md).
//
// Contract: pure, any thread (the scraping one).
#pragma once

#include <string>
#include <string_view>

#include "metrics/exposition.h"

namespace rbdnbd::metrics {

// "gcc 12.2.0" / "clang 14.0.6": the compiler label of rbdnbd_build_info.
std::string CompilerLabel();

// rbdnbd_build_info{version,compiler} 1, then rbdnbd_uptime_seconds.
void WriteProcessFamilies(TextWriter& w, std::string_view version, std::string_view compiler,
                          double uptime_seconds);

}  // namespace rbdnbd::metrics
