#include "csi/csi_error.h"

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

using grpc::StatusCode;

TEST(CsiErrorTest, PluginCodesNeverCollideWithAnErrno) {
  for (int e = 1; e < 4096; e++) EXPECT_FALSE(IsCsiCode(e)) << "errno " << e;
  for (int code : {kInvalidArgument, kNotFound, kAlreadyExists, kAborted, kFailedPrecondition, kUnavailable,
                   kDeadlineExceeded, kPermissionDenied, kUnauthenticated, kResourceExhausted, kInternal}) {
    EXPECT_TRUE(IsCsiCode(code)) << code;
    EXPECT_GE(code, 4096);
  }
  // The collision that made this necessary: EPERM used to be kFailedPrecondition.
  EXPECT_NE(kFailedPrecondition, EPERM);
  EXPECT_EQ(ToGrpcCode(EPERM), StatusCode::PERMISSION_DENIED);
}

TEST(CsiErrorTest, PluginCodesMapToTheirOwnStatus) {
  struct Case {
    int code;
    StatusCode want;
  };
  for (const Case& c : {Case{0, StatusCode::OK},
                        Case{kInvalidArgument, StatusCode::INVALID_ARGUMENT},
                        Case{kNotFound, StatusCode::NOT_FOUND},
                        Case{kAlreadyExists, StatusCode::ALREADY_EXISTS},
                        Case{kAborted, StatusCode::ABORTED},
                        Case{kFailedPrecondition, StatusCode::FAILED_PRECONDITION},
                        Case{kUnavailable, StatusCode::UNAVAILABLE},
                        Case{kDeadlineExceeded, StatusCode::DEADLINE_EXCEEDED},
                        Case{kPermissionDenied, StatusCode::PERMISSION_DENIED},
                        Case{kUnauthenticated, StatusCode::UNAUTHENTICATED},
                        Case{kResourceExhausted, StatusCode::RESOURCE_EXHAUSTED},
                        Case{kInternal, StatusCode::INTERNAL}}) {
    EXPECT_EQ(ToGrpcCode(c.code), c.want) << "code " << c.code;
  }
}

// Every row of csi_error.h's table, written out here rather than read from
// the table, so a changed row fails.
TEST(CsiErrorTest, EveryErrnoRowOfTheTable) {
  struct Case {
    int errno_value;
    StatusCode want;
  };
  for (const Case& c : {Case{EINVAL, StatusCode::INVALID_ARGUMENT},
                        Case{ERANGE, StatusCode::INVALID_ARGUMENT},
                        Case{ENOENT, StatusCode::NOT_FOUND},
                        Case{EEXIST, StatusCode::ALREADY_EXISTS},
                        Case{EBUSY, StatusCode::FAILED_PRECONDITION},
                        Case{EACCES, StatusCode::PERMISSION_DENIED},
                        Case{EPERM, StatusCode::PERMISSION_DENIED},
                        Case{EKEYREJECTED, StatusCode::UNAUTHENTICATED},
                        Case{ETIMEDOUT, StatusCode::DEADLINE_EXCEEDED},
                        Case{EHOSTDOWN, StatusCode::UNAVAILABLE},
                        Case{ECONNREFUSED, StatusCode::UNAVAILABLE},
                        Case{ENOSPC, StatusCode::RESOURCE_EXHAUSTED},
                        // anything else
                        Case{EIO, StatusCode::INTERNAL},
                        Case{EPROTO, StatusCode::INTERNAL},
                        Case{EINPROGRESS, StatusCode::INTERNAL}}) {
    EXPECT_EQ(ErrnoToGrpcCode(c.errno_value), c.want) << "errno " << c.errno_value;
    // The boundary and the daemon conversion agree with the table.
    EXPECT_EQ(ToGrpcCode(c.errno_value), c.want) << "errno " << c.errno_value;
    Error converted = FromDaemonError(Error{c.errno_value, "rbd-nbdd map: x"});
    EXPECT_TRUE(IsCsiCode(converted.code)) << "errno " << c.errno_value;
    EXPECT_EQ(ToGrpcCode(converted.code), c.want) << "errno " << c.errno_value;
    EXPECT_EQ(converted.message.rfind("rbd-nbdd map: x", 0), 0u) << converted.message;
  }
}

TEST(CsiErrorTest, CredentialRowsNameTheSecretToCheck) {
  for (int e : {EACCES, EPERM}) {
    Error wrong_key = FromDaemonError(Error{e, "rbd-nbdd map: authentication failed for client.kube"});
    EXPECT_EQ(wrong_key.code, kPermissionDenied);
    EXPECT_NE(wrong_key.message.find("userID"), std::string::npos) << wrong_key.message;
    EXPECT_NE(wrong_key.message.find("userKey"), std::string::npos) << wrong_key.message;
    EXPECT_EQ(wrong_key.message.find("encryptionPassphrase"), std::string::npos) << wrong_key.message;
  }
  Error wrong_pass = FromDaemonError(Error{EKEYREJECTED, "rbd-nbdd map: wrong encryption passphrase for 'kube/v'"});
  EXPECT_EQ(wrong_pass.code, kUnauthenticated);
  EXPECT_NE(wrong_pass.message.find("'encryptionPassphrase'"), std::string::npos) << wrong_pass.message;
  EXPECT_EQ(wrong_pass.message.find("userKey"), std::string::npos) << wrong_pass.message;
  // Other rows keep the daemon's message as it is.
  EXPECT_EQ(FromDaemonError(Error{ENOENT, "rbd-nbdd map: image 'kube/v' does not exist"}).message,
            "rbd-nbdd map: image 'kube/v' does not exist");
}

TEST(CsiErrorTest, PluginCodesFromTheClientStayAsTheyAre) {
  Error unreachable{kUnavailable, "rbd-nbdd daemon unreachable at /run/x.sock: ENOENT"};
  Error kept = FromDaemonError(unreachable);
  EXPECT_EQ(kept.code, kUnavailable);
  EXPECT_EQ(kept.message, unreachable.message);
}

TEST(CsiErrorTest, StatusCarriesTheMessage) {
  grpc::Status s = ToGrpcStatus(Error{kNotFound, "volume v is not staged on this node"});
  EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "volume v is not staged on this node");
  Result<int> ok = 5;
  EXPECT_TRUE(ToGrpcStatus(ok).ok());
  EXPECT_STREQ(StatusCodeName(StatusCode::FAILED_PRECONDITION), "FAILED_PRECONDITION");
  EXPECT_STREQ(StatusCodeName(StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
}

}  // namespace
}  // namespace rbdnbd::csi
