// MetricsServer: the /metrics and /healthz HTTP endpoint of a CSI binary
// (`--metrics-address ADDR`, off by default), on gateway/metrics' HttpEndpoint.
//
// Contract
// * Start() binds `address` (HttpEndpoint's forms: "127.0.0.1:9482", ":9483",
//   "[::1]:0") and returns once it listens; a bad address or a port in use is
//   an error naming it. /metrics serves, in the text format 0.0.4,
//   rbdnbd_build_info{version,compiler}, rbdnbd_uptime_seconds,
//   rbdnbd_metrics_render_seconds and the RPC
//   families of `rpcs` (gateway/metrics/METRICS.md, "CSI plugins"). /healthz
//   answers "ok": the process is up and its endpoint thread answers (the
//   CSI livenessprobe sidecar probes the gRPC side).
// * Handlers run on the endpoint's own thread and read `rpcs` the way
//   rpc_metrics.h allows; `rpcs` must outlive the server.
// * Stop() or the destructor (the thread that called Start) joins the thread.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "csi/rpc_metrics.h"
#include "metrics/http_endpoint.h"

namespace rbdnbd::csi {

class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& address, const RpcMetrics* rpcs);
  ~MetricsServer() { Stop(); }

  void Stop() { endpoint_.Stop(); }
  int port() const { return endpoint_.port(); }

 private:
  MetricsServer() = default;
  metrics::HttpEndpoint endpoint_;
};

// The whole /metrics body (what the handler serves), for tests.
std::string RenderCsiMetrics(const RpcMetrics& rpcs);

}  // namespace rbdnbd::csi
