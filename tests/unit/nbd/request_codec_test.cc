// Byte-exact tests of the request header codec and of ErrnoToNbd().
#include "nbd/request_codec.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <vector>

namespace rbdnbd::nbd {
namespace {

// READ, FUA, cookie 0x0102030405060708, offset 0x1122334455667788, len 4096.
const uint8_t kReadHeader[kRequestHeaderSize] = {
    0x25, 0x60, 0x95, 0x13,                          // magic
    0x00, 0x01,                                      // flags: FUA
    0x00, 0x00,                                      // type: READ
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // cookie
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // offset
    0x00, 0x00, 0x10, 0x00,                          // length
};

TEST(RequestCodec, DecodesBigEndianFields) {
  Request r{};
  ASSERT_TRUE(DecodeRequest(kReadHeader, &r));
  EXPECT_EQ(r.flags, kCmdFlagFua);
  EXPECT_EQ(r.type, kCmdRead);
  EXPECT_EQ(r.cookie, 0x0102030405060708u);
  EXPECT_EQ(r.offset, 0x1122334455667788u);
  EXPECT_EQ(r.length, 4096u);
}

TEST(RequestCodec, EncodeIsByteExact) {
  const Request r{kCmdFlagFua, kCmdRead, 0x0102030405060708u,
                  0x1122334455667788u, 4096};
  uint8_t out[kRequestHeaderSize];
  EncodeRequest(r, out);
  EXPECT_EQ(std::vector<uint8_t>(out, out + kRequestHeaderSize),
            std::vector<uint8_t>(kReadHeader, kReadHeader + kRequestHeaderSize));
}

TEST(RequestCodec, RoundTripsExtremeValues) {
  const Request in{0xffff, 0xffff, UINT64_MAX, UINT64_MAX, UINT32_MAX};
  uint8_t buf[kRequestHeaderSize];
  EncodeRequest(in, buf);
  Request out{};
  ASSERT_TRUE(DecodeRequest(buf, &out));
  EXPECT_EQ(out.flags, in.flags);
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.cookie, in.cookie);
  EXPECT_EQ(out.offset, in.offset);
  EXPECT_EQ(out.length, in.length);
}

TEST(RequestCodec, RoundTripsZeroes) {
  const Request in{0, kCmdDisc, 0, 0, 0};
  uint8_t buf[kRequestHeaderSize];
  EncodeRequest(in, buf);
  const uint8_t want[kRequestHeaderSize] = {0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2};
  EXPECT_EQ(std::vector<uint8_t>(buf, buf + kRequestHeaderSize),
            std::vector<uint8_t>(want, want + kRequestHeaderSize));
  Request out{1, 1, 1, 1, 1};
  ASSERT_TRUE(DecodeRequest(buf, &out));
  EXPECT_EQ(out.type, kCmdDisc);
  EXPECT_EQ(out.cookie, 0u);
  EXPECT_EQ(out.length, 0u);
}

TEST(RequestCodec, RejectsBadMagic) {
  uint8_t buf[kRequestHeaderSize];
  std::copy(kReadHeader, kReadHeader + kRequestHeaderSize, buf);
  Request r{};
  for (int i = 0; i < 4; ++i) {
    buf[i] ^= 0x01;
    EXPECT_FALSE(DecodeRequest(buf, &r)) << "byte " << i;
    buf[i] ^= 0x01;
  }
  EXPECT_TRUE(DecodeRequest(buf, &r));
}

TEST(RequestCodec, RejectsReplyMagicAndLittleEndianMagic) {
  uint8_t buf[kRequestHeaderSize] = {0x67, 0x44, 0x66, 0x98};
  Request r{};
  EXPECT_FALSE(DecodeRequest(buf, &r));
  const uint8_t le[kRequestHeaderSize] = {0x13, 0x95, 0x60, 0x25};
  EXPECT_FALSE(DecodeRequest(le, &r));
}

TEST(ErrnoToNbd, SuccessIsZero) { EXPECT_EQ(ErrnoToNbd(0), 0u); }

TEST(ErrnoToNbd, MapsTheTable) {
  struct Row {
    int in;
    uint32_t want;
  };
  const Row rows[] = {
      {EPERM, kNbdEPERM},       {EROFS, kNbdEPERM},
      {ENOMEM, kNbdENOMEM},     {EINVAL, kNbdEINVAL},
      {ENOSPC, kNbdENOSPC},     {EDQUOT, kNbdENOSPC},
      {EFBIG, kNbdENOSPC},      {EOVERFLOW, kNbdEOVERFLOW},
      {ENOTSUP, kNbdENOTSUP},   {EOPNOTSUPP, kNbdENOTSUP},
      {ESHUTDOWN, kNbdESHUTDOWN}, {EIO, kNbdEIO},
  };
  for (const Row& row : rows) EXPECT_EQ(ErrnoToNbd(row.in), row.want) << row.in;
}

TEST(ErrnoToNbd, EverythingElseIsEio) {
  for (int e : {ENOENT, EAGAIN, EBUSY, ETIMEDOUT, ECONNRESET, EBADF, ENODEV,
                ERANGE, 9999}) {
    EXPECT_EQ(ErrnoToNbd(e), kNbdEIO) << e;
  }
}

TEST(ErrnoToNbd, AcceptsNegativeErrno) {
  EXPECT_EQ(ErrnoToNbd(-ENOSPC), kNbdENOSPC);
  EXPECT_EQ(ErrnoToNbd(-EROFS), kNbdEPERM);
  EXPECT_EQ(ErrnoToNbd(-ENOENT), kNbdEIO);
  EXPECT_EQ(ErrnoToNbd(INT_MIN), kNbdEIO);
}

TEST(ErrnoToNbd, IsIdempotentOnNbdValues) {
  // Callers may pass a Verdict's error (already an NBD value) through it.
  for (uint32_t v : {0u, kNbdEPERM, kNbdEIO, kNbdENOMEM, kNbdEINVAL, kNbdENOSPC,
                     kNbdEOVERFLOW, kNbdENOTSUP, kNbdESHUTDOWN}) {
    EXPECT_EQ(ErrnoToNbd(static_cast<int>(v)), v) << v;
  }
}

TEST(ErrnoToNbd, NbdValuesMatchLinuxErrno) {
  // The NBD values were chosen to equal Linux errno; a mismatch here would
  // mean a typo in protocol.h.
  EXPECT_EQ(kNbdEPERM, static_cast<uint32_t>(EPERM));
  EXPECT_EQ(kNbdEIO, static_cast<uint32_t>(EIO));
  EXPECT_EQ(kNbdENOMEM, static_cast<uint32_t>(ENOMEM));
  EXPECT_EQ(kNbdEINVAL, static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(kNbdENOSPC, static_cast<uint32_t>(ENOSPC));
  EXPECT_EQ(kNbdEOVERFLOW, static_cast<uint32_t>(EOVERFLOW));
  EXPECT_EQ(kNbdENOTSUP, static_cast<uint32_t>(ENOTSUP));
  EXPECT_EQ(kNbdESHUTDOWN, static_cast<uint32_t>(ESHUTDOWN));
}

TEST(CommandName, NamesEveryCommand) {
  EXPECT_STREQ(CommandName(kCmdRead), "READ");
  EXPECT_STREQ(CommandName(kCmdWrite), "WRITE");
  EXPECT_STREQ(CommandName(kCmdDisc), "DISC");
  EXPECT_STREQ(CommandName(kCmdFlush), "FLUSH");
  EXPECT_STREQ(CommandName(kCmdTrim), "TRIM");
  EXPECT_STREQ(CommandName(kCmdCache), "CACHE");
  EXPECT_STREQ(CommandName(kCmdWriteZeroes), "WRITE_ZEROES");
  EXPECT_STREQ(CommandName(kCmdBlockStatus), "BLOCK_STATUS");
  EXPECT_STREQ(CommandName(8), "UNKNOWN");
}

}  // namespace
}  // namespace rbdnbd::nbd
