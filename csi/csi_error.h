// CSI error codes on the control path, and their one conversion to gRPC.
//
// Contract: the plugin's modules return Result<T> whose Error.code is an errno
// value; the codes below are the ones that mean a specific CSI status. The
// gRPC services call ToGrpcStatus() at the boundary and nowhere else. Pure,
// any thread.
//
//   errno          gRPC status            used for
//   EINVAL/ERANGE  INVALID_ARGUMENT       a missing or bad field, context key or secret
//   ENOENT         NOT_FOUND              unknown volume (no metadata), missing path, no image
//   EEXIST         ALREADY_EXISTS         staged/published before with other options
//   EINPROGRESS    ABORTED                another operation on the volume is in flight
//   EPERM/EBUSY    FAILED_PRECONDITION    not staged, partition table, blank read-only, busy
//   EHOSTDOWN      UNAVAILABLE            the rbd-nbdd daemon cannot be reached
//   ETIMEDOUT      DEADLINE_EXCEEDED      waited too long (resize, daemon)
//   EACCES         PERMISSION_DENIED      cephx refused the user
//   ENOSPC         RESOURCE_EXHAUSTED
//   anything else  INTERNAL
#pragma once

#include <cerrno>

#include <grpcpp/support/status.h>

#include "common/result.h"

namespace rbdnbd::csi {

inline constexpr int kInvalidArgument = EINVAL;
inline constexpr int kNotFound = ENOENT;
inline constexpr int kAlreadyExists = EEXIST;
inline constexpr int kAborted = EINPROGRESS;
inline constexpr int kFailedPrecondition = EPERM;
inline constexpr int kUnavailable = EHOSTDOWN;

grpc::StatusCode ToGrpcCode(int code);
const char* StatusCodeName(grpc::StatusCode code);  // "INVALID_ARGUMENT", for logs
grpc::Status ToGrpcStatus(const Error& error);

// For the boundary: OK, or the error converted.
template <typename T>
grpc::Status ToGrpcStatus(const Result<T>& r) {
  return r ? grpc::Status::OK : ToGrpcStatus(r.error());
}

}  // namespace rbdnbd::csi
