#include "csi/controller/create_params.h"

#include <rbd/features.h>

#include <gtest/gtest.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {
namespace {

ClusterConfig Clusters() {
  return {ClusterEntry{"dev", {"127.0.0.1:14200"}, ""}, ClusterEntry{"nsd", {"10.0.0.1:6789", "10.0.0.2:6789"}, "team"}};
}

StringMap Base() { return {{"clusterID", "dev"}, {"pool", "kube"}}; }

Result<CreateParams> Parse(StringMap extra) {
  StringMap m = Base();
  for (auto& [k, v] : extra) m[k] = v;
  return ParseCreateParams(m, Clusters());
}

void ExpectInvalid(const Result<CreateParams>& r, const std::string& needle) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(CreateParamsTest, DefaultsAreAllFeaturesButJournaling) {
  auto p = Parse({});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->features, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
                             RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN);
  EXPECT_EQ(p->mon_host, "127.0.0.1:14200");
  EXPECT_EQ(p->pool, "kube");
  EXPECT_EQ(p->ns, "");
  EXPECT_EQ(p->object_size, 0u);
  EXPECT_FALSE(p->encrypted);
  EXPECT_TRUE(p->cluster.by_id);
}

TEST(CreateParamsTest, FeaturesParseToBits) {
  auto bits = ParseFeatures("layering, exclusive-lock,journaling");
  ASSERT_TRUE(bits) << bits.error().message;
  EXPECT_EQ(*bits, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_JOURNALING);
  EXPECT_EQ(FeatureNames(*bits), "layering,exclusive-lock,journaling");
  auto p = Parse({{"imageFeatures", "layering"}});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->features, RBD_FEATURE_LAYERING);
}

TEST(CreateParamsTest, UnknownFeatureIsNamed) {
  ExpectInvalid(Parse({{"imageFeatures", "layering,striping"}}), "'striping'");
}

TEST(CreateParamsTest, FeatureDependenciesAreChecked) {
  ExpectInvalid(Parse({{"imageFeatures", "layering,object-map"}}), "object-map needs exclusive-lock");
  ExpectInvalid(Parse({{"imageFeatures", "exclusive-lock,fast-diff"}}), "fast-diff needs object-map");
  ExpectInvalid(Parse({{"imageFeatures", "journaling"}}), "journaling needs exclusive-lock");
  EXPECT_TRUE(Parse({{"imageFeatures", "exclusive-lock,object-map,fast-diff,journaling"}}));
}

TEST(CreateParamsTest, UnknownKeyIsNamedButK8sKeysPass) {
  ExpectInvalid(Parse({{"imageFormat", "2"}}), "'imageFormat'");
  auto p = Parse({{"csi.storage.k8s.io/pvc/name", "data"},
                  {"csi.storage.k8s.io/pvc/namespace", "apps"},
                  {"csi.storage.k8s.io/pv/name", "pvc-1"},
                  {"csi.storage.k8s.io/provisioner-secret-name", "x"}});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->metadata, (StringMap{{"csi.pvc.name", "data"}, {"csi.pvc.namespace", "apps"}, {"csi.pv.name", "pvc-1"}}));
}

TEST(CreateParamsTest, ClusterIsRequiredAndMustBeKnown) {
  ExpectInvalid(ParseCreateParams({{"pool", "kube"}}, Clusters()), "'clusterID'");
  ExpectInvalid(Parse({{"clusterID", "prod"}}), "'prod'");
  ExpectInvalid(Parse({{"monitors", "1.2.3.4"}}), "not both");
  ExpectInvalid(ParseCreateParams({{"clusterID", "dev"}}, Clusters()), "'pool'");
}

TEST(CreateParamsTest, MonitorsInsteadOfClusterId) {
  auto p = ParseCreateParams({{"monitors", "1.2.3.4:6789"}, {"pool", "kube"}}, Clusters());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(p->cluster.by_id);
  EXPECT_EQ(p->mon_host, "1.2.3.4:6789");
  ExpectInvalid(ParseCreateParams({{"monitors", "1.2.3.4 5.6.7.8"}, {"pool", "kube"}}, Clusters()), "'monitors'");
}

TEST(CreateParamsTest, ClusterDefaultNamespaceAppliesUnlessGiven) {
  auto p = ParseCreateParams({{"clusterID", "nsd"}, {"pool", "kube"}}, Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ns, "team");
  EXPECT_EQ(p->mon_host, "10.0.0.1:6789,10.0.0.2:6789");
  p = ParseCreateParams({{"clusterID", "nsd"}, {"pool", "kube"}, {"radosNamespace", "other"}}, Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ns, "other");
}

