#include "csi/cluster_config.h"

#include <fstream>

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

TEST(ClusterConfigTest, ParsesCephCsiFormat) {
  auto c = ParseClusterConfig(R"([
    {"clusterID": "dev", "monitors": ["127.0.0.1:14200", "127.0.0.2:14200"]},
    {"clusterID": "prod", "monitors": ["10.0.0.1"], "rbd": {"radosNamespace": "ns1"}, "cephFS": {"x": 1}}
  ])");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].cluster_id, "dev");
  EXPECT_EQ((*c)[0].monitors, (std::vector<std::string>{"127.0.0.1:14200", "127.0.0.2:14200"}));
  EXPECT_EQ((*c)[0].rados_namespace, "");
  EXPECT_EQ((*c)[1].rados_namespace, "ns1");
  ASSERT_NE(FindCluster(*c, "prod"), nullptr);
  EXPECT_EQ(FindCluster(*c, "prod")->monitors[0], "10.0.0.1");
  EXPECT_EQ(FindCluster(*c, "nope"), nullptr);
}

TEST(ClusterConfigTest, EmptyArrayIsValid) {
  auto c = ParseClusterConfig("[]");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->empty());
}

TEST(ClusterConfigTest, RejectsMalformedInput) {
  struct Case {
    const char* text;
    const char* expect_in_message;
  };
  for (const Case& tc : {Case{"{", "not valid JSON"}, Case{R"({"clusterID":"a"})", "array"},
                         Case{R"([1])", "not an object"}, Case{R"([{"monitors":["m"]}])", "no clusterID"},
                         Case{R"([{"clusterID":"","monitors":["m"]}])", "no clusterID"},
                         Case{R"([{"clusterID":"a"}])", "no monitors"},
                         Case{R"([{"clusterID":"a","monitors":"m1,m2"}])", "no monitors"},
                         Case{R"([{"clusterID":"a","monitors":[1]}])", "non-empty string"}}) {
    auto c = ParseClusterConfig(tc.text);
    ASSERT_FALSE(c) << tc.text;
    EXPECT_EQ(c.error().code, EINVAL) << tc.text;
    EXPECT_NE(c.error().message.find(tc.expect_in_message), std::string::npos) << c.error().message;
  }
}

TEST(ClusterConfigTest, MissingFileIsAnEmptyListAndBadFileIsNamed) {
  auto missing = LoadClusterConfig("/nonexistent/rbd-nbdd-csi/config.json");
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->empty());

  std::string path = ::testing::TempDir() + "/cluster-config-bad.json";
  std::ofstream(path) << "[{\"clusterID\": 5}]";
  auto bad = LoadClusterConfig(path);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(path), std::string::npos);

  std::ofstream(path) << R"([{"clusterID": "x", "monitors": ["m:1"]}])";
  auto good = LoadClusterConfig(path);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->at(0).cluster_id, "x");
}

}  // namespace
}  // namespace rbdnbd::csi
