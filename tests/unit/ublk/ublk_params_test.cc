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

TEST(UblkParams, TheMaxIoSizeIsTheLargestRequest) {
  UblkParamsOptions o;
  o.max_io_bytes = 256u << 10;
  auto p = BuildUblkParams(MemoryLike(), o);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->basic.max_sectors, (256u << 10) >> 9);
  o.max_io_bytes = 32u << 20;  // the driver's per-request buffer limit
  p = BuildUblkParams(MemoryLike(), o);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->basic.max_sectors, (32u << 20) >> 9);
  o.max_io_bytes = (32u << 20) + 4096;
  EXPECT_EQ(BuildUblkParams(MemoryLike(), o).error().code, EINVAL);
}

TEST(UblkQueueShape, TheKernelsLimits) {
  EXPECT_TRUE(CheckUblkQueueShape(kUblkDefaultDepth, kUblkDefaultMaxIoBytes));
  EXPECT_TRUE(CheckUblkQueueShape(1, 4096, 4096));
  EXPECT_TRUE(CheckUblkQueueShape(UBLK_MAX_QUEUE_DEPTH, 32u << 20, 512));
  struct Bad { uint64_t depth; uint64_t max_io; uint32_t block; const char* needle; } bad[] = {
      {0, 4096, 512, "queue depth 0 is not in 1..4096 (UBLK_MAX_QUEUE_DEPTH)"},
      {4097, 4096, 512, "queue depth 4097"},
      {64, 0, 512, "max I/O size 0 bytes is not in 4 KiB..32 MiB"},
      {64, 2048, 512, "2 KiB is not in 4 KiB..32 MiB"},
      {64, 64u << 20, 512, "64 MiB is not in 4 KiB..32 MiB"},
      {64, 6144, 512, "6 KiB is not a multiple of 4096"},
      {64, 5000, 512, "5000 bytes is not a multiple of 4096"},
  };
  for (const Bad& b : bad) {
    auto r = CheckUblkQueueShape(b.depth, b.max_io, b.block);
    ASSERT_FALSE(r) << b.depth << " " << b.max_io;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find(b.needle), std::string::npos) << r.error().message;
  }
}

TEST(UblkQueueShape, BufferMemoryIsBoundedButTheDefaultAlwaysFits) {
  constexpr uint64_t kGiB = 1ull << 30;
  // 4 GiB, or a quarter of the machine.
  EXPECT_EQ(UblkBufferLimit(2, 64 * kGiB), 4 * kGiB);
  EXPECT_EQ(UblkBufferLimit(2, 8 * kGiB), 2 * kGiB);
  EXPECT_EQ(UblkBufferLimit(2, 0), 4 * kGiB);
  // The default shape (128 x 512 KiB = 64 MiB a queue) is never refused.
  EXPECT_EQ(UblkBufferLimit(256, 64 * kGiB), 16 * kGiB);
  EXPECT_EQ(UblkBufferLimit(8, 1 * kGiB), 512ull << 20);
  EXPECT_TRUE(CheckUblkBufferMemory(256, kUblkDefaultDepth, kUblkDefaultMaxIoBytes, 1 * kGiB));
  EXPECT_TRUE(CheckUblkBufferMemory(2, 64, 256u << 10, 1 * kGiB));
  EXPECT_TRUE(CheckUblkBufferMemory(2, 1024, 1u << 20, 64 * kGiB));  // 2 GiB

  auto r = CheckUblkBufferMemory(2, 4096, 32u << 20, 64 * kGiB);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("2 queue(s) x depth 4096 x max I/O 32 MiB = 256 GiB per device exceed the "
                                   "limit of 4 GiB"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("64 GiB"), std::string::npos) << r.error().message;
  // 2 x 1024 x 1 MiB = 2 GiB: fine with 64 GiB of memory, too much with 4 GiB.
  r = CheckUblkBufferMemory(2, 1024, 1u << 20, 4 * kGiB);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("= 2 GiB per device exceed the limit of 1 GiB (the smaller of 4 GiB and a "
                                   "quarter of this machine's 4 GiB)"),
            std::string::npos)
      << r.error().message;
  // The quarter of an odd amount of memory is whole MiB, and the memory is told as people read it.
  EXPECT_EQ(UblkBufferLimit(2, 2984108ull << 10), 728ull << 20);
  r = CheckUblkBufferMemory(2, 4096, 32u << 20, 2984108ull << 10);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("limit of 728 MiB (the smaller of 4 GiB and a quarter of this machine's 2.8 GiB)"),
            std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace rbdnbd
