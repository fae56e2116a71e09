#include "rbd/image_spec.h"

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

TEST(ImageSpecTest, PoolAndImage) {
  auto s = ParseImageSpec("rbd/disk");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->pool, "rbd");
  EXPECT_EQ(s->ns, "");
  EXPECT_EQ(s->image, "disk");
  EXPECT_FALSE(s->is_snapshot());
  EXPECT_EQ(s->ToString(), "rbd/disk");
}

TEST(ImageSpecTest, NamespaceAndSnapshot) {
  auto s = ParseImageSpec("kube/tenant-a/pvc-1@daily");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->pool, "kube");
  EXPECT_EQ(s->ns, "tenant-a");
  EXPECT_EQ(s->image, "pvc-1");
  EXPECT_EQ(s->snap, "daily");
  EXPECT_TRUE(s->is_snapshot());
  EXPECT_EQ(s->ToString(), "kube/tenant-a/pvc-1@daily");
}

TEST(ImageSpecTest, RejectsBadSpecsWithAReason) {
  struct Case { const char* spec; const char* reason; } cases[] = {
      {"", "empty"},
      {"disk", "no pool"},
      {"/disk", "empty"},
      {"rbd/", "empty"},
      {"a/b/c/d", "too many"},
      {"rbd/disk@", "empty snapshot"},
      {"rbd/disk@a@b", "bad snapshot"},
      {"rbd//disk", "empty"},
      {"rbd/di\nsk", "control character"},
  };
  for (const auto& c : cases) {
    auto s = ParseImageSpec(c.spec);
    ASSERT_FALSE(s.has_value()) << c.spec;
    EXPECT_EQ(s.error().code, EINVAL);
    EXPECT_NE(s.error().message.find(c.reason), std::string::npos) << c.spec << ": " << s.error().message;
  }
}

}  // namespace
}  // namespace rbdnbd
