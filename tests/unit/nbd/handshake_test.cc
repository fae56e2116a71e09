// Handshake: greeting, client flags, option framing, EXPORT_NAME, LIST,
// ABORT, unsupported options and the abuse limits. GO/INFO live in
// handshake_info_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "handshake_test_util.h"
#include "nbd/handshake.h"

namespace rbdnbd::nbd {
namespace {

using namespace rbdnbd::nbd::testing;  // NOLINT
using State = Handshake::State;

class HandshakeTest : public ::testing::Test {
 protected:
  // Sends client flags and checks the machine now wants an option header.
  void Start(uint32_t flags = kClientFlagFixedNewstyle) {
    Outcome r = Drive(&hs_, ClientFlags(flags));
    ASSERT_EQ(r.state, State::kNegotiating);
    ASSERT_TRUE(r.out.empty());
    ASSERT_EQ(hs_.BytesWanted(), kOptionHeaderSize);
  }

  TwoExports dir_;
  Handshake hs_{dir_};
};

TEST_F(HandshakeTest, GreetingIsByteExact) {
  Bytes out = {0xaa};  // appends, never overwrites
  hs_.Greeting(&out);
  const Bytes want = {0xaa, 'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C',
                      'I',  'H', 'A', 'V', 'E', 'O', 'P', 'T', 0x00, 0x03};
  EXPECT_EQ(out, want);
  EXPECT_EQ(out.size() - 1, kGreetingSize);
}

TEST_F(HandshakeTest, FirstWantsFourBytesOfClientFlags) {
  EXPECT_EQ(hs_.BytesWanted(), 4u);
  EXPECT_EQ(hs_.state(), State::kNegotiating);
}

TEST_F(HandshakeTest, AcceptsEveryKnownClientFlagCombination) {
  for (uint32_t flags : {0u, 1u, 2u, 3u}) {
    Handshake hs(dir_);
    Outcome r = Drive(&hs, ClientFlags(flags));
    EXPECT_EQ(r.state, State::kNegotiating) << flags;
    EXPECT_EQ(hs.BytesWanted(), kOptionHeaderSize);
    EXPECT_EQ(hs.no_zeroes(), (flags & 2) != 0);
  }
}

TEST_F(HandshakeTest, UnknownClientFlagsClose) {
  for (uint32_t flags : {4u, 0x80000000u, 0xffffffffu}) {
    Handshake hs(dir_);
    Outcome r = Drive(&hs, ClientFlags(flags));
    EXPECT_EQ(r.state, State::kClose) << flags;
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(hs.close_reason().find("client flags"), std::string::npos);
    EXPECT_EQ(hs.BytesWanted(), 0u);
  }
}

TEST_F(HandshakeTest, BadOptionMagicCloses) {
  Start();
  Outcome r = Drive(&hs_, OptionHeader(kOptList, 0, 0x49484156454f5055));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(hs_.close_reason(), "bad option magic");
}

TEST_F(HandshakeTest, ExportNameSendsSizeFlagsAndZeroes) {
  Start();
  Outcome r = Drive(&hs_, Option(kOptExportName, Bytes{'d', 'i', 's', 'k', '0'}));
  ASSERT_EQ(r.state, State::kTransmission);
  Bytes want;
  Be(&want, 1 << 20, 8);
  Be(&want, kFlagHasFlags | kFlagSendFlush | kFlagSendTrim | kFlagSendFua, 2);
  want.insert(want.end(), 124, 0);
  EXPECT_EQ(r.out, want);
  EXPECT_EQ(hs_.selected_export().name, "disk0");
  EXPECT_EQ(hs_.selected_export().size, 1u << 20);
  EXPECT_EQ(hs_.selected_export().transmission_flags,
            kFlagHasFlags | kFlagSendFlush | kFlagSendTrim | kFlagSendFua);
  EXPECT_EQ(hs_.BytesWanted(), 0u);
}

TEST_F(HandshakeTest, ExportNameWithNoZeroesOmitsPadding) {
  Start(kClientFlagFixedNewstyle | kClientFlagNoZeroes);
  Outcome r = Drive(&hs_, Option(kOptExportName, Bytes{'r', 'o'}));
  ASSERT_EQ(r.state, State::kTransmission);
  const Bytes want = {0, 0, 0, 0, 0, 1, 0, 0, 0x00, 0x03};  // 64 KiB, HAS|RO
  EXPECT_EQ(r.out, want);
  EXPECT_EQ(hs_.selected_export().name, "ro");
}

TEST_F(HandshakeTest, EmptyExportNameSelectsTheDefault) {
  Start(kClientFlagNoZeroes);
  Outcome r = Drive(&hs_, Option(kOptExportName));
  ASSERT_EQ(r.state, State::kTransmission);
  EXPECT_EQ(r.out.size(), 10u);
  EXPECT_EQ(hs_.selected_export().name, "disk0");
}

TEST_F(HandshakeTest, UnknownExportNameCloses) {
  Start();
  Outcome r = Drive(&hs_, Option(kOptExportName, Bytes{'n', 'o', 'p', 'e'}));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_TRUE(r.out.empty());  // EXPORT_NAME has no way to say "no"
  EXPECT_NE(hs_.close_reason().find("unknown export"), std::string::npos);
}

TEST_F(HandshakeTest, AbortIsAckedThenCloses) {
  Start();
  Outcome r = Drive(&hs_, Option(kOptAbort));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(r.out, Reply(kOptAbort, kRepAck));
  EXPECT_EQ(hs_.close_reason(), "client sent ABORT");
}

TEST_F(HandshakeTest, ListSendsOneServerReplyPerExportThenAck) {
  Start();
  Outcome r = Drive(&hs_, Option(kOptList));
  EXPECT_EQ(r.state, State::kNegotiating);
  Bytes disk0, ro;
  Be(&disk0, 5, 4);
  Str(&disk0, "disk0");
  Be(&ro, 2, 4);
  Str(&ro, "ro");
  EXPECT_EQ(r.out, Cat({Reply(kOptList, kRepServer, disk0),
                        Reply(kOptList, kRepServer, ro),
                        Reply(kOptList, kRepAck)}));
  EXPECT_EQ(hs_.BytesWanted(), kOptionHeaderSize);
}

TEST_F(HandshakeTest, ListWithDataIsInvalidAndNegotiationContinues) {
  Start(kClientFlagNoZeroes);
  Outcome r = Drive(&hs_, Option(kOptList, Bytes{1, 2, 3}));
  EXPECT_EQ(r.state, State::kNegotiating);
  ASSERT_GE(r.out.size(), kOptionReplyHeaderSize);
  EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(kOptList, kRepErrInvalid)));
  EXPECT_EQ(r.out.size(), kOptionReplyHeaderSize + ReplyLength(r.out, 0));
  r = Drive(&hs_, Option(kOptExportName, Bytes{'r', 'o'}));
  EXPECT_EQ(r.state, State::kTransmission);
}

