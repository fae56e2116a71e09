#include "ublk/ublk_params.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

BackendCaps MemoryLike() {
  BackendCaps c;
  c.size = 1ull << 30;
  c.can_flush = true;
  c.can_fua = true;
  c.can_trim = true;
  c.can_write_zeroes = true;
  c.preferred_block = 4096;
  return c;
}

TEST(UblkParams, BasicParametersDescribeTheExport) {
  auto p = BuildUblkParams(MemoryLike(), UblkParamsOptions{});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->len, sizeof(ublk_params));
  EXPECT_TRUE(p->types & UBLK_PARAM_TYPE_BASIC);
  EXPECT_EQ(p->basic.dev_sectors, (1ull << 30) >> 9);
  EXPECT_EQ(p->basic.logical_bs_shift, 9);
  EXPECT_EQ(p->basic.physical_bs_shift, 12);
  EXPECT_EQ(p->basic.io_opt_shift, 12);
  EXPECT_EQ(p->basic.max_sectors, (512u << 10) >> 9);
  EXPECT_EQ(p->basic.attrs, static_cast<uint32_t>(UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA));
}

TEST(UblkParams, DiscardAndWriteZeroesOnlyWhenTheBackendCan) {
  auto p = BuildUblkParams(MemoryLike(), UblkParamsOptions{});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->types & UBLK_PARAM_TYPE_DISCARD);
  EXPECT_GT(p->discard.max_discard_sectors, 0u);
  EXPECT_GT(p->discard.max_write_zeroes_sectors, 0u);
  EXPECT_EQ(p->discard.max_discard_segments, 1);  // the driver takes one segment only
  EXPECT_NE(p->discard.discard_granularity, 0u);

  BackendCaps zeroes_only = MemoryLike();
  zeroes_only.can_trim = false;
  p = BuildUblkParams(zeroes_only, UblkParamsOptions{});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->discard.max_discard_sectors, 0u);
  EXPECT_GT(p->discard.max_write_zeroes_sectors, 0u);

  BackendCaps neither = zeroes_only;
  neither.can_write_zeroes = false;
  p = BuildUblkParams(neither, UblkParamsOptions{});
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->types & UBLK_PARAM_TYPE_DISCARD);
}

TEST(UblkParams, ReadOnlyBackendIsAReadOnlyDiskWithoutDiscard) {
  BackendCaps c = MemoryLike();
  c.read_only = true;
  auto p = BuildUblkParams(c, UblkParamsOptions{});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->basic.attrs & UBLK_ATTR_READ_ONLY);
  EXPECT_FALSE(p->types & UBLK_PARAM_TYPE_DISCARD);
}

TEST(UblkParams, NoFlushMeansNoVolatileCacheAndNoFua) {
  BackendCaps c = MemoryLike();
  c.can_flush = false;
  auto p = BuildUblkParams(c, UblkParamsOptions{});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->basic.attrs & (UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA), 0u);
}

TEST(UblkParams, A4kLogicalBlock) {
  UblkParamsOptions o;
  o.logical_block = 4096;
  auto p = BuildUblkParams(MemoryLike(), o);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->basic.logical_bs_shift, 12);
  EXPECT_EQ(p->basic.physical_bs_shift, 12);
}

TEST(UblkParams, BadSizesAreRefused) {
  UblkParamsOptions o;
  o.logical_block = 1024;
  EXPECT_EQ(BuildUblkParams(MemoryLike(), o).error().code, EINVAL);
  o = UblkParamsOptions{};
  o.physical_block = 256;
  EXPECT_EQ(BuildUblkParams(MemoryLike(), o).error().code, EINVAL);
  o = UblkParamsOptions{};
  o.max_io_bytes = 5000;
  EXPECT_EQ(BuildUblkParams(MemoryLike(), o).error().code, EINVAL);
  BackendCaps odd = MemoryLike();
  odd.size = 4096 + 512;
  o = UblkParamsOptions{};
  o.logical_block = 4096;
  EXPECT_EQ(BuildUblkParams(odd, o).error().code, EINVAL);
}

}  // namespace
}  // namespace rbdnbd
