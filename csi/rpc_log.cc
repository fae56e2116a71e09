#include "csi/rpc_log.h"

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

RpcLog::RpcLog(const char* rpc, std::string subject)
    : rpc_(rpc), subject_(std::move(subject)), start_(std::chrono::steady_clock::now()) {}

grpc::Status RpcLog::Done(grpc::Status status) const {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
  if (status.ok()) {
    spdlog::info("{} {}: OK ({} ms)", rpc_, subject_, ms);
  } else {
    spdlog::warn("{} {}: {}: {} ({} ms)", rpc_, subject_, StatusCodeName(status.error_code()), status.error_message(),
                 ms);
  }
  return status;
}

grpc::Status MissingField(const char* field) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(field) + " is required");
}

StringMap ToStringMap(const google::protobuf::Map<std::string, std::string>& m) {
  return StringMap(m.begin(), m.end());
}

}  // namespace rbdnbd::csi
