// PluginServer: owns everything the plugin runs (state store, locks, host
// helpers, daemon client, the two gRPC services) and the gRPC server on a
// Unix socket.
//
// Contract
// * Start() creates the state directory, replaces a stale socket file at
//   the endpoint, and returns once the server listens (the socket exists);
//   every failure is a Result error naming the cause.
// * gRPC's sync server runs each RPC on one of its threads; the services are
//   safe for that (VolumeLocks serialise per volume).
// * Shutdown() stops accepting, lets RPCs in flight finish (bounded) and
//   returns; devices and mounts are left as they are. Called once, from the
//   thread that called Start() (main's signal loop, or a test).
// * `deps` may replace host helpers (tests); null members get the real ones.
// * Every RPC is counted in rpc_metrics() (rpc_metrics.h). With a
//   `metrics_address`, Start() first serves /metrics and /healthz there
//   (metrics_server.h; a bad address or a port in use fails the start), and
//   Shutdown() stops that endpoint after the gRPC server.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "api/socket.h"
#include "common/result.h"
#include "csi/device_type.h"
#include "csi/grpc_endpoint.h"
#include "csi/identity_service.h"
#include "csi/metrics_server.h"
#include "csi/node_service.h"
#include "csi/rpc_metrics.h"

namespace rbdnbd::csi {

struct PluginOptions {
  std::string endpoint = "unix:///csi/csi.sock";
  std::string node_id;
  std::string driver_name = "rbd-nbdd.csi.ceph.io";
  std::string control_socket = api::kDefaultControlSocket;
  std::string state_dir = "/var/lib/rbd-nbdd-csi";
  std::string cluster_config = "/etc/rbd-nbdd-csi/config.json";
  int64_t max_volumes_per_node = 0;
  std::string nbd_module_path = "/sys/module/nbd";
  std::chrono::milliseconds resize_wait{30000};
  std::string metrics_address;  // empty: no /metrics endpoint
};

struct PluginDeps {
  std::unique_ptr<Mounter> mounter;
  std::unique_ptr<FsTools> fs;
  std::unique_ptr<BlockDevices> devices;
  std::unique_ptr<DaemonClient> daemon;
  std::unique_ptr<UblkProbe> ublk;  // null: the kernel's (/dev/ublk-control)
};

class PluginServer {
 public:
  static Result<std::unique_ptr<PluginServer>> Start(const PluginOptions& options, PluginDeps deps = {});
  ~PluginServer();

  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));
  const std::string& socket_path() const { return socket_path_; }
  const RpcMetrics& rpc_metrics() const { return *rpcs_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }  // 0: no endpoint

 private:
  PluginServer() = default;

  std::string socket_path_;
  std::unique_ptr<VolumeStore> store_;
  VolumeLocks locks_;
  PluginDeps deps_;
  std::unique_ptr<IdentityService> identity_;
  std::unique_ptr<NodeService> node_;
  std::unique_ptr<RpcMetrics> rpcs_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace rbdnbd::csi
