// Drives a ConnectionGroup over socketpairs on a real LoopPool, the way a
// KernelDevice uses it: each peer speaks to its connection as the kernel's
// nbd driver would (see kernel_peer.h). The backends are real memory
// backends; only the resize test wraps one to make its size settable.
#include "device/connection_group.h"

#include <sys/socket.h>

#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "exports/export_factory.h"
#include "backend/memory_backend.h"
#include "kernel_peer.h"
#include "nbd/protocol.h"

namespace rbdnbd {
namespace {

using testing::KernelPeer;
using testing::Pattern;

// A memory backend whose reported size can change, as an RBD image's does
// after `rbd resize`. Requests go to a mapping as large as the largest size.
class ResizableBackend final : public Backend {
 public:
  ResizableBackend(std::shared_ptr<Backend> inner, uint64_t size) : inner_(std::move(inner)), size_(size) {}
  BackendCaps Capabilities() const override {
    BackendCaps caps = inner_->Capabilities();
    caps.size = size_.load();
    return caps;
  }
  void Submit(EventLoop& loop, IoRequest& io) override { inner_->Submit(loop, io); }
  std::string Describe() const override { return "resizable " + inner_->Describe(); }
  void set_size(uint64_t size) { size_ = size; }

 private:
  std::shared_ptr<Backend> inner_;
  std::atomic<uint64_t> size_;
};

class ConnectionGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loops = LoopPool::Create(2, "group-test");
    ASSERT_TRUE(loops.has_value()) << loops.error().message;
    loops_ = std::move(loops).value();
    loops_->Start();
    group_ = std::make_unique<ConnectionGroup>(*loops_, [this] { lost_++; });
  }

  void TearDown() override {
    peer_fds_.clear();  // every kernel end hangs up
    group_.reset();     // waits for the connections to close
    loops_->Stop();
  }

  void UseSpec(const std::string& spec) {
    auto parsed = ParseExportSpec(spec);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    exp_ = Export{parsed->name, parsed->description, parsed->backend};
  }