TEST_F(HandshakeTest, UnsupportedOptionsGetErrUnsup) {
  for (uint32_t opt : {kOptStartTls, kOptStructuredReply, kOptListMetaContext,
                       kOptSetMetaContext, 4u, 11u, 99u, 0u, 0xffffffffu}) {
    Handshake hs(dir_);
    Drive(&hs, ClientFlags(0));
    Outcome r = Drive(&hs, Option(opt));
    EXPECT_EQ(r.state, State::kNegotiating) << opt;
    ASSERT_GE(r.out.size(), kOptionReplyHeaderSize) << opt;
    EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(opt, kRepErrUnsup))) << opt;
    EXPECT_EQ(r.out.size(), kOptionReplyHeaderSize + ReplyLength(r.out, 0));
  }
}

TEST_F(HandshakeTest, UnsupportedOptionDataIsConsumed) {
  Start();
  Bytes query;
  Be(&query, 16, 4);
  Str(&query, "base:allocation!");
  Outcome r = Drive(&hs_, Cat({Option(kOptSetMetaContext, query), Option(kOptAbort)}));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(r.consumed, kOptionHeaderSize * 2 + query.size());
  const size_t first = kOptionReplyHeaderSize + ReplyLength(r.out, 0);
  EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(kOptSetMetaContext, kRepErrUnsup)));
  EXPECT_EQ(Bytes(r.out.begin() + first, r.out.end()), Reply(kOptAbort, kRepAck));
}

TEST_F(HandshakeTest, OptionDataUpTo64KiBIsAccepted) {
  Start();
  Outcome r = Drive(&hs_, OptionHeader(99, kMaxOptionDataLength));
  EXPECT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(hs_.BytesWanted(), kMaxOptionDataLength);
  r = Drive(&hs_, Bytes(kMaxOptionDataLength, 0x5a));
  EXPECT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(99, kRepErrUnsup)));
}

