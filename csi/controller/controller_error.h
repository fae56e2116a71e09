// The controller's errors at its gRPC boundary (csi_error.h has the shared
// codes and the errno table; this adds what only the controller says).
//
// Contract (pure, any thread):
// * The controller's logic returns plugin codes (csi_error.h, plus
//   kOutOfRange here) for what it decides, and passes a CephStore errno
//   through unchanged for what Ceph said.
// * ToControllerStatus() is the one conversion to grpc::Status, called by
//   ControllerService only. EACCES/EPERM become PERMISSION_DENIED with "check
//   the <secret> secret's userID and userKey", naming the secret that call
//   takes (provisioner, controller-expand, snapshotter); every other code goes
//   through csi_error.h's ToGrpcStatus() (ETIMEDOUT -> DEADLINE_EXCEEDED,
//   EBUSY -> FAILED_PRECONDITION, unknown -> INTERNAL, ...).
// * PoolError(): an ENOENT from the first call on a session that needs the
//   pool (the journal) means the pool or namespace does not exist: that is
//   the StorageClass's or the id's fault, INVALID_ARGUMENT naming both.
#pragma once

#include <string_view>

#include <grpcpp/support/status.h>

#include "common/result.h"
#include "csi/controller/ceph_store.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

inline constexpr int kOutOfRange = CsiCode(grpc::StatusCode::OUT_OF_RANGE);

grpc::Status ToControllerStatus(const Error& error, std::string_view secret);

Error PoolError(const Error& error, const CephTarget& target);

}  // namespace rbdnbd::csi
