// Byte-exact tests of the simple reply codec and the option reply framing.
#include "nbd/reply_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "nbd/handshake.h"

namespace rbdnbd::nbd {
namespace {

std::vector<uint8_t> Bytes(const uint8_t* p, size_t n) {
  return std::vector<uint8_t>(p, p + n);
}

TEST(ReplyCodec, EncodesSuccessByteExact) {
  uint8_t out[kSimpleReplyHeaderSize];
  EncodeSimpleReply(out, 0, 0x0102030405060708u);
  const std::vector<uint8_t> want = {0x67, 0x44, 0x66, 0x98, 0, 0, 0, 0,
                                     1,    2,    3,    4,    5, 6, 7, 8};
  EXPECT_EQ(Bytes(out, sizeof out), want);
}

TEST(ReplyCodec, EncodesErrorByteExact) {
  uint8_t out[kSimpleReplyHeaderSize];
  EncodeSimpleReply(out, kNbdESHUTDOWN, 0xfedcba9876543210u);
  const std::vector<uint8_t> want = {0x67, 0x44, 0x66, 0x98, 0,    0,
                                     0,    108,  0xfe, 0xdc, 0xba, 0x98,
                                     0x76, 0x54, 0x32, 0x10};
  EXPECT_EQ(Bytes(out, sizeof out), want);
}

TEST(ReplyCodec, RoundTrips) {
  for (uint32_t err : {0u, kNbdEPERM, kNbdEIO, kNbdENOSPC, 0xffffffffu}) {
    uint8_t buf[kSimpleReplyHeaderSize];
    EncodeSimpleReply(buf, err, ~uint64_t{err});
    SimpleReply r{};
    ASSERT_TRUE(DecodeSimpleReply(buf, &r));
    EXPECT_EQ(r.error, err);
    EXPECT_EQ(r.cookie, ~uint64_t{err});
  }
}

TEST(ReplyCodec, DecodeRejectsBadMagic) {
  uint8_t buf[kSimpleReplyHeaderSize];
  EncodeSimpleReply(buf, 0, 1);
  buf[3] = 0x99;
  SimpleReply r{};
  EXPECT_FALSE(DecodeSimpleReply(buf, &r));
}

TEST(ReplyCodec, DecodeRejectsStructuredReplyMagic) {
  const uint8_t buf[kSimpleReplyHeaderSize] = {0x66, 0x8e, 0x33, 0xef};
  SimpleReply r{};
  EXPECT_FALSE(DecodeSimpleReply(buf, &r));
}

TEST(OptionReply, FramesHeaderAndMessage) {
  std::vector<uint8_t> out;
  AppendOptionReply(&out, kOptGo, kRepErrShutdown, "bye");
  const std::vector<uint8_t> want = {
      0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9,  // reply magic
      0,    0,    0,    7,                             // option GO
      0x80, 0,    0,    7,                             // ERR_SHUTDOWN
      0,    0,    0,    3,    'b',  'y',  'e'};
  EXPECT_EQ(out, want);
}

TEST(OptionReply, AckHasNoData) {
  std::vector<uint8_t> out;
  AppendOptionReply(&out, kOptAbort, kRepAck);
  ASSERT_EQ(out.size(), kOptionReplyHeaderSize);
  EXPECT_EQ(out[15], 1);   // ACK
  EXPECT_EQ(out[19], 0);   // length
}

// Spot checks of protocol.h against the spec's numbers.
TEST(Protocol, ConstantsMatchTheSpec) {
  EXPECT_EQ(kRepErrUnsup, 0x80000001u);
  EXPECT_EQ(kRepErrTooBig, 0x80000009u);
  EXPECT_EQ(kFlagSendResize, 0x200);
  EXPECT_EQ(kFlagSendCache, 0x400);
  EXPECT_EQ(kFlagSendFastZero, 0x800);
  EXPECT_EQ(kOptListMetaContext, 9u);
  EXPECT_EQ(kOptSetMetaContext, 10u);
  EXPECT_EQ(kMaxRequestLength, 32u * 1024 * 1024);
}

}  // namespace
}  // namespace rbdnbd::nbd
