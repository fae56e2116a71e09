#include "csi/csi_error.h"

#include <string_view>

namespace rbdnbd::csi {

namespace {

// The table of csi_error.h, row by row.
struct ErrnoRow {
  int errno_value;
  grpc::StatusCode code;
  std::string_view hint;  // appended to a daemon's message; empty: none
};

constexpr std::string_view kCephxHint =
    "check the node stage secret's userID and userKey (and that user's caps on the pool)";
constexpr std::string_view kPassphraseHint = "check the node stage secret 'encryptionPassphrase'";

constexpr ErrnoRow kErrnoTable[] = {
    {EINVAL, grpc::StatusCode::INVALID_ARGUMENT, ""},
    {ERANGE, grpc::StatusCode::INVALID_ARGUMENT, ""},
    {ENOENT, grpc::StatusCode::NOT_FOUND, ""},
    {EEXIST, grpc::StatusCode::ALREADY_EXISTS, ""},
    {EBUSY, grpc::StatusCode::FAILED_PRECONDITION, ""},
    {EACCES, grpc::StatusCode::PERMISSION_DENIED, kCephxHint},
    {EPERM, grpc::StatusCode::PERMISSION_DENIED, kCephxHint},
    {EKEYREJECTED, grpc::StatusCode::UNAUTHENTICATED, kPassphraseHint},
    {ETIMEDOUT, grpc::StatusCode::DEADLINE_EXCEEDED, ""},
    {EHOSTDOWN, grpc::StatusCode::UNAVAILABLE, ""},
    {ECONNREFUSED, grpc::StatusCode::UNAVAILABLE, ""},
    {ENOSPC, grpc::StatusCode::RESOURCE_EXHAUSTED, ""},
};

const ErrnoRow* FindRow(int errno_value) {
  for (const ErrnoRow& row : kErrnoTable) {
    if (row.errno_value == errno_value) return &row;
  }
  return nullptr;
}

}  // namespace

grpc::StatusCode ErrnoToGrpcCode(int errno_value) {
  const ErrnoRow* row = FindRow(errno_value);
  return row ? row->code : grpc::StatusCode::INTERNAL;
}

Error FromDaemonError(const Error& error) {
  if (error.code == 0 || IsCsiCode(error.code)) return error;
  const ErrnoRow* row = FindRow(error.code);
  if (row == nullptr) return Error{kInternal, error.message};
  if (row->hint.empty()) return Error{CsiCode(row->code), error.message};
  return Error{CsiCode(row->code), fmt::format("{}: {}", error.message, row->hint)};
}

grpc::StatusCode ToGrpcCode(int code) {
  if (code == 0) return grpc::StatusCode::OK;
  if (IsCsiCode(code)) return static_cast<grpc::StatusCode>(code - kCsiCodeBase);
  return ErrnoToGrpcCode(code);
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

namespace {

class CsiCodedDaemonClient final : public DaemonClient {
 public:
  explicit CsiCodedDaemonClient(std::unique_ptr<DaemonClient> inner) : inner_(std::move(inner)) {}

  Result<DaemonStatus> Status() override { return Convert(inner_->Status()); }
  Result<MapResult> Map(const VolumeParams& params, bool read_only) override {
    return Convert(inner_->Map(params, read_only));
  }
  Result<void> Unmap(const std::string& target) override { return Convert(inner_->Unmap(target)); }
  const std::string& socket_path() const override { return inner_->socket_path(); }

 private:
  template <typename T>
  static Result<T> Convert(Result<T> r) {
    if (r) return r;
    return Unexpected(FromDaemonError(r.error()));
  }

  std::unique_ptr<DaemonClient> inner_;
};

}  // namespace

std::unique_ptr<DaemonClient> WithCsiCodes(std::unique_ptr<DaemonClient> inner) {
  return std::make_unique<CsiCodedDaemonClient>(std::move(inner));
}

}  // namespace rbdnbd::csi
