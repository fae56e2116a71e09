#include "csi/plugin_server.h"

#include <cerrno>

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"
#include "csi/ublk_probe.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace rbdnbd::csi {

Result<std::unique_ptr<PluginServer>> PluginServer::Start(const PluginOptions& options, PluginDeps deps) {
  if (!IsValidDriverName(options.driver_name)) {
    return Err(EINVAL, "driver name '{}' is not a valid CSI plugin name (domain style, at most 63 characters)",
               options.driver_name);
  }
  if (options.node_id.empty()) return Err(EINVAL, "the node id must not be empty");
  auto socket_path = EndpointSocketPath(options.endpoint);
  if (!socket_path) return Unexpected(socket_path.error());
  auto store = VolumeStore::Create(options.state_dir);
  if (!store) return Unexpected(store.error());

  std::unique_ptr<PluginServer> s(new PluginServer());
  s->socket_path_ = *socket_path;
  s->store_ = std::make_unique<VolumeStore>(std::move(store).value());
  s->deps_ = std::move(deps);
  if (!s->deps_.mounter) s->deps_.mounter = MakeSystemMounter();
  if (!s->deps_.fs) s->deps_.fs = MakeSystemFsTools();
  if (!s->deps_.devices) s->deps_.devices = MakeSystemBlockDevices();
  if (!s->deps_.daemon) s->deps_.daemon = MakeDaemonClient(options.control_socket);
  if (!s->deps_.ublk) s->deps_.ublk = MakeKernelUblkProbe();
  // The one place the daemon's errnos become the plugin's codes (csi_error.h).
  s->deps_.daemon = WithCsiCodes(std::move(s->deps_.daemon));

  NodeContext ctx;
  ctx.store = s->store_.get();
  ctx.locks = &s->locks_;
  ctx.mounter = s->deps_.mounter.get();
  ctx.fs = s->deps_.fs.get();
  ctx.devices = s->deps_.devices.get();
  ctx.daemon = s->deps_.daemon.get();
  ctx.ublk = s->deps_.ublk.get();
  ctx.cluster_config_path = options.cluster_config;
  ctx.resize_wait = options.resize_wait;
  s->identity_ = std::make_unique<IdentityService>(
      IdentityOptions{options.driver_name, RBDNBD_VERSION, options.nbd_module_path}, ctx.daemon, ctx.ublk);
  s->node_ = std::make_unique<NodeService>(NodeOptions{options.node_id, options.max_volumes_per_node}, ctx);

  s->rpcs_ = std::make_unique<RpcMetrics>(
      std::initializer_list<const char*>{::csi::v1::Identity::service_full_name(), ::csi::v1::Node::service_full_name()});
  if (!options.metrics_address.empty()) {
    auto metrics = MetricsServer::Start(options.metrics_address, s->rpcs_.get());
    if (!metrics) return Unexpected(metrics.error());
    s->metrics_ = std::move(metrics).value();
  }
  auto server = ServeOnUnixSocket(s->socket_path_, options.endpoint, {s->identity_.get(), s->node_.get()},
                                  s->rpcs_.get());
  if (!server) return Unexpected(server.error());
  s->server_ = std::move(server).value();
  spdlog::info("{}", DescribeUblkSupport(s->deps_.ublk->Probe()));
  spdlog::info("rbd-nbdd-csi {} serving {} as {} on node {} (daemon {}, state {}, metrics {})", RBDNBD_VERSION,
               options.endpoint, options.driver_name, options.node_id, options.control_socket, options.state_dir,
               s->metrics_ ? fmt::format("on {} (port {})", options.metrics_address, s->metrics_->port()) : "off");
  return s;
}

void PluginServer::Shutdown(std::chrono::milliseconds grace) {
  StopServing(server_, socket_path_, grace);
  if (metrics_) metrics_->Stop();
}

PluginServer::~PluginServer() { Shutdown(std::chrono::milliseconds(0)); }

}  // namespace rbdnbd::csi
