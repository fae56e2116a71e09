#include "csi/rpc_metrics.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/interceptor.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

namespace gx = grpc::experimental;

size_t CodeIndex(grpc::StatusCode code) {
  auto i = static_cast<size_t>(code);
  return i < RpcMetrics::kCodes ? i : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
}

// One per RPC: gRPC creates it when the call is matched to its method and
// destroys it when the call is done; PRE_SEND_STATUS carries the final code.
class RpcInterceptor final : public gx::Interceptor {
 public:
  RpcInterceptor(RpcMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(gx::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->Record(method_, methods->GetSendStatus().error_code(), std::chrono::steady_clock::now() - start_);
    }
    methods->Proceed();
  }

 private:
  RpcMetrics* metrics_;
  const char* method_;  // gRPC's, valid for the call's lifetime
  std::chrono::steady_clock::time_point start_;
};

class RpcInterceptorFactory final : public gx::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  gx::Interceptor* CreateServerInterceptor(gx::ServerRpcInfo* info) override {
    // gRPC owns (and deletes) what this returns.
    return new RpcInterceptor(metrics_, info->method());
  }

 private:
  RpcMetrics* metrics_;
};

}  // namespace

RpcMetrics::RpcMetrics(std::initializer_list<const char*> services) {
  for (const char* name : services) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    assert(service != nullptr);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string& bare = service->method(i)->name();
      auto [it, added] = methods_.try_emplace(bare, std::make_unique<MethodCells>());
      paths_.try_emplace("/" + service->full_name() + "/" + bare, it->second.get());
    }
  }
}

const RpcMetrics::MethodCells* RpcMetrics::Find(std::string_view method) const {
  if (method.starts_with('/')) {
    auto it = paths_.find(method);
    return it == paths_.end() ? nullptr : it->second;
  }
  auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : it->second.get();
}

RpcMetrics::MethodCells* RpcMetrics::Find(std::string_view method) {
  return const_cast<MethodCells*>(std::as_const(*this).Find(method));
}

bool RpcMetrics::Record(std::string_view method, grpc::StatusCode code, std::chrono::nanoseconds elapsed) {
  MethodCells* cells = Find(method);
  if (cells == nullptr) return false;
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(elapsed.count(), 0));
  std::lock_guard lock(cells->mu);
  cells->codes[CodeIndex(code)].Add();
  cells->latency.Observe(ns);
  return true;
}

uint64_t RpcMetrics::Count(std::string_view method, grpc::StatusCode code) const {
  const MethodCells* cells = Find(method);
  return cells == nullptr ? 0 : cells->codes[CodeIndex(code)].Value();
}

metrics::HistogramSnapshot RpcMetrics::Latency(std::string_view method) const {
  const MethodCells* cells = Find(method);
  return cells == nullptr ? metrics::HistogramSnapshot{} : cells->latency.Snapshot();
}

void RpcMetrics::Write(metrics::TextWriter& w) const {
  w.Family("rbdnbd_csi_rpcs_total", "CSI RPCs finished, by method and gRPC code.", metrics::Type::kCounter);
  for (const auto& [method, cells] : methods_) {
    for (size_t i = 0; i < kCodes; ++i) {
      const uint64_t n = cells->codes[i].Value();
      if (n == 0 && i != static_cast<size_t>(grpc::StatusCode::OK)) continue;
      w.Sample({{"method", method}, {"code", StatusCodeName(static_cast<grpc::StatusCode>(i))}}, n);
    }
  }
  w.Family("rbdnbd_csi_rpc_duration_seconds", "CSI RPC latency, from the call's arrival to its status.",
           metrics::Type::kHistogram);
  for (const auto& [method, cells] : methods_) w.Histogram({{"method", method}}, cells->latency.Snapshot());
}

std::unique_ptr<gx::ServerInterceptorFactoryInterface> RpcMetrics::MakeInterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

}  // namespace rbdnbd::csi
