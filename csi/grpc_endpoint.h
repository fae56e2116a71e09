// The gRPC server on a Unix socket that both CSI binaries run (PluginServer
// for the node plugin, ControllerServer for the controller).
//
// Contract
// * EndpointSocketPath() is pure: "unix:///abs/path" or "/abs/path" ->
//   "/abs/path"; anything else EINVAL.
// * ServeOnUnixSocket() creates the socket's directory, replaces a stale
//   socket file there (EEXIST when something other than a socket is in the
//   way), registers `services` (which must outlive the server) and returns
//   once the server listens, with the socket's mode 0660. EADDRNOTAVAIL
//   naming `endpoint` when gRPC cannot listen. With `rpcs`, every call to a
//   method it counts is recorded there (its interceptor, rpc_metrics.h);
//   `rpcs` must outlive the server.
// * StopServing() stops accepting, lets the calls in flight finish (bounded
//   by `grace`), destroys the server and removes the socket; a null server is
//   left alone. Called from the thread that started the server.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "common/result.h"
#include "csi/rpc_metrics.h"

namespace rbdnbd::csi {

Result<std::string> EndpointSocketPath(const std::string& endpoint);

Result<std::unique_ptr<grpc::Server>> ServeOnUnixSocket(const std::string& socket_path, const std::string& endpoint,
                                                        std::initializer_list<grpc::Service*> services,
                                                        RpcMetrics* rpcs = nullptr);

void StopServing(std::unique_ptr<grpc::Server>& server, const std::string& socket_path,
                 std::chrono::milliseconds grace);

}  // namespace rbdnbd::csi