TEST_F(HandshakeTest, OversizeOptionClosesBeforeReadingData) {
  Start();
  Outcome r = Drive(&hs_, OptionHeader(kOptGo, kMaxOptionDataLength + 1));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(hs_.BytesWanted(), 0u);
  EXPECT_NE(hs_.close_reason().find("too long"), std::string::npos);
}

TEST_F(HandshakeTest, HugeOptionLengthCloses) {
  Start();
  Outcome r = Drive(&hs_, OptionHeader(kOptExportName, 0xffffffff));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(hs_.BytesWanted(), 0u);
}

TEST_F(HandshakeTest, MoreThan1024OptionsClose) {
  Start();
  Bytes many;
  for (uint32_t i = 0; i < kMaxOptions; ++i) {
    Bytes o = Option(kOptStructuredReply);
    many.insert(many.end(), o.begin(), o.end());
  }
  Outcome r = Drive(&hs_, many);
  ASSERT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(hs_.options_seen(), kMaxOptions);
  const size_t replies_before = r.out.size();
  EXPECT_GT(replies_before, 0u);
  r = Drive(&hs_, Option(kOptList));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(hs_.close_reason(), "too many options");
}

TEST_F(HandshakeTest, The1024thOptionMayStillSelectAnExport) {
  Start(kClientFlagNoZeroes);
  Bytes many;
  for (uint32_t i = 0; i + 1 < kMaxOptions; ++i) {
    Bytes o = Option(kOptList);
    many.insert(many.end(), o.begin(), o.end());
  }
  Bytes go = Option(kOptExportName, Bytes{'r', 'o'});
  many.insert(many.end(), go.begin(), go.end());
  EXPECT_EQ(Drive(&hs_, many).state, State::kTransmission);
}

TEST_F(HandshakeTest, FeedingTheWrongByteCountCloses) {
  Bytes three = {0, 0, 0};
  Bytes out;
  EXPECT_EQ(hs_.Feed(three, &out), State::kClose);
  EXPECT_TRUE(out.empty());
  EXPECT_NE(hs_.close_reason().find("internal"), std::string::npos);
}

TEST_F(HandshakeTest, FeedAfterTheEndIsANoOp) {
  Start();
  ASSERT_EQ(Drive(&hs_, Option(kOptAbort)).state, State::kClose);
  Bytes out;
  EXPECT_EQ(hs_.Feed(Bytes(16, 0), &out), State::kClose);
  EXPECT_EQ(hs_.Feed({}, &out), State::kClose);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(hs_.close_reason(), "client sent ABORT");
}

TEST_F(HandshakeTest, FeedAfterTransmissionIsANoOp) {
  Start();
  ASSERT_EQ(Drive(&hs_, Option(kOptExportName)).state, State::kTransmission);
  Bytes out;
  EXPECT_EQ(hs_.Feed({}, &out), State::kTransmission);
  EXPECT_TRUE(out.empty());
}

TEST_F(HandshakeTest, HttpGarbageCloses) {
  const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  Outcome r = Drive(&hs_, Bytes(http.begin(), http.end()));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_TRUE(r.out.empty());
}

TEST_F(HandshakeTest, GarbageAfterFlagsClosesOnMagic) {
  Start();
  Outcome r = Drive(&hs_, Bytes(64, 0xff));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(r.consumed, kOptionHeaderSize);
  EXPECT_EQ(hs_.close_reason(), "bad option magic");
}

TEST_F(HandshakeTest, WholeSessionFedOneChunkAtATime) {
  // A typical qemu-style session: LIST, INFO, then EXPORT_NAME.
  const Bytes session =
      Cat({ClientFlags(kClientFlagFixedNewstyle | kClientFlagNoZeroes),
           Option(kOptList), Option(kOptInfo, GoData("ro")),
           Option(kOptExportName, Bytes{'d', 'i', 's', 'k', '0'}),
           Bytes{0xde, 0xad}});  // first bytes of transmission: not consumed
  Outcome r = Drive(&hs_, session);
  EXPECT_EQ(r.state, State::kTransmission);
  EXPECT_EQ(r.consumed, session.size() - 2);
  EXPECT_EQ(hs_.options_seen(), 3u);
  EXPECT_EQ(hs_.selected_export().name, "disk0");
}

}  // namespace
}  // namespace rbdnbd::nbd
