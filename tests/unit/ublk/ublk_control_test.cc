#include "ublk/ublk_control.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <string>

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

bool Has(const Error& e, const std::string& s) { return e.message.find(s) != std::string::npos; }

TEST(UblkCommandError, AddDevEaccesIsTheDeviceLimitWithItsValueNotAPermission) {
  const std::string param = testing::TempDir() + "/ublks_max";
  std::FILE* f = std::fopen(param.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("2\n", f);
  std::fclose(f);
  const Error e = UblkCommandError("ADD_DEV", kUblkAutoId, -EACCES, param);
  EXPECT_EQ(e.code, EACCES);
  EXPECT_TRUE(Has(e, "ADD_DEV of a new ublk device: the ublk driver's device limit is reached (ublks_max=2)"))
      << e.message;
  EXPECT_TRUE(Has(e, "modprobe ublk_drv ublks_max=N")) << e.message;
  EXPECT_FALSE(Has(e, "permission")) << e.message;
  // Without the parameter (an older driver), the limit is still named.
  EXPECT_TRUE(Has(UblkCommandError("ADD_DEV", 3, -EACCES, "/nonexistent/ublks_max"), "(ublks_max=?)"));
}

TEST(UblkCommandError, EpermAndOtherEaccesAskForCapSysAdmin) {
  const Error add = UblkCommandError("ADD_DEV", kUblkAutoId, -EPERM);
  EXPECT_EQ(add.code, EPERM);
  EXPECT_TRUE(Has(add, "ADD_DEV of a new ublk device: permission denied")) << add.message;
  EXPECT_TRUE(Has(add, "CAP_SYS_ADMIN")) << add.message;
  const Error start = UblkCommandError("START_DEV", 4, -EACCES);
  EXPECT_TRUE(Has(start, "START_DEV of ublk device 4: permission denied")) << start.message;
  EXPECT_TRUE(Has(start, "CAP_SYS_ADMIN")) << start.message;
}

TEST(UblkCommandError, AnIdInUseNamesItsNodeAndTheWayOut) {
  const Error e = UblkCommandError("ADD_DEV", 7, -EEXIST);
  EXPECT_EQ(e.code, EEXIST);
  EXPECT_TRUE(Has(e, "ADD_DEV of ublk device 7: the id is in use: /dev/ublkc7 belongs to another ublk server"))
      << e.message;
  EXPECT_TRUE(Has(e, "let the kernel pick")) << e.message;
}

TEST(UblkCommandError, OtherErrnosKeepTheirMeaning) {
  EXPECT_TRUE(Has(UblkCommandError("ADD_DEV", kUblkAutoId, -ENOSPC), "no free ublk device id"));
  EXPECT_TRUE(Has(UblkCommandError("DEL_DEV", 1, -ENODEV), "DEL_DEV of ublk device 1: no such ublk device"));
  const Error e = UblkCommandError("SET_PARAMS", 1, -EINVAL);
  EXPECT_EQ(e.code, EINVAL);
  EXPECT_TRUE(Has(e, "SET_PARAMS of ublk device 1: Invalid argument")) << e.message;
}

}  // namespace
}  // namespace rbdnbd