  // One socketpair: our end to the group, the other to a KernelPeer.
  ConnectionGroup::Id AddConnection() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peer_fds_.emplace_back(sv[1]);
    peers_.push_back(std::make_unique<KernelPeer>(sv[1]));
    Export exp = exp_;
    std::string peer = "peer#" + std::to_string(peers_.size() - 1);
    return group_->Add(UniqueFd(sv[0]), [exp, peer](EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                                    Connection::ClosedFn on_closed) {
      return Connection::ForTransmission(loop, pool, std::move(fd), exp, peer, std::move(on_closed));
    });
  }

  uint32_t ReadError(KernelPeer& peer, uint64_t offset, uint32_t length = 4096) {
    uint64_t c = ++cookie_;
    EXPECT_TRUE(peer.Send(nbd::kCmdRead, c, offset, length));
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    EXPECT_TRUE(peer.Receive(&r, &data, length)) << "no reply at offset " << offset;
    EXPECT_EQ(r.cookie, c);
    return r.error;
  }

  // live() drops when a closed connection's callback has run on its loop.
  bool WaitLive(size_t want) {
    for (int i = 0; i < 1000; i++) {
      if (group_->live() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Holds every loop inside a task until the returned promise is set.
  std::shared_ptr<std::promise<void>> BlockLoops() {
    auto release = std::make_shared<std::promise<void>>();
    std::shared_future<void> gate = release->get_future().share();
    for (size_t i = 0; i < loops_->size(); i++) {
      std::promise<void> entered;
      auto in = entered.get_future();
      loops_->loop(i).Post([gate, &entered] {
        entered.set_value();
        gate.wait();
      });
      in.wait();
    }
    return release;
  }

  // Returns once every loop has run everything posted to it before.
  void DrainLoops() {
    for (size_t i = 0; i < loops_->size(); i++) {
      std::promise<void> ran;
      auto f = ran.get_future();
      loops_->loop(i).Post([&ran] { ran.set_value(); });
      f.wait();
    }
  }

  std::unique_ptr<LoopPool> loops_;
  Export exp_;
  std::vector<UniqueFd> peer_fds_;
  std::vector<std::unique_ptr<KernelPeer>> peers_;
  std::unique_ptr<ConnectionGroup> group_;
  std::atomic<int> lost_{0};
  uint64_t cookie_ = 0;
};

TEST_F(ConnectionGroupTest, ServesEveryConnectionAndCountsThem) {
  UseSpec("name=m,backend=memory,size=16M");
  for (int i = 0; i < 4; i++) AddConnection();
  EXPECT_EQ(group_->live(), 4u);
  // A write on one connection is seen by the others (one backend, multi-conn).
  for (size_t i = 0; i < peers_.size(); i++) {
    auto data = Pattern(8192, static_cast<uint32_t>(i));
    ASSERT_TRUE(peers_[i]->Send(nbd::kCmdWrite, 100 + i, i * 8192, 8192, 0, data));
    nbd::SimpleReply r{};
    ASSERT_TRUE(peers_[i]->Receive(&r));
    EXPECT_EQ(r.error, 0u);
    EXPECT_EQ(r.cookie, 100 + i);
  }
  for (size_t i = 0; i < peers_.size(); i++) {
    KernelPeer& reader = *peers_[(i + 1) % peers_.size()];
    ASSERT_TRUE(reader.Send(nbd::kCmdRead, 200 + i, i * 8192, 8192));
    nbd::SimpleReply r{};
    std::vector<uint8_t> back;
    ASSERT_TRUE(reader.Receive(&r, &back, 8192));
    EXPECT_EQ(r.error, 0u);
    EXPECT_EQ(back, Pattern(8192, static_cast<uint32_t>(i)));
  }
  EXPECT_EQ(group_->live(), 4u);
  EXPECT_EQ(lost_.load(), 0);
}

TEST_F(ConnectionGroupTest, APeerHangingUpIsALoss) {
  UseSpec("name=m,backend=memory,size=1M");
  for (int i = 0; i < 3; i++) AddConnection();
  peer_fds_[1].Reset();  // the kernel shut one socket (a timed-out request)
  ASSERT_TRUE(WaitLive(2));
  EXPECT_EQ(lost_.load(), 1);
  EXPECT_EQ(ReadError(*peers_[0], 0), 0u);
  EXPECT_EQ(ReadError(*peers_[2], 0), 0u);
}

TEST_F(ConnectionGroupTest, ShutdownDrainsInflightRequestsAndIsNoLoss) {
  UseSpec("name=m,backend=memory,size=1M,delay=100ms");
  for (int i = 0; i < 3; i++) AddConnection();
  for (size_t i = 0; i < peers_.size(); i++) ASSERT_TRUE(peers_[i]->Send(nbd::kCmdRead, i, 0, 4096));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let them reach the backend
  group_->Shutdown();
  for (size_t i = 0; i < peers_.size(); i++) {
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    ASSERT_TRUE(peers_[i]->Receive(&r, &data, 4096)) << "the read in flight on " << i << " got no reply";
    EXPECT_EQ(r.error, 0u);
    EXPECT_EQ(r.cookie, i);
    EXPECT_TRUE(peers_[i]->WaitForEof());
  }
  EXPECT_TRUE(group_->WaitClosed(std::chrono::seconds(10)));
  EXPECT_EQ(group_->live(), 0u);
  EXPECT_EQ(lost_.load(), 0);
}

TEST_F(ConnectionGroupTest, ExpectCloseSilencesTheLossOfAHangUp) {
  UseSpec("name=m,backend=memory,size=1M");
  AddConnection();
  group_->ExpectClose();  // as before DISCONNECT: the kernel hangs up on purpose
  peer_fds_[0].Reset();
  EXPECT_TRUE(group_->WaitClosed(std::chrono::seconds(10)));
  EXPECT_EQ(lost_.load(), 0);
}

TEST_F(ConnectionGroupTest, ForceCloseOfSomeLeavesTheOthersServing) {
  UseSpec("name=m,backend=memory,size=1M");
  std::vector<ConnectionGroup::Id> ids;
  for (int i = 0; i < 3; i++) ids.push_back(AddConnection());
  group_->ForceClose({ids[0], ids[2]});
  EXPECT_TRUE(peers_[0]->WaitForEof());
  EXPECT_TRUE(peers_[2]->WaitForEof());
  ASSERT_TRUE(WaitLive(1));
  EXPECT_EQ(ReadError(*peers_[1], 0), 0u);
  EXPECT_EQ(lost_.load(), 0) << "a connection the group closed itself is no loss";
  group_->ForceClose({ids[0]});  // already gone: nothing happens
  EXPECT_EQ(group_->live(), 1u);
}

TEST_F(ConnectionGroupTest, ForceCloseEndsConnectionsThatWouldNotDrain) {
  UseSpec("name=m,backend=memory,size=1M");
  for (int i = 0; i < 2; i++) AddConnection();
  group_->ForceClose();
  for (auto& p : peers_) EXPECT_TRUE(p->WaitForEof());
  EXPECT_TRUE(group_->WaitClosed(std::chrono::seconds(10)));
  EXPECT_EQ(lost_.load(), 0);
}

TEST_F(ConnectionGroupTest, AConnectionCountsFromAddEvenBeforeItsLoopRuns) {
  UseSpec("name=m,backend=memory,size=1M");
  auto release = BlockLoops();
  AddConnection();
  EXPECT_EQ(group_->live(), 1u);
  EXPECT_FALSE(group_->WaitClosed(std::chrono::milliseconds(50)));
  release->set_value();
  EXPECT_EQ(ReadError(*peers_[0], 0), 0u);
}

TEST_F(ConnectionGroupTest, AfterSetExportSizeEveryConnectionServesTheNewRange) {
  auto inner = MemoryBackend::Create(2u << 20);
  ASSERT_TRUE(inner.has_value());
  auto backend = std::make_shared<ResizableBackend>(*inner, 1u << 20);
  exp_ = Export{"r", "", backend};
  for (int i = 0; i < 4; i++) AddConnection();
  const uint64_t past_old_end = (1u << 20) + (256u << 10);
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, past_old_end), nbd::kNbdEINVAL);

  backend->set_size(2u << 20);
  auto grown = group_->SetExportSize(2u << 20, std::chrono::seconds(10));
  ASSERT_TRUE(grown) << grown.error().message;
  // At once, no retry: the kernel may send these right after RECONFIGURE.
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, past_old_end), 0u);

  backend->set_size(1u << 20);
  ASSERT_TRUE(group_->SetExportSize(1u << 20, std::chrono::seconds(10)));
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, past_old_end), nbd::kNbdEINVAL);
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, 0), 0u);
}

