#include "ublk/ublk_control.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

TEST(UblkControl, AMissingControlDeviceSaysTheDriverIsNotLoaded) {
  auto c = UblkControl::Open("/nonexistent/ublk-control");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ENODEV);
  EXPECT_NE(c.error().message.find("ublk driver is not loaded"), std::string::npos) << c.error().message;
}

TEST(UblkControl, FlagNamesAreReadable) {
  EXPECT_EQ(UblkFlagNames(0), "0");
  EXPECT_EQ(UblkFlagNames(UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE),
            "UBLK_F_USER_RECOVERY|UBLK_F_USER_RECOVERY_REISSUE");
  EXPECT_EQ(UblkFlagNames(UBLK_F_URING_CMD_COMP_IN_TASK | (1ull << 40)),
            "UBLK_F_URING_CMD_COMP_IN_TASK|0x10000000000");
}

}  // namespace
}  // namespace rbdnbd
