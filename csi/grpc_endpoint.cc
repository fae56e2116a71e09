#include "csi/grpc_endpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

namespace rbdnbd::csi {

Result<std::string> EndpointSocketPath(const std::string& endpoint) {
  std::string path = endpoint;
  if (path.rfind("unix://", 0) == 0) path = path.substr(7);
  if (path.empty() || path[0] != '/') {
    return Err(EINVAL, "endpoint '{}' must be unix:///absolute/path or an absolute path", endpoint);
  }
  return path;
}

Result<std::unique_ptr<grpc::Server>> ServeOnUnixSocket(const std::string& socket_path, const std::string& endpoint,
                                                        std::initializer_list<grpc::Service*> services,
                                                        RpcMetrics* rpcs) {
  // A socket left by an earlier instance would make bind() fail.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(socket_path).parent_path(), ec);
  struct stat st{};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Err(EEXIST, "{} exists and is not a socket", socket_path);
    ::unlink(socket_path.c_str());
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("unix://" + socket_path, grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (rpcs != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(rpcs->MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Err(EADDRNOTAVAIL, "cannot listen on {}", endpoint);
  ::chmod(socket_path.c_str(), 0660);
  return server;
}

void StopServing(std::unique_ptr<grpc::Server>& server, const std::string& socket_path,
                 std::chrono::milliseconds grace) {
  if (!server) return;
  server->Shutdown(std::chrono::system_clock::now() + grace);
  server->Wait();
  server.reset();
  ::unlink(socket_path.c_str());
}

}  // namespace rbdnbd::csi
