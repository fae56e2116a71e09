// Handshake: NBD_OPT_GO and NBD_OPT_INFO, well-formed and malformed.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "handshake_test_util.h"
#include "nbd/handshake.h"

namespace rbdnbd::nbd {
namespace {

using namespace rbdnbd::nbd::testing;  // NOLINT
using State = Handshake::State;

Bytes InfoExport(uint64_t size, uint16_t flags) {
  Bytes d;
  Be(&d, kInfoExport, 2);
  Be(&d, size, 8);
  Be(&d, flags, 2);
  return d;
}

Bytes InfoBlockSize(uint32_t min, uint32_t pref, uint32_t max) {
  Bytes d;
  Be(&d, kInfoBlockSize, 2);
  Be(&d, min, 4);
  Be(&d, pref, 4);
  Be(&d, max, 4);
  return d;
}

Bytes InfoString(uint16_t type, std::string_view s) {
  Bytes d;
  Be(&d, type, 2);
  Str(&d, s);
  return d;
}

constexpr uint16_t kDisk0Flags =
    kFlagHasFlags | kFlagSendFlush | kFlagSendTrim | kFlagSendFua;

class GoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Drive(&hs_, ClientFlags(kClientFlagFixedNewstyle)).state,
              State::kNegotiating);
  }
  // Sends a malformed GO/INFO and checks for ERR_INVALID + still negotiating.
  void ExpectInvalid(uint32_t opt, const Bytes& data) {
    Outcome r = Drive(&hs_, Option(opt, data));
    EXPECT_EQ(r.state, State::kNegotiating);
    ASSERT_GE(r.out.size(), kOptionReplyHeaderSize);
    EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(opt, kRepErrInvalid)));
    EXPECT_EQ(r.out.size(), kOptionReplyHeaderSize + ReplyLength(r.out, 0));
    EXPECT_EQ(hs_.BytesWanted(), kOptionHeaderSize);
  }

  TwoExports dir_;
  Handshake hs_{dir_};
};

TEST_F(GoTest, GoSendsExportAndBlockSizeThenAck) {
  Outcome r = Drive(&hs_, Option(kOptGo, GoData("disk0")));
  ASSERT_EQ(r.state, State::kTransmission);
  EXPECT_EQ(r.out,
            Cat({Reply(kOptGo, kRepInfo, InfoExport(1 << 20, kDisk0Flags)),
                 Reply(kOptGo, kRepInfo,
                       InfoBlockSize(1, 4096, kMaxRequestLength)),
                 Reply(kOptGo, kRepAck)}));
  EXPECT_EQ(hs_.selected_export().name, "disk0");
  EXPECT_EQ(hs_.selected_export().transmission_flags, kDisk0Flags);
  EXPECT_EQ(hs_.BytesWanted(), 0u);
}

TEST_F(GoTest, GoIgnoresNoZeroes) {
  Handshake hs(dir_);
  Drive(&hs, ClientFlags(kClientFlagNoZeroes));
  Outcome r = Drive(&hs, Option(kOptGo, GoData("ro")));
  ASSERT_EQ(r.state, State::kTransmission);
  EXPECT_EQ(r.out,
            Cat({Reply(kOptGo, kRepInfo,
                       InfoExport(64 << 10, kFlagHasFlags | kFlagReadOnly)),
                 Reply(kOptGo, kRepInfo, InfoBlockSize(512, 65536, 1 << 20)),
                 Reply(kOptGo, kRepAck)}));
}

TEST_F(GoTest, InfoRepliesLikeGoButKeepsNegotiating) {
  Outcome r = Drive(&hs_, Option(kOptInfo, GoData("disk0")));
  ASSERT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(r.out,
            Cat({Reply(kOptInfo, kRepInfo, InfoExport(1 << 20, kDisk0Flags)),
                 Reply(kOptInfo, kRepInfo,
                       InfoBlockSize(1, 4096, kMaxRequestLength)),
                 Reply(kOptInfo, kRepAck)}));
  EXPECT_EQ(hs_.BytesWanted(), kOptionHeaderSize);
  EXPECT_EQ(Drive(&hs_, Option(kOptGo, GoData("ro"))).state,
            State::kTransmission);
  EXPECT_EQ(hs_.selected_export().name, "ro");
}

TEST_F(GoTest, NameAndDescriptionAreSentWhenRequested) {
  Outcome r = Drive(&hs_, Option(kOptGo, GoData("disk0", {kInfoDescription,
                                                      kInfoName})));
  ASSERT_EQ(r.state, State::kTransmission);
  EXPECT_EQ(r.out,
            Cat({Reply(kOptGo, kRepInfo, InfoExport(1 << 20, kDisk0Flags)),
                 Reply(kOptGo, kRepInfo,
                       InfoBlockSize(1, 4096, kMaxRequestLength)),
                 Reply(kOptGo, kRepInfo, InfoString(kInfoName, "disk0")),
                 Reply(kOptGo, kRepInfo,
                       InfoString(kInfoDescription, "first disk")),
                 Reply(kOptGo, kRepAck)}));
}

