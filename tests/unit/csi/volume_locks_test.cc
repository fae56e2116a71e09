#include "csi/volume_locks.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {
namespace {

TEST(VolumeLocksTest, SecondLockOnTheSameVolumeIsAborted) {
  VolumeLocks locks;
  auto first = locks.TryLock("vol-1");
  ASSERT_TRUE(first);
  auto second = locks.TryLock("vol-1");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, kAborted);
  EXPECT_NE(second.error().message.find("vol-1"), std::string::npos);
  auto other = locks.TryLock("vol-2");
  EXPECT_TRUE(other);
}

TEST(VolumeLocksTest, ReleasedWhenTheGuardGoes) {
  VolumeLocks locks;
  {
    auto g = locks.TryLock("v");
    ASSERT_TRUE(g);
    EXPECT_TRUE(locks.IsLocked("v"));
    auto moved = std::move(g).value();  // ownership moves, the lock stays held
    EXPECT_TRUE(locks.IsLocked("v"));
  }
  EXPECT_FALSE(locks.IsLocked("v"));
  EXPECT_TRUE(locks.TryLock("v"));
}

TEST(VolumeLocksTest, ExactlyOneOfManyConcurrentCallersWins) {
  VolumeLocks locks;
  std::atomic<int> winners{0};
  std::atomic<int> aborted{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<bool> release{false};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      ready++;
      while (!go) std::this_thread::yield();
      auto g = locks.TryLock("shared");
      if (g) {
        winners++;
        while (!release) std::this_thread::yield();
      } else {
        aborted++;
      }
    });
  }
  while (ready < 8) std::this_thread::yield();
  go = true;
  while (winners + aborted < 8 && !(winners == 1 && aborted == 7)) std::this_thread::yield();
  release = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(aborted, 7);
}

}  // namespace
}  // namespace rbdnbd::csi
