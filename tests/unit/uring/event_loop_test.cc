#include "uring/event_loop.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

std::unique_ptr<EventLoop> MakeLoop() {
  auto loop = EventLoop::Create({.entries = 8, .name = "test"});
  EXPECT_TRUE(loop.has_value()) << loop.error().message;
  return std::move(loop).value();
}

TEST(EventLoopTest, PostFromOtherThreadsRunsOnLoopThreadInOrder) {
  auto loop = MakeLoop();
  std::vector<int> seen;
  std::thread::id loop_thread;
  std::thread t([&] { loop->Run(); });
  for (int i = 0; i < 100; i++) {
    loop->Post([&, i] {
      loop_thread = std::this_thread::get_id();
      EXPECT_TRUE(loop->InLoopThread());
      seen.push_back(i);
    });
  }
  loop->Post([&] { loop->Stop(); });
  std::thread::id worker = t.get_id();
  t.join();
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; i++) EXPECT_EQ(seen[i], i);
  EXPECT_EQ(loop_thread, worker);
}

TEST(EventLoopTest, TasksPostedBeforeStopStillRun) {
  auto loop = MakeLoop();
  int ran = 0;
  loop->Post([&] { ran++; });
  loop->Stop();
  loop->Post([&] { ran++; });
  loop->Run();
  EXPECT_EQ(ran, 2);
}

TEST(EventLoopTest, RunAfterFiresOnLoopThreadAfterDelay) {
  auto loop = MakeLoop();
  auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration fired_after{};
  loop->Post([&] {
    loop->RunAfter(std::chrono::milliseconds(20), [&] {
      fired_after = std::chrono::steady_clock::now() - start;
      loop->Stop();
    });
  });
  loop->Run();
  EXPECT_GE(fired_after, std::chrono::milliseconds(20));
}

TEST(EventLoopTest, PendingTimersAreFreedWithTheLoop) {
  auto loop = MakeLoop();
  bool fired = false;
  loop->Post([&] {
    loop->RunAfter(std::chrono::hours(1), [&] { fired = true; });
    loop->Stop();
  });
  loop->Run();
  loop.reset();  // ASan reports a leak if the timer is not freed
  EXPECT_FALSE(fired);
}

// A ring operation completes through Completion::Complete on the loop thread.
class RecvOp final : public Completion {
 public:
  void Complete(int res, uint32_t) override { result = res; loop->Stop(); }
  EventLoop* loop = nullptr;
  int result = -1;
  char buf[16] = {};
};

TEST(EventLoopTest, SqeCompletionReachesCompletionObject) {
  auto loop = MakeLoop();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  RecvOp op;
  op.loop = loop.get();
  loop->Post([&] { io_uring_prep_recv(loop->GetSqe(&op), sv[0], op.buf, sizeof(op.buf), 0); });
  std::thread t([&] { loop->Run(); });
  ASSERT_EQ(write(sv[1], "hello", 5), 5);
  t.join();
  EXPECT_EQ(op.result, 5);
  EXPECT_STREQ(op.buf, "hello");
  close(sv[0]);
  close(sv[1]);
}

TEST(EventLoopTest, GetSqeNeverFailsWhenRingIsFull) {
  auto loop = MakeLoop();  // 8 entries
  struct Nop final : Completion {
    void Complete(int res, uint32_t) override { EXPECT_EQ(res, 0); (*count)++; }
    int* count;
  };
  int count = 0;
  std::vector<Nop> nops(100);
  loop->Post([&] {
    for (auto& n : nops) {
      n.count = &count;
      io_uring_prep_nop(loop->GetSqe(&n));
    }
    loop->RunAfter(std::chrono::milliseconds(50), [&] { loop->Stop(); });
  });
  loop->Run();
  EXPECT_EQ(count, 100);
}

TEST(EventLoopTest, DeferRunsAfterCurrentBatch) {
  auto loop = MakeLoop();
  std::vector<int> order;
  loop->Post([&] {
    loop->Defer([&] { order.push_back(2); loop->Defer([&] { order.push_back(3); loop->Stop(); }); });
    order.push_back(1);
  });
  loop->Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

// A busy-polling loop must still see every socket completion and every post
// (whether they land while it spins or while it sleeps), and still stop.
TEST(EventLoopTest, BusyPollingLoopMissesNoCompletionOrPost) {
  auto created = EventLoop::Create({.entries = 8, .name = "poll", .busy_poll = std::chrono::microseconds(200)});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  auto loop = std::move(created).value();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // Echo: every byte received on sv[0] is counted and the recv re-armed.
  struct Echo final : Completion {
    void Complete(int res, uint32_t) override {
      ASSERT_GT(res, 0);
      bytes += res;
      io_uring_prep_recv(loop->GetSqe(this), fd, buf, sizeof(buf), 0);
    }
    EventLoop* loop;
    int fd;
    char buf[64];
    int bytes = 0;
  } echo;
  echo.loop = loop.get();
  echo.fd = sv[0];
  loop->Post([&] { io_uring_prep_recv(loop->GetSqe(&echo), sv[0], echo.buf, sizeof(echo.buf), 0); });
  std::atomic<int> posts{0};
  std::thread t([&] { loop->Run(); });
  for (int i = 0; i < 200; i++) {
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    loop->Post([&] { posts++; });
    // Gaps shorter and longer than the poll window: both paths are taken.
    std::this_thread::sleep_for(std::chrono::microseconds(i % 2 ? 20 : 600));
  }
  std::atomic<bool> drained{false};
  for (int tries = 0; tries < 500 && !drained; tries++) {
    loop->Post([&] { drained = echo.bytes == 200; });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  loop->Post([&] { loop->Stop(); });
  t.join();
  EXPECT_TRUE(drained);
  EXPECT_EQ(echo.bytes, 200);
  EXPECT_EQ(posts.load(), 200);
  close(sv[0]);
  close(sv[1]);
}

// Post() skips the eventfd write while the loop is awake; the loop must then
// still run the task before it sleeps. One post at a time, each waited for
// (with a bound), hits the window between "awake" and "asleep" many times: a
// lost wake-up shows as a task that never runs.
TEST(EventLoopTest, PostsRacingTheLoopsSleepAreNeverLost) {
  auto loop = MakeLoop();
  std::thread t([&] { loop->Run(); });
  std::atomic<int> ran{0};
  for (int i = 0; i < 20000; i++) {
    loop->Post([&] { ran.fetch_add(1, std::memory_order_release); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (ran.load(std::memory_order_acquire) <= i) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "post " << i << " never ran";
      if (i % 2) std::this_thread::yield();  // half of them: let the loop fall asleep first
    }
  }
  // Posts from the loop thread itself and from two threads at once.
  std::atomic<int> burst{0};
  auto poster = [&] {
    for (int i = 0; i < 5000; i++) loop->Post([&] { burst.fetch_add(1); loop->Post([&] { burst.fetch_add(1); }); });
  };
  std::thread p1(poster), p2(poster);
  p1.join();
  p2.join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (burst.load() < 20000 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(burst.load(), 20000);
  loop->Stop();
  t.join();
}

}  // namespace
}  // namespace rbdnbd
