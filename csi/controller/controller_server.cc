#include "csi/controller/controller_server.h"

#include <cerrno>

#include <spdlog/spdlog.h>

#include "csi/grpc_endpoint.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace rbdnbd::csi {

Result<std::unique_ptr<ControllerServer>> ControllerServer::Start(const ControllerServerOptions& options,
                                                                  std::unique_ptr<CephStore> store) {
  if (!IsValidDriverName(options.driver_name)) {
    return Err(EINVAL, "driver name '{}' is not a valid CSI plugin name (domain style, at most 63 characters)",
               options.driver_name);
  }
  if (!store) return Err(EINVAL, "no Ceph store");
  auto socket_path = EndpointSocketPath(options.endpoint);
  if (!socket_path) return Unexpected(socket_path.error());

  std::unique_ptr<ControllerServer> s(new ControllerServer());
  s->socket_path_ = *socket_path;
  s->store_ = std::move(store);
  s->ops_ = std::make_unique<ControllerOps>(s->store_.get(), options.controller);
  IdentityOptions identity;
  identity.driver_name = options.driver_name;
  identity.version = RBDNBD_VERSION;
  identity.controller_service = true;
  s->identity_ = std::make_unique<IdentityService>(identity, nullptr);
  s->controller_ = std::make_unique<ControllerService>(s->ops_.get());

  s->rpcs_ = std::make_unique<RpcMetrics>(std::initializer_list<const char*>{
      ::csi::v1::Identity::service_full_name(), ::csi::v1::Controller::service_full_name()});
  if (!options.metrics_address.empty()) {
    auto metrics = MetricsServer::Start(options.metrics_address, s->rpcs_.get());
    if (!metrics) return Unexpected(metrics.error());
    s->metrics_ = std::move(metrics).value();
  }
  auto server = ServeOnUnixSocket(s->socket_path_, options.endpoint, {s->identity_.get(), s->controller_.get()},
                                  s->rpcs_.get());
  if (!server) return Unexpected(server.error());
  s->server_ = std::move(server).value();
  spdlog::info("rbd-nbdd-csi-controller {} serving {} as {} (cluster config {}, max clone depth {}, metrics {})",
               RBDNBD_VERSION, options.endpoint, options.driver_name, options.controller.cluster_config,
               options.controller.max_clone_depth,
               s->metrics_ ? fmt::format("on {} (port {})", options.metrics_address, s->metrics_->port()) : "off");
  return s;
}

void ControllerServer::Shutdown(std::chrono::milliseconds grace) {
  StopServing(server_, socket_path_, grace);
  if (metrics_) metrics_->Stop();
}

ControllerServer::~ControllerServer() { Shutdown(std::chrono::milliseconds(0)); }

}  // namespace rbdnbd::csi
