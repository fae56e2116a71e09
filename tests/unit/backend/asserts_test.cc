// Proves that assert() is live in the builds the suite runs (RBDNBD_ASSERTS):
// without it, Result::value() on an error and the backends' boundary checks
// would be compiled out and every test that relies on them would prove nothing.
#include <cerrno>

#include <gtest/gtest.h>

#include "common/result.h"

namespace rbdnbd {
namespace {

Result<int> Failed() { return Err(EIO, "injected"); }

TEST(AssertsDeathTest, NdebugIsNotDefined) {
#ifdef NDEBUG
  FAIL() << "NDEBUG is defined: configure with -DRBDNBD_ASSERTS=ON";
#endif
}

TEST(AssertsDeathTest, ValueOfAnErrorAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Result<int> r = Failed();
  ASSERT_FALSE(r.has_value());
  EXPECT_DEATH((void)r.value(), "has_value");
}

TEST(AssertsDeathTest, ErrorOfAValueAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Result<void> ok;
  EXPECT_DEATH((void)ok.error(), "has_value");
}

}  // namespace
}  // namespace rbdnbd
