#include "csi/controller/controller_error.h"

#include <fmt/format.h>

namespace rbdnbd::csi {

grpc::Status ToControllerStatus(const Error& error, std::string_view secret) {
  if (error.code == EACCES || error.code == EPERM) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        fmt::format("{}: check the {} secret's userID and userKey (and that user's caps on the pool)",
                                    error.message, secret));
  }
  return ToGrpcStatus(error);
}

Error PoolError(const Error& error, const CephTarget& target) {
  if (error.code != ENOENT) return error;
  // The store's message names the pool already ("pool 'x' does not exist"):
  // only the code changes then.
  if (error.message.find("'" + target.pool + "'") != std::string::npos) return Error{kInvalidArgument, error.message};
  if (target.ns.empty()) {
    return Error{kInvalidArgument, fmt::format("pool '{}' does not exist: {}", target.pool, error.message)};
  }
  return Error{kInvalidArgument, fmt::format("pool '{}' or its RADOS namespace '{}' does not exist: {}", target.pool,
                                             target.ns, error.message)};
}

}  // namespace rbdnbd::csi
