#include "csi/metrics_server.h"

#include <chrono>

#include "metrics/exposition.h"
#include "metrics/process_info.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace rbdnbd::csi {

namespace {

// Taken while the program loads (static initialisation, before main), which
// is as close to the process's start as the uptime gauge needs.
const std::chrono::steady_clock::time_point kProcessStart = std::chrono::steady_clock::now();

}  // namespace

std::string RenderCsiMetrics(const RpcMetrics& rpcs) {
  static const std::string compiler = metrics::CompilerLabel();
  metrics::TextWriter w;
  metrics::WriteProcessFamilies(
      w, RBDNBD_VERSION, compiler,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - kProcessStart).count());
  rpcs.Write(w);
  return w.Take();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address, const RpcMetrics* rpcs) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->endpoint_.Handle("/metrics", [rpcs] {
    metrics::HttpResponse r;
    r.body = RenderCsiMetrics(*rpcs);
    return r;
  });
  s->endpoint_.Handle("/healthz", [] {
    metrics::HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "ok\n";
    return r;
  });
  // HttpEndpoint's errors name the address and what is wrong with it.
  if (auto started = s->endpoint_.Start(address); !started) return Unexpected(started.error());
  return s;
}

}  // namespace rbdnbd::csi
