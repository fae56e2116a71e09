#include "csi/controller/volume_id.h"

#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

const std::string kUuid = "0123456789abcdef0123456789abcdef";
const std::string kUuid2 = "fedcba9876543210fedcba9876543210";

TEST(VolumeIdTest, ClusterIdVolumeRoundTrips) {
  VolumeRef ref{{true, "dev"}, "kube", "", kUuid};
  std::string id = EncodeVolumeId(ref);
  EXPECT_EQ(id, "rnv1.cdev.kube.." + kUuid);
  auto back = DecodeVolumeId(id);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, ref);
  EXPECT_EQ(back->ImageName(), "csi-vol-" + kUuid);
}

TEST(VolumeIdTest, MonitorsAndNamespaceAreEscapedAndRoundTrip) {
  VolumeRef ref{{false, "10.0.0.1:6789,10.0.0.2:6789"}, "my.pool", "team/a b", kUuid};
  std::string id = EncodeVolumeId(ref);
  // No '.' inside a part, so the id splits unambiguously on dots.
  EXPECT_EQ(id, "rnv1.m10%2e0%2e0%2e1%3a6789%2c10%2e0%2e0%2e2%3a6789.my%2epool.team%2fa%20b." + kUuid);
  auto back = DecodeVolumeId(id);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, ref);
}

TEST(VolumeIdTest, SnapshotIdNamesItsSourceAndRoundTrips) {
  SnapshotRef ref{{{true, "dev"}, "kube", "ns1", kUuid}, kUuid2};
  std::string id = EncodeSnapshotId(ref);
  EXPECT_EQ(id, "rns1.cdev.kube.ns1." + kUuid + "." + kUuid2);
  auto back = DecodeSnapshotId(id);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, ref);
  EXPECT_EQ(back->ImageName(), "csi-snap-" + kUuid2);
  EXPECT_EQ(EncodeVolumeId(back->source), "rnv1.cdev.kube.ns1." + kUuid);
}

TEST(VolumeIdTest, UppercaseEscapesDecodeToo) {
  auto back = DecodeVolumeId("rnv1.cdev.my%2Epool.." + kUuid);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->pool, "my.pool");
}

TEST(VolumeIdTest, MalformedVolumeIdsAreRejected) {
  for (const std::string& bad : std::vector<std::string>{
           std::string(""), std::string("pvc-123"), "rnv2.cdev.kube.." + kUuid,           // prefix
           "rnv1.cdev.kube." + kUuid,                                                      // a part missing
           "rnv1.cdev.kube...." + kUuid,                                                   // a part too many
           "rnv1.xdev.kube.." + kUuid,                                                     // cluster kind
           "rnv1.c.kube.." + kUuid,                                                        // empty cluster
           "rnv1.cdev..." + kUuid,                                                         // empty pool
           "rnv1.cdev.ku%zbe.." + kUuid,                                                   // bad escape
           "rnv1.cdev.kube%2.." + kUuid,                                                   // truncated escape
           "rnv1.cdev.ku:be.." + kUuid,                                                    // unescaped char
           std::string("rnv1.cdev.kube..0123"),                                            // short uuid
           "rnv1.cdev.kube..0123456789ABCDEF0123456789ABCDEF",                              // upper-case uuid
           "rns1.cdev.kube.." + kUuid + "." + kUuid2,                                      // a snapshot id
       }) {
    EXPECT_FALSE(DecodeVolumeId(bad)) << bad;
  }
}

TEST(VolumeIdTest, MalformedSnapshotIdsAreRejected) {
  for (const std::string& bad : std::vector<std::string>{
           std::string("snap-1"), "rnv1.cdev.kube.." + kUuid,  // a volume id
           "rns1.cdev.kube.." + kUuid,                         // no snap uuid
           "rns1.cdev.kube.." + kUuid + ".nothex",             // bad snap uuid
           "rns1.cdev.kube..x." + kUuid2,                      // bad source uuid
       }) {
    EXPECT_FALSE(DecodeSnapshotId(bad)) << bad;
  }
}

TEST(VolumeIdTest, PercentEncodingKeepsOnlyTheSafeSet) {
  EXPECT_EQ(PercentEncode("Az09_-"), "Az09_-");
  EXPECT_EQ(PercentEncode(".:/%"), "%2e%3a%2f%25");
  auto back = PercentDecode(PercentEncode("ünïcode pool.%"));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, "ünïcode pool.%");
}

TEST(VolumeIdTest, NewUuidsAreUuidsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string u = NewUuid();
    EXPECT_TRUE(IsUuid(u)) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(VolumeIdTest, TypicalIdsFitInCsiLimit) {
  VolumeRef ref{{true, "rook-ceph"}, "replicapool", "tenant-a", kUuid};
  EXPECT_LE(EncodeVolumeId(ref).size(), kMaxIdBytes);
  EXPECT_LE(EncodeSnapshotId(SnapshotRef{ref, kUuid2}).size(), kMaxIdBytes);
}

}  // namespace
}  // namespace rbdnbd::csi
