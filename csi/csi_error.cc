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

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

grpc::Status ToGrpcStatus(const Error& error) {
  if (error.code == 0) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(error.code), error.message);
}

}  // namespace rbdnbd::csi
