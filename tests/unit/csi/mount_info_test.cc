#include "csi/mount_info.h"
#include "csi/mounter.h"

#include <sys/mount.h>

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

constexpr const char* kSample =
    "22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/a\n"
    "36 22 43:0 / /var/lib/kubelet/plugins/kubernetes.io/csi/rbd/abc/globalmount rw,relatime shared:5 - ext4 "
    "/dev/nbd0 rw\n"
    "37 22 43:0 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv1/mount ro,relatime shared:5 master:2 - ext4 "
    "/dev/nbd0 rw\n"
    "38 22 0:5 /nbd1 /var/lib/kubelet/pods/u2/volumeDevices/kubernetes.io~csi/pv2 rw - devtmpfs udev rw\n"
    "39 22 0:30 / /mnt/with\\040space\\011tab rw - tmpfs tmp\\040fs rw\n"
    "garbage line\n"
    "40 22 0:31 / /mnt/nosep rw shared:9 tmpfs none rw\n"
    "41 22 0:32 / /mnt/stacked rw - tmpfs first rw\n"
    "42 41 0:33 / /mnt/stacked rw - tmpfs second rw\n";

TEST(MountInfoTest, ParsesFieldsAndSkipsMalformedLines) {
  auto table = ParseMountInfo(kSample);
  ASSERT_EQ(table.size(), 7u);
  const MountEntry& staging = table[1];
  EXPECT_EQ(staging.id, 36);
  EXPECT_EQ(staging.parent, 22);
  EXPECT_EQ(staging.major, 43u);
  EXPECT_EQ(staging.minor, 0u);
  EXPECT_EQ(staging.root, "/");
  EXPECT_EQ(staging.mount_point, "/var/lib/kubelet/plugins/kubernetes.io/csi/rbd/abc/globalmount");
  EXPECT_EQ(staging.fs_type, "ext4");
  EXPECT_EQ(staging.source, "/dev/nbd0");
  EXPECT_FALSE(staging.read_only());
  EXPECT_TRUE(table[2].read_only());  // optional fields "shared:5 master:2" skipped
  EXPECT_EQ(table[2].fs_type, "ext4");
  EXPECT_EQ(table[3].root, "/nbd1");
  EXPECT_EQ(table[3].source, "udev");
}

TEST(MountInfoTest, DecodesOctalEscapes) {
  auto table = ParseMountInfo(kSample);
  auto m = FindMount(table, "/mnt/with space\ttab");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->source, "tmp fs");
  EXPECT_EQ(UnescapeMountPath("a\\134b\\012"), "a\\b\n");
  EXPECT_EQ(UnescapeMountPath("trailing\\04"), "trailing\\04");
}

TEST(MountInfoTest, FindMountReturnsTheTopOfAStack) {
  auto table = ParseMountInfo(kSample);
  auto m = FindMount(table, "/mnt/stacked");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->source, "second");
  EXPECT_FALSE(FindMount(table, "/mnt").has_value());
  EXPECT_FALSE(FindMount(table, "/mnt/nosep").has_value());
}

TEST(MountInfoTest, ReadsOwnMountTable) {
  auto table = ReadMountInfo();
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_TRUE(FindMount(*table, "/").has_value());
  EXPECT_FALSE(ReadMountInfo("/nonexistent/mountinfo"));
}

TEST(MountOptionsTest, FlagWordsBecomeFlagsTheRestData) {
  auto o = ParseMountOptions({"noatime", "ro", "discard", "nouuid,nodev", "", "defaults"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOATIME | MS_RDONLY | MS_NODEV));
  EXPECT_EQ(o.data, "discard,nouuid");
  auto rw = ParseMountOptions({"ro", "rw"});
  EXPECT_EQ(rw.flags, 0ul);
  EXPECT_EQ(rw.data, "");
}

TEST(MountOptionsTest, CanonicalPathNormalisesMissingPaths) {
  EXPECT_EQ(CanonicalPath("/nonexistent//a/./b/"), "/nonexistent/a/b");
  EXPECT_EQ(CanonicalPath("/"), "/");
}

}  // namespace
}  // namespace rbdnbd::csi
