#include "ublk/ublk_control.h"

#include <sys/ioctl.h>

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

TEST(UblkControl, NewerFeatureNamesAndTheResizeOpcodesAreTheKernels) {
  EXPECT_EQ(UblkFlagNames(kUblkFUpdateSize | (1ull << 6)), "UBLK_F_CMD_IOCTL_ENCODE|UBLK_F_UPDATE_SIZE");
  // _IOR('u', 0x13, struct ublksrv_ctrl_cmd) and _IOWR('u', 0x15, ...), as Linux 6.16's uapi spells them.
  EXPECT_EQ(kUblkCmdGetFeatures, static_cast<uint32_t>(_IOR('u', 0x13, struct ublksrv_ctrl_cmd)));
  EXPECT_EQ(kUblkCmdUpdateSize, static_cast<uint32_t>(_IOWR('u', 0x15, struct ublksrv_ctrl_cmd)));
}

}  // namespace
}  // namespace rbdnbd