TEST_F(ConnectionGroupTest, SetExportSizeTimesOutWhileALoopIsStuck) {
  UseSpec("name=m,backend=memory,size=1M");
  for (int i = 0; i < 2; i++) AddConnection();  // one on each loop
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, 0), 0u);  // both built
  auto release = BlockLoops();
  auto r = group_->SetExportSize(512u << 10, std::chrono::milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_NE(r.error().message.find("2 of 2"), std::string::npos) << r.error().message;
  release->set_value();
  // The size still arrives once the loops move again (posts run in order, so
  // after DrainLoops() it has).
  DrainLoops();
  for (auto& p : peers_) EXPECT_EQ(ReadError(*p, 768u << 10), nbd::kNbdEINVAL);
}

TEST_F(ConnectionGroupTest, SetExportSizeWithNoConnectionSucceeds) {
  EXPECT_TRUE(group_->SetExportSize(4096, std::chrono::milliseconds(10)));
}

TEST_F(ConnectionGroupTest, DestroyingTheGroupClosesWhatIsLeft) {
  UseSpec("name=m,backend=memory,size=1M");
  for (int i = 0; i < 2; i++) AddConnection();
  group_.reset();
  for (auto& p : peers_) EXPECT_TRUE(p->WaitForEof());
  EXPECT_EQ(lost_.load(), 0);
}

}  // namespace
}  // namespace rbdnbd
