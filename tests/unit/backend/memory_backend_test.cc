#include "backend/memory_backend.h"

#include <cerrno>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::AllZero;
using testing::LoopThread;
using testing::Pattern;

constexpr uint64_t kPage = MemoryBackend::kPageSize;
constexpr uint64_t kLeaf = MemoryBackend::kLeafSize;

std::shared_ptr<MemoryBackend> MakeMemory(uint64_t size) {
  auto r = MemoryBackend::Create(size);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return std::static_pointer_cast<MemoryBackend>(*r);
}

TEST(MemoryBackendTest, RejectsBadSizes) {
  auto zero = MemoryBackend::Create(0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, EINVAL);
  EXPECT_NE(zero.error().message.find("greater than 0"), std::string::npos);
  auto huge = MemoryBackend::Create(MemoryBackend::kMaxSize + 1);
  ASSERT_FALSE(huge.has_value());
  EXPECT_NE(huge.error().message.find("16 TiB"), std::string::npos);
  EXPECT_TRUE(MemoryBackend::Create(MemoryBackend::kMaxSize).has_value());
  EXPECT_TRUE(MemoryBackend::Create(1).has_value());
}

TEST(MemoryBackendTest, CapsAndDescribe) {
  auto mem = MakeMemory(uint64_t{1} << 30);
  BackendCaps caps = mem->Capabilities();
  EXPECT_EQ(caps.size, uint64_t{1} << 30);
  EXPECT_FALSE(caps.read_only);
  EXPECT_TRUE(caps.can_flush && caps.can_fua && caps.can_trim && caps.can_write_zeroes &&
              caps.can_cache && caps.can_multi_conn);
  EXPECT_EQ(caps.min_block, 1u);
  EXPECT_EQ(mem->Describe(), "memory 1.0 GiB");
  EXPECT_EQ(mem->allocated_bytes(), 0u);
}

TEST(MemoryBackendTest, SparseRoundTrip) {
  auto mem = MakeMemory(uint64_t{1} << 40);  // 1 TiB, almost all of it never touched
  LoopThread lt;
  EXPECT_TRUE(AllZero(lt.Read(*mem, 0, 64 * 1024)));
  EXPECT_TRUE(AllZero(lt.Read(*mem, (uint64_t{1} << 40) - 8192, 8192)));
  EXPECT_EQ(mem->allocated_bytes(), 0u) << "reads must not allocate";

  uint64_t far = (uint64_t{700} << 30) + 3 * kPage;
  ASSERT_EQ(lt.Write(*mem, far, Pattern(1, far, 2 * kPage)), 0);
  EXPECT_EQ(mem->allocated_bytes(), 2 * kPage);
  EXPECT_EQ(lt.Read(*mem, far, 2 * kPage), Pattern(1, far, 2 * kPage));
  EXPECT_TRUE(AllZero(lt.Read(*mem, far - kPage, kPage)));
  EXPECT_TRUE(AllZero(lt.Read(*mem, far + 2 * kPage, kPage)));
}

TEST(MemoryBackendTest, UnalignedAcrossPageAndLeafBoundaries) {
  auto mem = MakeMemory(3 * kLeaf);
  LoopThread lt;
  // Starts 5 bytes before a leaf boundary's page, ends mid-page in the next leaf.
  uint64_t off = kLeaf - kPage - 5;
  uint32_t len = 2 * kPage + 123;
  ASSERT_EQ(lt.Write(*mem, off, Pattern(7, off, len)), 0);
  // Pages touched: leaf0 pages 510 and 511, leaf1 pages 0 and 1.
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage);
  EXPECT_EQ(lt.Read(*mem, off, len), Pattern(7, off, len));
  // Bytes around the write in the same pages read back as zeroes.
  std::vector<uint8_t> around = lt.Read(*mem, kLeaf - 2 * kPage, 4 * kPage);
  for (uint64_t i = 0; i < around.size(); i++) {
    uint64_t abs = kLeaf - 2 * kPage + i;
    uint8_t want = (abs >= off && abs < off + len) ? testing::PatternByte(7, abs) : 0;
    ASSERT_EQ(around[i], want) << "at " << abs;
  }
  // One-byte I/O at the very end of the device.
  uint64_t last = 3 * kLeaf - 1;
  ASSERT_EQ(lt.Write(*mem, last, {0x5A}), 0);
  EXPECT_EQ(lt.Read(*mem, last, 1), std::vector<uint8_t>{0x5A});
}

