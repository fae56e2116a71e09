// Drives a Connection over a socketpair as the kernel's nbd driver would:
// no handshake, pipelined requests, replies matched by cookie. The backend is
// real (memory, with fault and delay decorators from export specs).
#include "device/connection.h"

#include <sys/socket.h>

#include <future>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "exports/export_factory.h"
#include "kernel_peer.h"
#include "nbd/protocol.h"
#include "uring/buffer_pool.h"
#include "uring/event_loop.h"

namespace rbdnbd {
namespace {

using testing::KernelPeer;
using testing::Pattern;

class ConnectionTest : public ::testing::Test {
 protected:
  void Serve(const std::string& spec) {
    auto parsed = ParseExportSpec(spec);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    exp_ = Export{parsed->name, parsed->description, parsed->backend};
    auto loop = EventLoop::Create({.entries = 64, .name = "conn-test"});
    ASSERT_TRUE(loop.has_value());
    loop_ = std::move(loop).value();
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peer_fd_.Reset(sv[1]);
    peer_ = std::make_unique<KernelPeer>(sv[1]);
    conn_ = Connection::ForTransmission(*loop_, pool_, UniqueFd(sv[0]), exp_, "test",
                                        [this](Connection*) { closed_.set_value(); });
    loop_->Post([this] { conn_->Start(); });
    thread_ = std::thread([this] { loop_->Run(); });
  }

  // Waits (bounded) for the connection to close itself.
  bool WaitClosed() {
    return closed_future_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }

  void TearDown() override {
    if (!loop_) return;
    peer_fd_.Reset();  // the kernel hangs up
    EXPECT_TRUE(WaitClosed()) << "connection did not close after the peer hung up";
    loop_->Stop();
    thread_.join();
    conn_.reset();
  }

  nbd::SimpleReply Roundtrip(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0,
                             const std::vector<uint8_t>& payload = {}, std::vector<uint8_t>* data = nullptr) {
    static uint64_t cookie = 1000;
    uint64_t c = ++cookie;
    EXPECT_TRUE(peer_->Send(type, c, offset, length, flags, payload));
    nbd::SimpleReply r{};
    EXPECT_TRUE(peer_->Receive(&r, data, type == nbd::kCmdRead ? length : 0));
    EXPECT_EQ(r.cookie, c);
    return r;
  }

  Export exp_;
  BufferPool pool_;  // outlives the connection
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Connection> conn_;
  std::thread thread_;
  UniqueFd peer_fd_;
  std::unique_ptr<KernelPeer> peer_;
  std::promise<void> closed_;
  std::future<void> closed_future_ = closed_.get_future();
};

TEST_F(ConnectionTest, WriteThenReadReturnsTheData) {
  Serve("name=m,backend=memory,size=16M");
  auto data = Pattern(65536, 1);
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, 4096, 65536, 0, data).error, 0u);
  std::vector<uint8_t> back;
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 4096, 65536, 0, {}, &back).error, 0u);
  EXPECT_EQ(back, data);
}

TEST_F(ConnectionTest, UnalignedAndLargeRequests) {
  Serve("name=m,backend=memory,size=64M");
  auto big = Pattern(32u << 20, 2);  // the maximum request, received straight into its buffer
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, 1, 32u << 20, 0, big).error, 0u);
  std::vector<uint8_t> back;
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 1, 32u << 20, 0, {}, &back).error, 0u);
  EXPECT_TRUE(back == big);
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 12345, 7, 0, {}, &back).error, 0u);
  EXPECT_TRUE(std::equal(back.begin(), back.end(), big.begin() + 12344));
}