TEST_F(GoTest, RepeatedAndUnknownInfoRequestsAreHarmless) {
  Outcome r = Drive(&hs_, Option(kOptInfo, GoData("disk0", {kInfoName, kInfoName,
                                                        kInfoExport,
                                                        kInfoBlockSize,
                                                        0x7fff})));
  ASSERT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(r.out,
            Cat({Reply(kOptInfo, kRepInfo, InfoExport(1 << 20, kDisk0Flags)),
                 Reply(kOptInfo, kRepInfo,
                       InfoBlockSize(1, 4096, kMaxRequestLength)),
                 Reply(kOptInfo, kRepInfo, InfoString(kInfoName, "disk0")),
                 Reply(kOptInfo, kRepAck)}));
}

TEST_F(GoTest, DefaultExportReportsItsRealName) {
  Outcome r = Drive(&hs_, Option(kOptGo, GoData("", {kInfoName})));
  ASSERT_EQ(r.state, State::kTransmission);
  const Bytes name_reply = Reply(kOptGo, kRepInfo, InfoString(kInfoName, "disk0"));
  EXPECT_NE(std::search(r.out.begin(), r.out.end(), name_reply.begin(),
                        name_reply.end()),
            r.out.end());
  EXPECT_EQ(hs_.selected_export().name, "disk0");
}

TEST_F(GoTest, EmptyDescriptionIsSentEmptyWhenRequested) {
  Outcome r = Drive(&hs_, Option(kOptInfo, GoData("ro", {kInfoDescription})));
  ASSERT_EQ(r.state, State::kNegotiating);
  const Bytes desc = Reply(kOptInfo, kRepInfo, InfoString(kInfoDescription, ""));
  EXPECT_NE(std::search(r.out.begin(), r.out.end(), desc.begin(), desc.end()),
            r.out.end());
}

TEST_F(GoTest, UnknownExportIsErrUnknownAndNegotiationContinues) {
  Outcome r = Drive(&hs_, Option(kOptGo, GoData("missing")));
  EXPECT_EQ(r.state, State::kNegotiating);
  ASSERT_GE(r.out.size(), kOptionReplyHeaderSize);
  EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(kOptGo, kRepErrUnknown)));
  EXPECT_EQ(r.out.size(), kOptionReplyHeaderSize + ReplyLength(r.out, 0));
  EXPECT_EQ(Drive(&hs_, Option(kOptGo, GoData("disk0"))).state,
            State::kTransmission);
}

TEST_F(GoTest, UnknownExportViaInfoIsErrUnknown) {
  Outcome r = Drive(&hs_, Option(kOptInfo, GoData("missing", {kInfoName})));
  EXPECT_EQ(r.state, State::kNegotiating);
  EXPECT_EQ(ReplyHead(r.out), ReplyHead(Reply(kOptInfo, kRepErrUnknown)));
}

TEST_F(GoTest, EmptyGoIsInvalid) { ExpectInvalid(kOptGo, {}); }

TEST_F(GoTest, TooShortGoIsInvalid) {
  ExpectInvalid(kOptGo, Bytes{0, 0, 0, 0, 0});
  ExpectInvalid(kOptInfo, Bytes{0, 0, 0});
}

TEST_F(GoTest, NameLengthPastTheOptionIsInvalid) {
  Bytes d = GoData("disk0");
  d[3] = 6;  // claims 6 name bytes, only 5 + 2 follow
  ExpectInvalid(kOptGo, d);
  Bytes huge = GoData("disk0");
  huge[0] = 0xff;  // name length 0xff000005
  ExpectInvalid(kOptGo, huge);
}

TEST_F(GoTest, InfoCountTooLargeIsInvalid) {
  Bytes d = GoData("disk0", {kInfoName});
  d[4 + 5 + 1] = 2;  // says 2 requests, carries 1
  ExpectInvalid(kOptGo, d);
}

TEST_F(GoTest, TrailingBytesAreInvalid) {
  Bytes d = GoData("disk0", {kInfoName});
  d.push_back(0);
  ExpectInvalid(kOptGo, d);
  Bytes odd = GoData("disk0");
  odd.push_back(0);  // half an info request
  ExpectInvalid(kOptInfo, odd);
}

TEST_F(GoTest, MalformedGoDoesNotSelectAnything) {
  ExpectInvalid(kOptGo, Bytes{0, 0, 0, 9, 'x'});
  Outcome r = Drive(&hs_, Option(kOptAbort));
  EXPECT_EQ(r.state, State::kClose);
  EXPECT_EQ(r.out, Reply(kOptAbort, kRepAck));
  EXPECT_TRUE(hs_.selected_export().name.empty());
}

}  // namespace
}  // namespace rbdnbd::nbd
