#include "ublk/ublk_codec.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

constexpr uint32_t kMaxIo = 512u << 10;

ublksrv_io_desc Desc(uint8_t op, uint32_t flags, uint32_t nr_sectors, uint64_t start_sector) {
  ublksrv_io_desc d{};
  d.op_flags = op | flags;
  d.nr_sectors = nr_sectors;
  d.start_sector = start_sector;
  return d;
}

TEST(UblkCodec, ReadBecomesAReadInBytes) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_READ, 0, 8, 16), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kRead);
  EXPECT_EQ(io.offset, 16u * 512);
  EXPECT_EQ(io.length, 4096u);
  EXPECT_EQ(io.flags, 0u);
}

TEST(UblkCodec, WriteWithFuaCarriesTheFuaFlag) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE, UBLK_IO_F_FUA, 128, 0), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kWrite);
  EXPECT_EQ(io.flags, kIoFua);
  EXPECT_EQ(io.length, 65536u);
}

TEST(UblkCodec, FlushHasNoRange) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_FLUSH, 0, 0, 0), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kFlush);
  EXPECT_EQ(io.offset, 0u);
  EXPECT_EQ(io.length, 0u);
}

// The block layer's flush request keeps the start sector blk_rq_init() gave it,
// (sector_t)-1: seen as EINVAL on every fsync in the 6.12 guest before this.
TEST(UblkCodec, FlushIgnoresTheStartSectorTheBlockLayerLeavesAtMinusOne) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_FLUSH, 0, 0, UINT64_MAX), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kFlush);
  EXPECT_EQ(io.offset, 0u);
  EXPECT_EQ(io.length, 0u);
}

TEST(UblkCodec, DiscardBecomesTrimAndMayExceedTheBufferSize) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_DISCARD, 0, 1u << 21, 8), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kTrim);
  EXPECT_EQ(io.offset, 4096u);
  EXPECT_EQ(io.length, 1u << 30);
}

TEST(UblkCodec, WriteZeroesMayPunchUnlessNoUnmap) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE_ZEROES, 0, 8, 0), kMaxIo, &io), 0);
  EXPECT_EQ(io.type, IoType::kWriteZeroes);
  EXPECT_EQ(io.flags, 0u);
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE_ZEROES, UBLK_IO_F_NOUNMAP, 8, 0), kMaxIo, &io), 0);
  EXPECT_EQ(io.flags, kIoNoHole);
}

TEST(UblkCodec, NoUnmapOnAWriteIsIgnored) {
  UblkIo io;
  ASSERT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE, UBLK_IO_F_NOUNMAP, 8, 0), kMaxIo, &io), 0);
  EXPECT_EQ(io.flags, 0u);
}

TEST(UblkCodec, UnknownOpsAreNotSupported) {
  UblkIo io;
  EXPECT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE_SAME, 0, 8, 0), kMaxIo, &io), -EOPNOTSUPP);
  EXPECT_EQ(DecodeUblkIo(Desc(10, 0, 8, 0), kMaxIo, &io), -EOPNOTSUPP);   // zoned ops
  EXPECT_EQ(DecodeUblkIo(Desc(0xff, 0, 8, 0), kMaxIo, &io), -EOPNOTSUPP);
}

TEST(UblkCodec, DataLongerThanTheBufferIsInvalid) {
  UblkIo io;
  EXPECT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_READ, 0, (kMaxIo >> 9) + 1, 0), kMaxIo, &io), -EINVAL);
  EXPECT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_WRITE, 0, kMaxIo >> 9, 0), kMaxIo, &io), 0);
}

TEST(UblkCodec, RangesThatOverflowAreInvalid) {
  UblkIo io;
  EXPECT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_READ, 0, 8, UINT64_MAX >> 8), kMaxIo, &io), -EINVAL);
  EXPECT_EQ(DecodeUblkIo(Desc(UBLK_IO_OP_DISCARD, 0, 16, (UINT64_MAX >> 9) - 1), kMaxIo, &io), -EINVAL);
}

TEST(UblkCodec, CommitResultIsBytesForDataOpsAndZeroOtherwise) {
  UblkIo rw;
  rw.type = IoType::kRead;
  rw.length = 8192;
  EXPECT_EQ(UblkCommitResult(rw, 0), 8192);
  rw.type = IoType::kWrite;
  EXPECT_EQ(UblkCommitResult(rw, 0), 8192);
  EXPECT_EQ(UblkCommitResult(rw, -EIO), -EIO);
  UblkIo trim;
  trim.type = IoType::kTrim;
  trim.length = 1u << 20;
  EXPECT_EQ(UblkCommitResult(trim, 0), 0);
  EXPECT_EQ(UblkCommitResult(trim, -ENOSPC), -ENOSPC);
}

}  // namespace
}  // namespace rbdnbd
