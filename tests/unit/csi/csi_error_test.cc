#include "csi/csi_error.h"

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

TEST(CsiErrorTest, ErrnoMapsToTheCsiStatus) {
  struct Case {
    int code;
    grpc::StatusCode want;
  };
  for (const Case& c : {Case{kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
                        Case{ERANGE, grpc::StatusCode::INVALID_ARGUMENT},
                        Case{kNotFound, grpc::StatusCode::NOT_FOUND},
                        Case{kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
                        Case{kAborted, grpc::StatusCode::ABORTED},
                        Case{kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
                        Case{EBUSY, grpc::StatusCode::FAILED_PRECONDITION},
                        Case{kUnavailable, grpc::StatusCode::UNAVAILABLE},
                        Case{ETIMEDOUT, grpc::StatusCode::DEADLINE_EXCEEDED},
                        Case{EACCES, grpc::StatusCode::PERMISSION_DENIED},
                        Case{ENOSPC, grpc::StatusCode::RESOURCE_EXHAUSTED},
                        Case{EIO, grpc::StatusCode::INTERNAL},
                        Case{EPROTO, grpc::StatusCode::INTERNAL}}) {
    EXPECT_EQ(ToGrpcCode(c.code), c.want) << "errno " << c.code;
  }
}

TEST(CsiErrorTest, StatusCarriesTheMessage) {
  grpc::Status s = ToGrpcStatus(Error{kNotFound, "volume v is not staged on this node"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "volume v is not staged on this node");
  Result<int> ok = 5;
  EXPECT_TRUE(ToGrpcStatus(ok).ok());
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FAILED_PRECONDITION");
}

}  // namespace
}  // namespace rbdnbd::csi
