// CSI error codes on the control path, and their conversions to gRPC.
//
// Contract (pure, any thread):
// * The plugin's modules return Result<T>. An Error.code is either one of the
//   plugin's own codes below (kInvalidArgument, ...: a CSI status chosen on
//   purpose) or an errno (from a syscall, a tool, or the rbd-nbdd daemon).
//   The two cannot collide: plugin codes are kCsiCodeBase + grpc::StatusCode,
//   and kCsiCodeBase is far above every errno (Linux keeps them < 4096). So a
//   daemon's EPERM can no longer pass for the plugin's FAILED_PRECONDITION.
// * The daemon's errnos become plugin codes in ONE place: WithCsiCodes(), the
//   DaemonClient decorator PluginServer puts around the daemon client. It
//   applies ErrnoToGrpcCode() (the table below) and, for the credential rows,
//   adds to the message which secret to check. The node logic above it only
//   ever sees plugin codes from the daemon.
// * The gRPC services call ToGrpcStatus() at the boundary and nowhere else.
//   An errno that reaches it (the plugin's own syscalls) goes through the
//   same table.
//
//   errno          gRPC status            what the daemon (or a syscall) means by it
//   EINVAL/ERANGE  INVALID_ARGUMENT       a bad field or value in the request
//   ENOENT         NOT_FOUND              no such pool, image or snapshot; target not mapped
//   EEXIST         ALREADY_EXISTS         the spec is mapped already
//   EBUSY          FAILED_PRECONDITION    device in use; image locked by another client
//   EACCES/EPERM   PERMISSION_DENIED      cephx refused the user: wrong key, unknown user or
//                                         missing caps (the monitors refuse all three alike)
//                                         -> "check the node stage secret's userID and userKey"
//   EKEYREJECTED   UNAUTHENTICATED        the LUKS passphrase does not open the image
//                                         -> "check the node stage secret 'encryptionPassphrase'"
//   ETIMEDOUT      DEADLINE_EXCEEDED      monitors did not answer (or, with Ceph's v1 protocol,
//                                         kept refusing a key) within connectTimeout
//   EHOSTDOWN/ECONNREFUSED  UNAVAILABLE   the daemon cannot be reached
//   ENOSPC         RESOURCE_EXHAUSTED     no free device
//   anything else  INTERNAL
//
// Why these two credential codes: ceph-csi answers INTERNAL for every failed map
// (its NodeStageVolume wraps them all), which tells an operator nothing. A wrong
// key is a refusal of the cephx user (PERMISSION_DENIED, as the monitors' own
// EACCES/EPERM say); a wrong passphrase is a credential that does not unlock the
// volume (UNAUTHENTICATED). Distinct codes, and each message names the secret.
#pragma once

#include <cerrno>
#include <memory>

#include <grpcpp/support/status.h>

#include "common/result.h"
#include "csi/daemon_client.h"

namespace rbdnbd::csi {

// Plugin codes: kCsiCodeBase + the gRPC status code they stand for.
inline constexpr int kCsiCodeBase = 1 << 20;
constexpr int CsiCode(grpc::StatusCode code) { return kCsiCodeBase + static_cast<int>(code); }
constexpr bool IsCsiCode(int code) {
  return code >= kCsiCodeBase && code <= CsiCode(grpc::StatusCode::UNAUTHENTICATED);
}

inline constexpr int kInvalidArgument = CsiCode(grpc::StatusCode::INVALID_ARGUMENT);
inline constexpr int kNotFound = CsiCode(grpc::StatusCode::NOT_FOUND);
inline constexpr int kAlreadyExists = CsiCode(grpc::StatusCode::ALREADY_EXISTS);
inline constexpr int kAborted = CsiCode(grpc::StatusCode::ABORTED);
inline constexpr int kFailedPrecondition = CsiCode(grpc::StatusCode::FAILED_PRECONDITION);
inline constexpr int kUnavailable = CsiCode(grpc::StatusCode::UNAVAILABLE);
inline constexpr int kDeadlineExceeded = CsiCode(grpc::StatusCode::DEADLINE_EXCEEDED);
inline constexpr int kPermissionDenied = CsiCode(grpc::StatusCode::PERMISSION_DENIED);
inline constexpr int kUnauthenticated = CsiCode(grpc::StatusCode::UNAUTHENTICATED);
inline constexpr int kResourceExhausted = CsiCode(grpc::StatusCode::RESOURCE_EXHAUSTED);
inline constexpr int kInternal = CsiCode(grpc::StatusCode::INTERNAL);

// The table above: an errno's gRPC status.
grpc::StatusCode ErrnoToGrpcCode(int errno_value);

// A daemon's error as a plugin error: plugin codes (kUnavailable from the
// client itself) stay; an errno becomes the plugin code of its row, with the
// row's hint appended to the message.
Error FromDaemonError(const Error& error);

// Any Error.code (plugin code, errno or 0) as a gRPC status code.
grpc::StatusCode ToGrpcCode(int code);
const char* StatusCodeName(grpc::StatusCode code);  // "INVALID_ARGUMENT", for logs
grpc::Status ToGrpcStatus(const Error& error);

// For the boundary: OK, or the error converted.
template <typename T>
grpc::Status ToGrpcStatus(const Result<T>& r) {
  return r ? grpc::Status::OK : ToGrpcStatus(r.error());
}

// `inner` with every error converted by FromDaemonError(). Thread-safe as
// `inner` is.
std::unique_ptr<DaemonClient> WithCsiCodes(std::unique_ptr<DaemonClient> inner);

}  // namespace rbdnbd::csi
