// The families every process of the project serves: rbdnbd_build_info,
// rbdnbd_uptime_seconds and rbdnbd_metrics_render_seconds (gateway/metrics/METRICS.md).
//
// Contract: any thread (the scraping one). NoteMetricsRender() stores one relaxed atomic;
// everything else is pure.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "metrics/exposition.h"

namespace rbdnbd::metrics {

// "gcc 12.2.0" / "clang 14.0.6": the compiler label of rbdnbd_build_info.
std::string CompilerLabel();

// rbdnbd_build_info{version,compiler} 1, rbdnbd_uptime_seconds, then
// rbdnbd_metrics_render_seconds (the last NoteMetricsRender() of this process; 0 before one).
void WriteProcessFamilies(TextWriter& w, std::string_view version, std::string_view compiler,
                          double uptime_seconds);

// Called by HttpEndpoint after each GET /metrics handler: how long it took to collect and
// render the answer. Process-wide (a process serves one /metrics); any thread.
void NoteMetricsRender(std::chrono::nanoseconds took);

}  // namespace rbdnbd::metrics