TEST(CreateParamsTest, NamesWithSlashesAreRejected) {
  ExpectInvalid(Parse({{"pool", "a/b"}}), "'pool'");
  ExpectInvalid(Parse({{"radosNamespace", "a@b"}}), "'radosNamespace'");
  ExpectInvalid(Parse({{"dataPool", "x y"}}), "'dataPool'");
}

TEST(CreateParamsTest, ObjectSize) {
  auto p = Parse({{"objectSize", "4M"}});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->object_size, 4u << 20);
  p = Parse({{"objectSize", "4096"}});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->object_size, 4096u);
  for (const char* bad : {"3M", "2048", "64M", "big", "-4M"}) ExpectInvalid(Parse({{"objectSize", bad}}), "'objectSize'");
}

TEST(CreateParamsTest, Encryption) {
  auto p = Parse({{"encrypted", "true"}});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->encrypted);
  EXPECT_EQ(p->luks, LuksFormat::kLuks2);
  p = Parse({{"encrypted", "true"}, {"encryptionFormat", "luks1"}});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->luks, LuksFormat::kLuks1);
  ExpectInvalid(Parse({{"encrypted", "yes"}}), "'encrypted'");
  ExpectInvalid(Parse({{"encrypted", "true"}, {"encryptionFormat", "plain"}}), "'encryptionFormat'");
  ExpectInvalid(Parse({{"encryptionFormat", "luks2"}}), "'encryptionFormat'");
}

TEST(CreateParamsTest, NodeKeysPassThroughAndAreCheckedLikeTheNodeDoes) {
  auto p = Parse({{"fsType", "xfs"}, {"connections", "4"}, {"exclusive", "true"}, {"mkfsOptions", "-m0"}});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->node_keys, (StringMap{{"fsType", "xfs"}, {"connections", "4"}, {"exclusive", "true"}, {"mkfsOptions", "-m0"}}));
  ExpectInvalid(Parse({{"connections", "99"}}), "'connections'");
  ExpectInvalid(Parse({{"ioTimeout", "soon"}}), "'ioTimeout'");
  ExpectInvalid(Parse({{"mkfsOptions", "-L x /dev/sda"}}), "'mkfsOptions'");
}

TEST(CreateParamsTest, DeviceTypeTravelsToTheVolumeContextAndIsCheckedAtCreate) {
  for (const char* type : {"nbd", "ublk", "auto"}) {
    auto p = Parse({{"deviceType", type}});
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(VolumeContext(*p, "csi-vol-x").at("deviceType"), type);
  }
  EXPECT_EQ(VolumeContext(*Parse({}), "csi-vol-x").count("deviceType"), 0u);  // absent: the node's nbd
  ExpectInvalid(Parse({{"deviceType", "krbd"}}), "'deviceType' must be nbd, ublk or auto, not 'krbd'");
}

TEST(CreateParamsTest, UblkShapeTravelsToTheVolumeContextAndIsCheckedAtCreate) {
  auto p = Parse({{"deviceType", "ublk"}, {"ublkQueueDepth", "64"}, {"ublkMaxIoSize", "1M"}});
  ASSERT_TRUE(p) << p.error().message;
  StringMap ctx = VolumeContext(*p, "csi-vol-x");
  EXPECT_EQ(ctx.at("ublkQueueDepth"), "64");
  EXPECT_EQ(ctx.at("ublkMaxIoSize"), "1M");
  ExpectInvalid(Parse({{"deviceType", "ublk"}, {"ublkQueueDepth", "9999"}}), "'ublkQueueDepth'");
  ExpectInvalid(Parse({{"deviceType", "ublk"}, {"ublkMaxIoSize", "3K"}}), "'ublkMaxIoSize'");
  ExpectInvalid(Parse({{"ublkQueueDepth", "64"}}), "applies to deviceType ublk or auto, not nbd");
}