TEST_F(ConnectionTest, PipelinedRequestsAllAnsweredWithoutInterleaving) {
  Serve("name=m,backend=memory,size=16M");
  constexpr int kN = 300;  // more than kMaxInflight: exercises back-pressure
  for (int i = 0; i < kN; i++) {
    ASSERT_TRUE(peer_->Send(nbd::kCmdWrite, i, uint64_t(i) * 8192, 8192, 0, Pattern(8192, i)));
  }
  std::set<uint64_t> seen;
  for (int i = 0; i < kN; i++) {
    nbd::SimpleReply r{};
    ASSERT_TRUE(peer_->Receive(&r));
    EXPECT_EQ(r.error, 0u);
    EXPECT_TRUE(seen.insert(r.cookie).second) << "duplicate reply for " << r.cookie;
  }
  for (int i = 0; i < kN; i++) ASSERT_TRUE(peer_->Send(nbd::kCmdRead, 10000 + i, uint64_t(i) * 8192, 8192));
  for (int i = 0; i < kN; i++) {
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    ASSERT_TRUE(peer_->Receive(&r, &data, 8192)) << "reply " << i << " was malformed or interleaved";
    ASSERT_GE(r.cookie, 10000u);
    EXPECT_EQ(data, Pattern(8192, static_cast<uint32_t>(r.cookie - 10000)));
  }
}

TEST_F(ConnectionTest, SlowRequestsCompleteOutOfOrder) {
  Serve("name=m,backend=memory,size=16M,delay-read=200ms");
  ASSERT_TRUE(peer_->Send(nbd::kCmdRead, 1, 0, 4096));        // slow
  ASSERT_TRUE(peer_->Send(nbd::kCmdWrite, 2, 0, 512, 0, Pattern(512, 9)));  // fast
  nbd::SimpleReply r{};
  ASSERT_TRUE(peer_->Receive(&r));
  EXPECT_EQ(r.cookie, 2u);
  std::vector<uint8_t> data;
  ASSERT_TRUE(peer_->Receive(&r, &data, 4096));
  EXPECT_EQ(r.cookie, 1u);
}

TEST_F(ConnectionTest, FlushTrimZeroAndFuaSucceed) {
  Serve("name=m,backend=memory,size=16M");
  auto data = Pattern(8192, 3);
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, 0, 8192, nbd::kCmdFlagFua, data).error, 0u);
  EXPECT_EQ(Roundtrip(nbd::kCmdFlush, 0, 0).error, 0u);
  EXPECT_EQ(Roundtrip(nbd::kCmdWriteZeroes, 0, 4096, nbd::kCmdFlagNoHole).error, 0u);
  EXPECT_EQ(Roundtrip(nbd::kCmdTrim, 4096, 4096).error, 0u);
  EXPECT_EQ(Roundtrip(nbd::kCmdCache, 0, 8192).error, 0u);
  std::vector<uint8_t> back;
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 8192, 0, {}, &back).error, 0u);
  EXPECT_EQ(back, std::vector<uint8_t>(8192, 0));
}

TEST_F(ConnectionTest, BadRequestsGetErrorsAndTheStreamStaysInSync) {
  Serve("name=m,backend=memory,size=1M");
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 1u << 20, 4096).error, nbd::kNbdEINVAL);      // past the end
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, (1u << 20) - 1, 2, 0, {1, 2}).error, nbd::kNbdENOSPC);
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 0).error, nbd::kNbdEINVAL);                // zero length
  EXPECT_EQ(Roundtrip(77, 0, 4096).error, nbd::kNbdEINVAL);                         // unknown command
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 4096, 1u << 9).error, nbd::kNbdEINVAL);     // unknown flag
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, ~0ull - 10, 4096).error, nbd::kNbdEINVAL);     // offset overflow
  // A write over the 32 MiB limit: its payload is drained, not interpreted.
  std::vector<uint8_t> huge((32u << 20) + 4096, 0x25);
  EXPECT_NE(Roundtrip(nbd::kCmdWrite, 0, static_cast<uint32_t>(huge.size()), 0, huge).error, 0u);
  // The connection still works.
  auto data = Pattern(4096, 4);
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, 0, 4096, 0, data).error, 0u);
  std::vector<uint8_t> back;
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 4096, 0, {}, &back).error, 0u);
  EXPECT_EQ(back, data);
  EXPECT_GE(conn_->stats().errors, 7u);
}

TEST_F(ConnectionTest, WriteToReadOnlyExportIsEpermAndDrained) {
  Serve("name=m,backend=memory,size=1M,read-only");
  EXPECT_EQ(Roundtrip(nbd::kCmdWrite, 0, 4096, 0, Pattern(4096, 5)).error, nbd::kNbdEPERM);
  EXPECT_EQ(Roundtrip(nbd::kCmdTrim, 0, 4096).error, nbd::kNbdEPERM);  // read-only is checked first
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 4096).error, 0u);
}

