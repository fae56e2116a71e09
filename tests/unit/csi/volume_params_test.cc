#include "csi/volume_params.h"

#include <gtest/gtest.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {
namespace {

constexpr const char* kKey = "AQBSECRETKEYSECRETKEYSECRETKEY==";

ClusterConfig Clusters() {
  return ClusterConfig{{"dev", {"127.0.0.1:14200", "127.0.0.2:14200"}, ""}, {"nsdefault", {"m:1"}, "tenant"}};
}

StringMap Context() { return {{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "csi-vol-1"}}; }
StringMap Secrets() { return {{"userID", "kube"}, {"userKey", kKey}}; }

// Expects kInvalidArgument with `key` named and the cephx key never in the message.
void ExpectInvalid(const StringMap& context, const StringMap& secrets, const std::string& key) {
  auto p = ParseVolumeParams("vol-1", context, secrets, Clusters());
  ASSERT_FALSE(p) << "expected an error naming " << key;
  EXPECT_EQ(p.error().code, kInvalidArgument);
  EXPECT_NE(p.error().message.find(key), std::string::npos) << p.error().message;
  EXPECT_EQ(p.error().message.find(kKey), std::string::npos) << "the key leaked into: " << p.error().message;
}

TEST(VolumeParamsTest, MkfsOptionsAreSplitAndNeverNameAPath) {
  StringMap ctx = Context();
  ctx["mkfsOptions"] = "  -m0 \t-E lazy_itable_init=1   -b 4096 ";
  auto p = ParseVolumeParams("vol-1", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->mkfs_options, (std::vector<std::string>{"-m0", "-E", "lazy_itable_init=1", "-b", "4096"}));
  EXPECT_TRUE(ParseVolumeParams("vol-1", Context(), Secrets(), Clusters())->mkfs_options.empty());
  ctx["mkfsOptions"] = "-F /dev/sda";
  ExpectInvalid(ctx, Secrets(), "mkfsOptions");
  ctx["mkfsOptions"] = std::string(1025, 'x');
  ExpectInvalid(ctx, Secrets(), "mkfsOptions");
}

TEST(VolumeParamsTest, ParsesAFullRequest) {
  StringMap ctx = Context();
  ctx["connections"] = "4";
  ctx["ioTimeout"] = "15";
  ctx["connectTimeout"] = "5";
  ctx["reattachTimeout"] = "120";
  ctx["exclusive"] = "true";
  auto p = ParseVolumeParams("vol-1", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->spec, "kube/csi-vol-1");
  EXPECT_EQ(p->mon_host, "127.0.0.1:14200,127.0.0.2:14200");
  EXPECT_EQ(p->client_name, "client.kube");
  EXPECT_EQ(p->key.reveal(), kKey);
  EXPECT_EQ(p->connections, 4u);
  EXPECT_EQ(p->io_timeout_s, 15u);
  EXPECT_EQ(p->connect_timeout_s, 5u);
  EXPECT_EQ(p->reattach_timeout_s, 120u);
  EXPECT_TRUE(p->exclusive);
  EXPECT_EQ(p->encryption, "");
  EXPECT_TRUE(p->passphrase.empty());
}

TEST(VolumeParamsTest, Defaults) {
  auto p = ParseVolumeParams("vol-1", Context(), Secrets(), Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->connections, 1u);
  EXPECT_EQ(p->io_timeout_s, 30u);
  EXPECT_EQ(p->connect_timeout_s, 30u);
  EXPECT_EQ(p->reattach_timeout_s, 60u);
  EXPECT_FALSE(p->exclusive);
}

TEST(VolumeParamsTest, MissingSecretsAreInvalidArgument) {
  ExpectInvalid(Context(), {}, "userID");
  ExpectInvalid(Context(), {{"userKey", kKey}}, "userID");
  ExpectInvalid(Context(), {{"userID", "kube"}}, "userKey");
  ExpectInvalid(Context(), {{"userID", "kube"}, {"userKey", ""}}, "userKey");
  ExpectInvalid(Context(), {{"userID", "client.kube"}, {"userKey", kKey}}, "userID");
}

TEST(VolumeParamsTest, MissingContextKeysAreInvalidArgument) {
  StringMap ctx = Context();
  ctx.erase("pool");
  ExpectInvalid(ctx, Secrets(), "pool");
  ctx = Context();
  ctx.erase("imageName");
  ExpectInvalid(ctx, Secrets(), "imageName");
  ctx = Context();
  ctx.erase("clusterID");
  ExpectInvalid(ctx, Secrets(), "monitors");
  ctx = Context();
  ctx["clusterID"] = "unknown-cluster";
  ExpectInvalid(ctx, Secrets(), "clusterID");
}

TEST(VolumeParamsTest, BadValuesAreInvalidArgument) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"connections", "abc"}, {"connections", "0"}, {"connections", "17"}, {"connections", "4x"},
           {"ioTimeout", "-1"}, {"reattachTimeout", "1e3"},
           {"connectTimeout", "0"}, {"connectTimeout", "3601"}, {"exclusive", "yes"}, {"staticVolume", "maybe"},
           {"encryption", "luks3"}, {"monitors", "a b"}}) {
    StringMap ctx = Context();
    ctx[key] = value;
    ExpectInvalid(ctx, Secrets(), key);
  }
  StringMap bad_image = Context();
  bad_image["imageName"] = "a/b";
  ExpectInvalid(bad_image, Secrets(), "imageName");
  bad_image["imageName"] = "img@snap";
  ExpectInvalid(bad_image, Secrets(), "imageName");
}

TEST(VolumeParamsTest, StaticVolumeDefaultsTheImageToTheVolumeId) {
  StringMap ctx = Context();
  ctx.erase("imageName");
  ctx["staticVolume"] = "true";
  auto p = ParseVolumeParams("static-img", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->spec, "kube/static-img");
}

TEST(VolumeParamsTest, MonitorsAndNamespaces) {
  StringMap ctx = {{"monitors", "10.0.0.1:6789,10.0.0.2:6789"}, {"pool", "p"}, {"imageName", "i"},
                   {"radosNamespace", "ns"}};
  auto p = ParseVolumeParams("v", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->mon_host, "10.0.0.1:6789,10.0.0.2:6789");
  EXPECT_EQ(p->spec, "p/ns/i");

  // monitors override an unknown clusterID; the cluster's namespace is the default.
  ctx = {{"clusterID", "nsdefault"}, {"pool", "p"}, {"imageName", "i"}};
  p = ParseVolumeParams("v", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->spec, "p/tenant/i");
  EXPECT_EQ(p->mon_host, "m:1");
  ctx["namespace"] = "other";
  p = ParseVolumeParams("v", ctx, Secrets(), Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->spec, "p/other/i");
}

TEST(VolumeParamsTest, EncryptionNeedsItsPassphrase) {
  StringMap ctx = Context();
  ctx["encryption"] = "luks2";
  ExpectInvalid(ctx, Secrets(), "encryptionPassphrase");
  StringMap secrets = Secrets();
  secrets["encryptionPassphrase"] = "correct horse";
  auto p = ParseVolumeParams("v", ctx, secrets, Clusters());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->encryption, "luks2");
  EXPECT_EQ(p->passphrase.reveal(), "correct horse");
}

}  // namespace
}  // namespace rbdnbd::csi
