// RpcMetrics: what each CSI binary counts about its gRPC calls, for /metrics
// (gateway/metrics/METRICS.md, "CSI plugins"): rbdnbd_csi_rpcs_total{method,code}
// and rbdnbd_csi_rpc_duration_seconds{method}.
//
// Contract
// * The set of methods is fixed at construction: every method of the services
//   named (full names, "csi.v1.Node", looked up in the generated protobuf
//   descriptors; a name not found there is asserted against), so a label value is always one of the
//   program's own method names, never something a caller sent. An RPC to a
//   method outside that set is not counted.
// * Every RPC of a counted method is recorded once, when its final status is
//   sent: by method and gRPC code, and its duration from the moment gRPC
//   matched the call to that moment. MakeInterceptorFactory() gives the gRPC
//   server interceptor that does so; Record() is the same entry point for
//   tests and for callers outside gRPC.
// * Threads: Record() on any thread (gRPC's threads, concurrently). RPCs are
//   not the data path: each method's cells have one small mutex, held only for
//   the few stores of one record, so each cell still has one writer at a time
//   (stat_cells.h). Write() and Count() on any thread (the /metrics scrape),
//   without the mutex: relaxed loads, as stat_cells.h allows.
// * The object must outlive the gRPC server whose interceptor it made.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include "metrics/exposition.h"
#include "metrics/stat_cells.h"

namespace rbdnbd::csi {

class RpcMetrics {
 public:
  // The codes 0 (OK) .. 16 (UNAUTHENTICATED); anything else counts as UNKNOWN.
  static constexpr size_t kCodes = 17;

  explicit RpcMetrics(std::initializer_list<const char*> services);
  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // `method`: the gRPC path ("/csi.v1.Node/NodeStageVolume", matched whole) or
  // the bare name ("NodeStageVolume"). False (nothing recorded) for a method not
  // counted.
  bool Record(std::string_view method, grpc::StatusCode code, std::chrono::nanoseconds elapsed);

  // Both families. Every counted method has a histogram and an OK series (zero
  // until its first call, so that rate() sees the first one); the other codes
  // appear once they have happened.
  void Write(metrics::TextWriter& w) const;

  // For tests: calls of `method` (bare name) answered with `code`.
  uint64_t Count(std::string_view method, grpc::StatusCode code) const;
  metrics::HistogramSnapshot Latency(std::string_view method) const;

  // The interceptor factory to hand to grpc::ServerBuilder (one per server).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeInterceptorFactory();

 private:
  struct MethodCells {
    std::mutex mu;  // writers only
    std::array<metrics::Counter, kCodes> codes;
    metrics::LatencyHistogram latency;
  };
  const MethodCells* Find(std::string_view method) const;
  MethodCells* Find(std::string_view method);

  // Built once in the constructor, never changed, so lookups from any thread
  // need no lock. methods_: bare name (the label) -> cells; paths_: the gRPC
  // path of the same method -> its cells.
  std::map<std::string, std::unique_ptr<MethodCells>, std::less<>> methods_;
  std::map<std::string, MethodCells*, std::less<>> paths_;
};

}  // namespace rbdnbd::csi
