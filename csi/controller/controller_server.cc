#include "csi/controller/controller_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "csi/plugin_server.h"

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

  // A socket left by an earlier instance would make bind() fail.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(s->socket_path_).parent_path(), ec);
  struct stat st{};
  if (::lstat(s->socket_path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Err(EEXIST, "{} exists and is not a socket", s->socket_path_);
    ::unlink(s->socket_path_.c_str());
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("unix://" + s->socket_path_, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(s->identity_.get());
  builder.RegisterService(s->controller_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_) return Err(EADDRNOTAVAIL, "cannot listen on {}", options.endpoint);
  ::chmod(s->socket_path_.c_str(), 0660);
  spdlog::info("rbd-nbdd-csi-controller {} serving {} as {} (cluster config {}, max clone depth {})", RBDNBD_VERSION,
               options.endpoint, options.driver_name, options.controller.cluster_config,
               options.controller.max_clone_depth);
  return s;
}

void ControllerServer::Shutdown(std::chrono::milliseconds grace) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
  ::unlink(socket_path_.c_str());
}

ControllerServer::~ControllerServer() { Shutdown(std::chrono::milliseconds(0)); }

}  // namespace rbdnbd::csi
