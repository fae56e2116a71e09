// The quiesce state machine (quiesce_session.h) with a fake Quiescer: what
// librbd is told, and when the device is unquiesced.
#include "control/quiesce_session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace rbdnbd {
namespace {

using namespace std::chrono_literals;

// Records calls; Quiesce() returns `result` after `delay` (cut at the
// deadline with -ETIMEDOUT, as the real ones are).
class FakeQuiescer final : public Quiescer {
 public:
  struct Shared {
    std::mutex mu;
    std::vector<std::string> calls;
    int result = 0;
    std::chrono::milliseconds delay{0};
    int quiesced = 0;  // how many are in place now: must end at 0
  };
  explicit FakeQuiescer(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  int Quiesce(QuiesceClock::time_point deadline) override {
    std::chrono::milliseconds delay;
    int result;
    {
      std::lock_guard lock(s_->mu);
      s_->calls.push_back("quiesce");
      delay = s_->delay;
      result = s_->result;
    }
    if (QuiesceClock::now() + delay > deadline) {
      std::this_thread::sleep_until(deadline);
      return -ETIMEDOUT;
    }
    std::this_thread::sleep_for(delay);
    std::lock_guard lock(s_->mu);
    if (result == 0) s_->quiesced++;
    return result;
  }
  void Unquiesce() override {
    std::lock_guard lock(s_->mu);
    s_->calls.push_back("unquiesce");
    if (s_->quiesced > 0) s_->quiesced--;
  }

 private:
  std::shared_ptr<Shared> s_;
};

class QuiesceSessionTest : public ::testing::Test {
 protected:
  void Make(std::chrono::milliseconds timeout) {
    session_ = std::make_unique<QuiesceSession>("/dev/nbd9, rbd/img", std::make_unique<FakeQuiescer>(fake_), timeout,
                                                [this](int r) {
                                                  std::lock_guard lock(mu_);
                                                  results_.push_back(r);
                                                });
  }
  // Waits until `n` completions were handed to librbd.
  bool WaitCompleted(uint64_t n, std::chrono::milliseconds bound = 5s) {
    auto end = std::chrono::steady_clock::now() + bound;
    while (session_->completed() < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }
  bool WaitState(QuiesceSession::State s, std::chrono::milliseconds bound = 5s) {
    auto end = std::chrono::steady_clock::now() + bound;
    while (session_->state() != s) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }
  std::vector<int> Results() {
    std::lock_guard lock(mu_);
    return results_;
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(fake_->mu);
    return fake_->calls;
  }

  std::shared_ptr<FakeQuiescer::Shared> fake_ = std::make_shared<FakeQuiescer::Shared>();
  std::mutex mu_;
  std::vector<int> results_;
  std::unique_ptr<QuiesceSession> session_;
};

TEST_F(QuiesceSessionTest, QuiesceCompletesWithZeroAndUnquiesceUndoesIt) {
  Make(5s);
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(1));
  EXPECT_EQ(Results(), std::vector<int>{0});
  EXPECT_EQ(session_->state(), QuiesceSession::State::kQuiesced);
  session_->OnUnquiesce();
  ASSERT_TRUE(WaitState(QuiesceSession::State::kIdle));
  EXPECT_EQ(Calls(), (std::vector<std::string>{"quiesce", "unquiesce"}));
  EXPECT_EQ(fake_->quiesced, 0);
}

TEST_F(QuiesceSessionTest, AFailedQuiesceCompletesWithItsErrorAndWaitsForNoUnquiesce) {
  fake_->result = -EIO;
  Make(5s);
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(1));
  EXPECT_EQ(Results(), std::vector<int>{-EIO});
  EXPECT_EQ(session_->state(), QuiesceSession::State::kIdle);
  session_->OnUnquiesce();  // librbd's, for the others: nothing to undo here
  session_->Shutdown();
  EXPECT_EQ(Calls(), std::vector<std::string>{"quiesce"});
}

TEST_F(QuiesceSessionTest, NoUnquiesceWithinTheTimeoutUnquiescesAnyway) {
  Make(300ms);
  auto start = std::chrono::steady_clock::now();
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(1));
  ASSERT_TRUE(WaitState(QuiesceSession::State::kIdle, 3s));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(Calls(), (std::vector<std::string>{"quiesce", "unquiesce"}));
  EXPECT_EQ(fake_->quiesced, 0);
  // The late unquiesce finds nothing to do.
  session_->OnUnquiesce();
  session_->Shutdown();
  EXPECT_EQ(Calls().size(), 2u);
}