TEST(CreateParamsTest, VolumeContextHasExactlyTheNodeKeys) {
  auto p = ParseCreateParams({{"clusterID", "nsd"}, {"pool", "kube"}, {"encrypted", "true"}, {"fsType", "xfs"},
                              {"csi.storage.k8s.io/pvc/name", "x"}, {"imageFeatures", "layering"}},
                             Clusters());
  ASSERT_TRUE(p);
  StringMap ctx = VolumeContext(*p, "csi-vol-x");
  EXPECT_EQ(ctx, (StringMap{{"clusterID", "nsd"}, {"pool", "kube"}, {"radosNamespace", "team"},
                            {"imageName", "csi-vol-x"}, {"encryption", "luks2"}, {"fsType", "xfs"}}));
  // ...and the node plugin accepts it as it is.
  auto node = ParseVolumeParams("vol", ctx, {{"userID", "kube"}, {"userKey", "k"}, {"encryptionPassphrase", "p"}}, Clusters());
  ASSERT_TRUE(node) << node.error().message;
  EXPECT_EQ(node->spec, "kube/team/csi-vol-x");
  EXPECT_EQ(node->mon_host, "10.0.0.1:6789,10.0.0.2:6789");
  auto m = ParseCreateParams({{"monitors", "1.2.3.4"}, {"pool", "kube"}}, Clusters());
  ASSERT_TRUE(m);
  EXPECT_EQ(VolumeContext(*m, "i"), (StringMap{{"monitors", "1.2.3.4"}, {"pool", "kube"}, {"imageName", "i"}}));
}

TEST(CapacityTest, DefaultIsOneGiB) {
  auto r = ResolveCapacity(0, 0, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1ULL << 30);
}

TEST(CapacityTest, RoundsUpToWholeMiB) {
  EXPECT_EQ(*ResolveCapacity(1, 0, 0), kMiB);
  EXPECT_EQ(*ResolveCapacity(kMiB, 0, 0), kMiB);
  EXPECT_EQ(*ResolveCapacity(kMiB + 1, 0, 0), 2 * kMiB);
  EXPECT_EQ(*ResolveCapacity(0, 100 * kMiB, 0), 100 * kMiB);  // only a limit: the default, capped
}

TEST(CapacityTest, LimitBelowRoundedSizeIsOutOfRange) {
  auto r = ResolveCapacity(1000, 1000, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
  r = ResolveCapacity(kMiB + 1, kMiB + 100, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
}

TEST(CapacityTest, NegativeIsInvalidAndHugeIsOutOfRange) {
  EXPECT_EQ(ResolveCapacity(-1, 0, 0).error().code, kInvalidArgument);
  EXPECT_EQ(ResolveCapacity(0, -1, 0).error().code, kInvalidArgument);
  EXPECT_EQ(ResolveCapacity(2 * kMiB, kMiB, 0).error().code, kOutOfRange);  // required above limit
  EXPECT_EQ(ResolveCapacity(static_cast<int64_t>(kMaxVolumeBytes) + 1, 0, 0).error().code, kOutOfRange);
  EXPECT_EQ(*ResolveCapacity(static_cast<int64_t>(kMaxVolumeBytes), 0, 0), kMaxVolumeBytes);
}

TEST(CapacityTest, ContentSourceIsTheMinimumAndTheDefault) {
  EXPECT_EQ(*ResolveCapacity(0, 0, 300 * kMiB), 300 * kMiB);
  EXPECT_EQ(*ResolveCapacity(400 * kMiB, 0, 300 * kMiB), 400 * kMiB);
  auto r = ResolveCapacity(200 * kMiB, 0, 300 * kMiB);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
  EXPECT_NE(r.error().message.find("smaller than the content source"), std::string::npos);
}

TEST(FingerprintTest, StableAndSensitiveToWhatDefinesTheVolume) {
  auto a = Parse({});
  ASSERT_TRUE(a);
  EXPECT_EQ(Fingerprint(*a, ""), Fingerprint(*Parse({}), ""));
  EXPECT_EQ(Fingerprint(*a, "").size(), 32u);
  EXPECT_EQ(Fingerprint(*a, ""), Fingerprint(*Parse({{"csi.storage.k8s.io/pvc/name", "other"}}), ""));
  EXPECT_NE(Fingerprint(*a, ""), Fingerprint(*a, "snapshot:x"));
  EXPECT_NE(Fingerprint(*a, ""), Fingerprint(*Parse({{"imageFeatures", "layering"}}), ""));
  EXPECT_NE(Fingerprint(*a, ""), Fingerprint(*Parse({{"fsType", "xfs"}}), ""));
  EXPECT_NE(Fingerprint(*a, ""), Fingerprint(*Parse({{"encrypted", "true"}}), ""));
  EXPECT_NE(Fingerprint(*a, ""), Fingerprint(*Parse({{"pool", "rbd"}}), ""));
}

}  // namespace
}  // namespace rbdnbd::csi