TEST(MemoryBackendTest, TrimFreesWholePagesAndZeroesPartialOnes) {
  auto mem = MakeMemory(2 * kLeaf);
  LoopThread lt;
  ASSERT_EQ(lt.Write(*mem, 0, Pattern(3, 0, 8 * kPage)), 0);
  EXPECT_EQ(mem->allocated_bytes(), 8 * kPage);
  // [page 1 + 100, page 6 + 50): pages 2..5 freed, pages 1 and 6 zeroed in part.
  uint64_t begin = kPage + 100;
  uint64_t end = 6 * kPage + 50;
  ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, begin, end - begin), 0);
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage);
  std::vector<uint8_t> got = lt.Read(*mem, 0, 8 * kPage);
  for (uint64_t i = 0; i < got.size(); i++) {
    uint8_t want = (i >= begin && i < end) ? 0 : testing::PatternByte(3, i);
    ASSERT_EQ(got[i], want) << "at " << i;
  }
  // Trimming what was never written is a success and allocates nothing.
  ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, kLeaf, kLeaf), 0);
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage);
}

TEST(MemoryBackendTest, WriteZeroesPunchesOrAllocates) {
  auto mem = MakeMemory(kLeaf);
  LoopThread lt;
  ASSERT_EQ(lt.Write(*mem, 0, Pattern(4, 0, 4 * kPage)), 0);
  ASSERT_EQ(lt.Submit(*mem, IoType::kWriteZeroes, 0, 2 * kPage), 0);
  EXPECT_EQ(mem->allocated_bytes(), 2 * kPage) << "without NO_HOLE zeroing frees pages";
  EXPECT_TRUE(AllZero(lt.Read(*mem, 0, 2 * kPage)));

  // NO_HOLE: allocates zeroed pages, even where nothing was written.
  ASSERT_EQ(lt.Submit(*mem, IoType::kWriteZeroes, 2 * kPage, 4 * kPage, nullptr, kIoNoHole), 0);
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage) << "pages 2..5: two kept, two new";
  EXPECT_TRUE(AllZero(lt.Read(*mem, 0, 8 * kPage)));
}

TEST(MemoryBackendTest, FlushAndCacheSucceedInline) {
  auto mem = MakeMemory(kLeaf);
  auto loop = EventLoop::Create({});
  ASSERT_TRUE(loop.has_value());
  // Completes before Submit() returns, so the loop never has to run.
  struct InlineIo final : IoRequest {
    int result = 1;
    void OnIoDone(int r) override { result = r; }
  };
  for (IoType t : {IoType::kFlush, IoType::kCache}) {
    InlineIo io;
    io.type = t;
    io.flags = t == IoType::kFlush ? kIoFua : 0;
    mem->Submit(**loop, io);
    EXPECT_EQ(io.result, 0) << IoTypeName(t);
  }
}

// Several loops on several threads write, trim, zero and read overlapping
// ranges at once. There is no defined order, so this checks for crashes (run
// it under ASan) plus the invariants that do hold: every read succeeds, and
// every 8-byte word read is all zero or one whole value some thread wrote.
TEST(MemoryBackendTest, ConcurrentHammering) {
  constexpr uint64_t kSize = 4 * kLeaf;
  auto mem = MakeMemory(kSize);
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 1500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      LoopThread lt;
      std::mt19937_64 rng(t);
      auto buf = testing::MakeBuffer(64 * 1024);
      for (int i = 0; i < kOpsPerThread; i++) {
        // Word-aligned ranges around the leaf boundaries, up to 64 KiB.
        uint64_t center = (rng() % 4) * kLeaf;
        uint64_t off = (center + kLeaf - 32 * 1024 + (rng() % 8192) * 8) % (kSize - 64 * 1024);
        uint32_t len = static_cast<uint32_t>((1 + rng() % 8192) * 8);
        uint64_t word = 0x0101010101010101ull * static_cast<uint8_t>(1 + t);
        int r = 0;
        switch (rng() % 5) {
          case 0:
          case 1:
            for (uint32_t w = 0; w < len / 8; w++) std::memcpy(buf.get() + w * 8, &word, 8);
            r = lt.Submit(*mem, IoType::kWrite, off, len, buf.get());
            break;
          case 2:
            r = lt.Submit(*mem, IoType::kTrim, off, len);
            break;
          case 3:
            r = lt.Submit(*mem, IoType::kWriteZeroes, off, len, nullptr, kIoNoHole);
            break;
          case 4:
            r = lt.Submit(*mem, IoType::kRead, off, len, buf.get());
            break;
        }
        if (r != 0) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  LoopThread lt;
  std::vector<uint8_t> all = lt.Read(*mem, 0, kSize);
  for (uint64_t i = 0; i < kSize; i += 8) {
    uint8_t first = all[i];
    for (int b = 1; b < 8; b++) ASSERT_EQ(all[i + b], first) << "torn byte at " << i + b;
    ASSERT_LE(first, kThreads);
  }
  EXPECT_LE(mem->allocated_bytes(), kSize);
}

}  // namespace
}  // namespace rbdnbd
