#include "control/quiesce_mounts.h"

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

// A node with /dev/nbd0 (43:0) staged by CSI and bind-mounted into two pods,
// /dev/nbd1 (43:32) mounted once, and its partition nbd1p1 (43:33).
constexpr const char* kMountInfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=1k\n"
    "40 22 43:0 / /var/lib/kubelet/plugins/staging/pv1 rw,relatime shared:10 - ext4 /dev/nbd0 rw\n"
    "41 22 43:32 / /mnt/other rw shared:11 - xfs /dev/nbd1 rw\n"
    "42 22 43:0 / /var/lib/kubelet/pods/a/volumes/pv1 rw,relatime shared:10 - ext4 /dev/nbd0 rw\n"
    "43 22 43:0 /sub /var/lib/kubelet/pods/b/volumes/pv1 rw,relatime shared:10 - ext4 /dev/nbd0 rw\n"
    "44 22 43:33 / /mnt/with\\040space rw - ext4 /dev/nbd1p1 rw\n"
    "garbage line\n"
    "45 22 43:0 / /no/separator rw\n";

TEST(QuiesceMountsTest, ParsesEveryWellFormedLineAndUnescapesPaths) {
  auto mounts = ParseMountInfo(kMountInfo);
  ASSERT_EQ(mounts.size(), 7u);  // the garbage line and the one without "-" are skipped
  EXPECT_EQ(mounts[2].major, 43u);
  EXPECT_EQ(mounts[2].minor, 0u);
  EXPECT_EQ(mounts[2].mount_point, "/var/lib/kubelet/plugins/staging/pv1");
  EXPECT_EQ(mounts[2].fs_type, "ext4");
  EXPECT_EQ(mounts[2].source, "/dev/nbd0");
  EXPECT_EQ(mounts[5].root, "/sub");
  EXPECT_EQ(mounts[6].mount_point, "/mnt/with space");
}

TEST(QuiesceMountsTest, ASuperblockMountedSeveralTimesIsFrozenOnceThroughItsFirstMount) {
  auto mounts = ParseMountInfo(kMountInfo);
  EXPECT_EQ(MountsToFreeze(mounts, {{43, 0}}),
            std::vector<std::string>{"/var/lib/kubelet/plugins/staging/pv1"});
}

TEST(QuiesceMountsTest, PartitionsOfTheDeviceCountInMountInfoOrder) {
  auto mounts = ParseMountInfo(kMountInfo);
  EXPECT_EQ(MountsToFreeze(mounts, {{43, 32}, {43, 33}}),
            (std::vector<std::string>{"/mnt/other", "/mnt/with space"}));
}

TEST(QuiesceMountsTest, ADeviceWithNothingMountedHasNothingToFreeze) {
  auto mounts = ParseMountInfo(kMountInfo);
  EXPECT_TRUE(MountsToFreeze(mounts, {{43, 64}}).empty());
  EXPECT_TRUE(MountsToFreeze({}, {{43, 0}}).empty());
}

TEST(QuiesceMountsTest, TheFirstMountIsTheOneInFileOrderNotTheShortestPath) {
  auto mounts = ParseMountInfo(
      "50 22 43:0 / /z/late rw - ext4 /dev/nbd0 rw\n"
      "51 22 43:0 / /a rw - ext4 /dev/nbd0 rw\n");
  EXPECT_EQ(MountsToFreeze(mounts, {{43, 0}}), std::vector<std::string>{"/z/late"});
}

TEST(QuiesceMountsTest, DeviceNumbersOfABlockDeviceAndOfOtherFiles) {
  auto null_dev = DeviceNumbersOf("/dev/null");  // a character device
  ASSERT_FALSE(null_dev.has_value());
  EXPECT_EQ(null_dev.error().code, ENOTBLK);
  auto missing = DeviceNumbersOf("/nonexistent/dev");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
}

}  // namespace
}  // namespace rbdnbd