TEST_F(ConnectionTest, BackendErrorsReachTheClient) {
  Serve("name=m,backend=memory,size=1M,fault-errno=ENOSPC,fault-ops=write,fault-every=2");
  int enospc = 0;
  for (int i = 0; i < 10; i++) {
    auto r = Roundtrip(nbd::kCmdWrite, 0, 4096, 0, Pattern(4096, i));
    if (r.error == nbd::kNbdENOSPC) enospc++;
    else EXPECT_EQ(r.error, 0u);
  }
  EXPECT_EQ(enospc, 5);
}

TEST_F(ConnectionTest, BadMagicClosesOnlyThisConnection) {
  Serve("name=m,backend=memory,size=1M");
  uint8_t junk[28] = {0xde, 0xad, 0xbe, 0xef};
  ASSERT_TRUE(peer_->SendRaw(junk, sizeof(junk)));
  EXPECT_TRUE(peer_->WaitForEof());
  EXPECT_TRUE(WaitClosed());
}

TEST_F(ConnectionTest, PeerDroppingMidPayloadClosesCleanly) {
  Serve("name=m,backend=memory,size=64M");
  nbd::Request r{0, nbd::kCmdWrite, 1, 0, 1u << 20};
  uint8_t hdr[28];
  nbd::EncodeRequest(r, hdr);
  ASSERT_TRUE(peer_->SendRaw(hdr, sizeof(hdr)));
  auto half = Pattern(300000, 6);
  ASSERT_TRUE(peer_->SendRaw(half.data(), half.size()));
  peer_fd_.Reset();
  EXPECT_TRUE(WaitClosed());  // and ASan checks that the half-filled buffer was freed
}

TEST_F(ConnectionTest, DiscWaitsForInflightRequestsThenCloses) {
  Serve("name=m,backend=memory,size=1M,delay-write=100ms");
  ASSERT_TRUE(peer_->Send(nbd::kCmdWrite, 1, 0, 4096, 0, Pattern(4096, 7)));
  ASSERT_TRUE(peer_->Send(nbd::kCmdDisc, 2, 0, 0));
  nbd::SimpleReply r{};
  ASSERT_TRUE(peer_->Receive(&r));  // the write's reply still arrives
  EXPECT_EQ(r.cookie, 1u);
  EXPECT_EQ(r.error, 0u);
  EXPECT_TRUE(peer_->WaitForEof());
  EXPECT_TRUE(WaitClosed());
}

TEST_F(ConnectionTest, ShutdownDrainsInflightRequests) {
  Serve("name=m,backend=memory,size=1M,delay=100ms");
  for (uint64_t i = 0; i < 8; i++) ASSERT_TRUE(peer_->Send(nbd::kCmdRead, i, i * 4096, 4096));
  // Shut down only once all 8 reached the backend (a fixed sleep lost the race on a
  // loaded machine: requests not yet parsed are not in flight, and are not answered).
  auto requests_seen = [this] {
    std::promise<uint64_t> p;
    loop_->Post([&] { p.set_value(conn_->stats().requests); });
    return p.get_future().get();
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (requests_seen() < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(requests_seen(), 8u);
  loop_->Post([this] { conn_->Shutdown(); });
  std::set<uint64_t> seen;
  for (int i = 0; i < 8; i++) {
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    ASSERT_TRUE(peer_->Receive(&r, &data, 4096));
    EXPECT_EQ(r.error, 0u);
    seen.insert(r.cookie);
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_TRUE(peer_->WaitForEof());
}

TEST_F(ConnectionTest, ResizeChangesTheValidRange) {
  Serve("name=m,backend=memory,size=1M");
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 1u << 20, 4096).error, nbd::kNbdEINVAL);
  std::promise<void> done;
  loop_->Post([&] { conn_->SetExportSize(512u << 10); done.set_value(); });
  done.get_future().wait();
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 600u << 10, 4096).error, nbd::kNbdEINVAL);
  EXPECT_EQ(Roundtrip(nbd::kCmdRead, 0, 4096).error, 0u);
}

}  // namespace
}  // namespace rbdnbd
