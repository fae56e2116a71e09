// ControllerServer: owns what rbd-nbdd-csi-controller runs (the CephStore,
// ControllerOps, the Identity and Controller services) and the gRPC server on
// a Unix socket, as PluginServer does for the node plugin.
//
// Contract
// * Start() checks the driver name, replaces a stale socket file at the
//   endpoint and returns once the server listens; every failure is a Result
//   error naming the cause. It takes the store (the librbd one in main, a
//   fake in tests).
// * gRPC's sync server runs each RPC on one of its threads.
// * Shutdown() stops accepting, lets RPCs in flight finish (bounded by
//   `grace`), and removes the socket. Called once, from the thread that
//   called Start() (main's signal loop, or a test); the destructor calls it
//   with no grace when nobody did.
// * Every RPC is counted in rpc_metrics() (csi/rpc_metrics.h). With a
//   `metrics_address`, Start() first serves /metrics and /healthz there
//   (csi/metrics_server.h; a bad address or a port in use fails the start),
//   and Shutdown() stops that endpoint after the gRPC server.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "common/result.h"
#include "csi/controller/ceph_store.h"
#include "csi/controller/controller_ops.h"
#include "csi/controller/controller_service.h"
#include "csi/identity_service.h"
#include "csi/metrics_server.h"
#include "csi/rpc_metrics.h"

namespace rbdnbd::csi {

struct ControllerServerOptions {
  std::string endpoint = "unix:///csi/csi.sock";
  std::string driver_name = "rbd-nbdd.csi.ceph.io";
  ControllerOptions controller;
  std::string metrics_address;  // empty: no /metrics endpoint
};

class ControllerServer {
 public:
  static Result<std::unique_ptr<ControllerServer>> Start(const ControllerServerOptions& options,
                                                         std::unique_ptr<CephStore> store);
  ~ControllerServer();

  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));
  const std::string& socket_path() const { return socket_path_; }
  ControllerOps& ops() { return *ops_; }
  const RpcMetrics& rpc_metrics() const { return *rpcs_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }  // 0: no endpoint

 private:
  ControllerServer() = default;

  std::string socket_path_;
  std::unique_ptr<CephStore> store_;
  std::unique_ptr<ControllerOps> ops_;
  std::unique_ptr<IdentityService> identity_;
  std::unique_ptr<ControllerService> controller_;
  std::unique_ptr<RpcMetrics> rpcs_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace rbdnbd::csi
