#include "csi/csi_error.h"

namespace rbdnbd::csi {

grpc::StatusCode ToGrpcCode(int code) {
  switch (code) {
    case 0: return grpc::StatusCode::OK;
    case EINVAL:
    case ERANGE: return grpc::StatusCode::INVALID_ARGUMENT;
    case ENOENT: return grpc::StatusCode::NOT_FOUND;
    case EEXIST: return grpc::StatusCode::ALREADY_EXISTS;
    case EINPROGRESS: return grpc::StatusCode::ABORTED;
    case EPERM:
    case EBUSY: return grpc::StatusCode::FAILED_PRECONDITION;
    case EHOSTDOWN:
    case ECONNREFUSED: return grpc::StatusCode::UNAVAILABLE;
    case ETIMEDOUT: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case EACCES: return grpc::StatusCode::PERMISSION_DENIED;
    case ENOSPC: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    default: return grpc::StatusCode::INTERNAL;
  }
}

grpc::Status ToGrpcStatus(const Error& error) {
  if (error.code == 0) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(error.code), error.message);
}

}  // namespace rbdnbd::csi