// ETIME, not ETIMEDOUT: librbd retries a remote ETIMEDOUT forever.
TEST_F(QuiesceSessionTest, AQuiesceSlowerThanTheTimeoutCompletesWithEtimeWithinTheBound) {
  fake_->delay = 10s;
  Make(200ms);
  auto start = std::chrono::steady_clock::now();
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(1, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(Results(), std::vector<int>{-ETIME});
  EXPECT_EQ(session_->state(), QuiesceSession::State::kIdle);
  EXPECT_EQ(fake_->quiesced, 0);
}

TEST_F(QuiesceSessionTest, ShutdownWhileQuiescedUnquiescesBeforeReturning) {
  Make(30s);
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(1));
  auto start = std::chrono::steady_clock::now();
  session_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(session_->state(), QuiesceSession::State::kIdle);
  EXPECT_EQ(fake_->quiesced, 0);
  EXPECT_EQ(Calls(), (std::vector<std::string>{"quiesce", "unquiesce"}));
}

TEST_F(QuiesceSessionTest, AfterShutdownEveryQuiesceIsAnsweredWithEshutdownAndNothingRuns) {
  Make(5s);
  session_->Shutdown();
  session_->OnQuiesce();
  session_->OnQuiesce();
  ASSERT_TRUE(WaitCompleted(2));
  EXPECT_EQ(Results(), (std::vector<int>{-ESHUTDOWN, -ESHUTDOWN}));
  EXPECT_TRUE(Calls().empty());
}

TEST_F(QuiesceSessionTest, AQuiesceThatSucceedsAsShutdownStartsIsUndoneAndFailsTheSnapshot) {
  fake_->delay = 300ms;
  Make(5s);
  session_->OnQuiesce();
  ASSERT_TRUE(WaitState(QuiesceSession::State::kQuiescing));
  session_->Shutdown();  // returns once the in-flight quiesce is over and undone
  EXPECT_EQ(session_->state(), QuiesceSession::State::kIdle);
  ASSERT_TRUE(WaitCompleted(1));
  EXPECT_EQ(Results(), std::vector<int>{-ESHUTDOWN});
  EXPECT_EQ(fake_->quiesced, 0);
}

TEST_F(QuiesceSessionTest, JoinAnswersQuiescesStillQueued) {
  fake_->delay = 200ms;
  Make(5s);
  session_->OnQuiesce();
  session_->OnQuiesce();
  session_->OnQuiesce();
  session_.reset();  // Shutdown + Join: every queued quiesce gets exactly one answer
  std::vector<int> r = Results();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(fake_->quiesced, 0);
}

TEST_F(QuiesceSessionTest, SeveralSnapshotsInARowEachGetOneAnswerAndOneUnquiesce) {
  Make(5s);
  for (int i = 0; i < 3; i++) {
    session_->OnQuiesce();
    ASSERT_TRUE(WaitCompleted(i + 1));
    session_->OnUnquiesce();
    ASSERT_TRUE(WaitState(QuiesceSession::State::kIdle));
  }
  EXPECT_EQ(Results(), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(Calls().size(), 6u);
  EXPECT_EQ(fake_->quiesced, 0);
}

}  // namespace
}  // namespace rbdnbd
