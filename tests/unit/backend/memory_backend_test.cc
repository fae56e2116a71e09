#include "backend/memory_backend.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::AllZero;
using testing::LoopThread;
using testing::Pattern;

constexpr uint64_t kPage = MemoryBackend::kPageSize;
// 2 MiB: a huge-page boundary (and the old page table's leaf size). The tests
// cross it on purpose.
constexpr uint64_t kLeaf = uint64_t{2} << 20;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Resident set size of this process, from /proc/self/statm.
uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t total_pages = 0;
  uint64_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  EXPECT_TRUE(statm.good()) << "cannot read /proc/self/statm";
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Resident bytes of the mappings whose size is in [min_size, max_size], from
// /proc/self/smaps: the backend's own memory, without what the rest of the
// process touches meanwhile (under ASan every write also materialises shadow
// pages, up to one per written page when the writes are sparse).
uint64_t MappingRssBytes(uint64_t min_size, uint64_t max_size) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  uint64_t total = 0;
  bool in_range = false;
  while (std::getline(smaps, line)) {
    uint64_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(' ') > line.find('-')) {
      in_range = end - begin >= min_size && end - begin <= max_size;
    } else if (in_range && line.rfind("Rss:", 0) == 0) {
      total += std::stoull(line.substr(4)) * 1024;
    }
  }
  return total;
}

// Page-table memory of this process (VmPTE in /proc/self/status), in bytes.
uint64_t PageTableBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmPTE:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  ADD_FAILURE() << "no VmPTE in /proc/self/status";
  return 0;
}

// `count` distinct page indexes out of `pages`, in random order.
std::vector<uint64_t> RandomPages(uint64_t pages, uint64_t count, uint64_t seed) {
  std::vector<uint64_t> all(pages);
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(count);
  return all;
}

// Writes one 4 KiB page (PatternByte(seed, offset)) at each page index.
void WritePages(LoopThread& lt, MemoryBackend& mem, const std::vector<uint64_t>& pages,
                uint32_t seed) {
  auto buf = testing::MakeBuffer(kPage);
  for (uint64_t page : pages) {
    uint64_t off = page * kPage;
    for (uint64_t i = 0; i < kPage; i++) buf[i] = testing::PatternByte(seed, off + i);
    ASSERT_EQ(lt.Submit(mem, IoType::kWrite, off, kPage, buf.get()), 0) << "page " << page;
  }
}

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
  // Starts 5 bytes before a 2 MiB boundary's page, ends mid-page past it.
  uint64_t off = kLeaf - kPage - 5;
  uint32_t len = 2 * kPage + 123;
  ASSERT_EQ(lt.Write(*mem, off, Pattern(7, off, len)), 0);
  // Pages touched: 510 and 511 below the boundary, 512 and 513 above it.
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
        // Word-aligned ranges around the 2 MiB boundaries, up to 64 KiB.
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

// The regression this backend was rewritten for: 4 KiB pages from
// aligned_alloc cost glibc ~8 KiB each, so RSS grew ~2x the data stored.
TEST(MemoryBackendTest, RandomWritesCostTheirSizeInRss) {
  constexpr uint64_t kSize = kGiB;
  constexpr uint64_t kData = 64 * kMiB;
  auto mem = MakeMemory(kSize);
  LoopThread lt;
  std::vector<uint64_t> pages = RandomPages(kSize / kPage, kData / kPage, 42);

  // The backend's data lives in one mapping of the export's size (plus at
  // most its bitmap); measure that mapping, not the whole process.
  uint64_t rss_before = MappingRssBytes(kSize, kSize + kSize / 8);
  WritePages(lt, *mem, pages, 9);
  uint64_t rss_after = MappingRssBytes(kSize, kSize + kSize / 8);
  EXPECT_EQ(mem->allocated_bytes(), kData) << "exactly the pages written";
  uint64_t growth = rss_after > rss_before ? rss_after - rss_before : 0;
  EXPECT_LT(growth, kData + kData / 4) << "RSS grew " << growth << " for " << kData;
  EXPECT_GT(growth, kData * 9 / 10) << "RSS did not grow: is the measurement broken?";

  // Rewriting the same pages allocates nothing more.
  WritePages(lt, *mem, std::vector<uint64_t>(pages.begin(), pages.begin() + 1000), 9);
  EXPECT_EQ(mem->allocated_bytes(), kData);

  // Spot-check contents: written pages, and a never-written neighbour.
  std::sort(pages.begin(), pages.end());
  for (size_t i = 0; i < pages.size(); i += 997) {
    uint64_t off = pages[i] * kPage;
    ASSERT_EQ(lt.Read(*mem, off, kPage), Pattern(9, off, kPage)) << "page " << pages[i];
  }
  for (uint64_t page = 0; page < kSize / kPage; page++) {
    if (!std::binary_search(pages.begin(), pages.end(), page)) {
      EXPECT_TRUE(AllZero(lt.Read(*mem, page * kPage, kPage)));
      break;
    }
  }
}

TEST(MemoryBackendTest, TrimReturnsMemoryToTheKernel) {
  constexpr uint64_t kSize = kGiB;
  constexpr uint64_t kData = 64 * kMiB;
  constexpr uint32_t kChunk = 32 * kMiB;  // the default max_block
  auto mem = MakeMemory(kSize);
  LoopThread lt;
  std::vector<uint64_t> pages = RandomPages(kSize / kPage, kData / kPage, 7);
  WritePages(lt, *mem, pages, 5);
  ASSERT_EQ(mem->allocated_bytes(), kData);

  // Trim the first half of the device: exactly the pages written there go.
  uint64_t low = std::count_if(pages.begin(), pages.end(),
                               [](uint64_t p) { return p < kSize / 2 / kPage; });
  uint64_t rss_full = RssBytes();
  for (uint64_t off = 0; off < kSize / 2; off += kChunk) {
    ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, off, kChunk), 0);
  }
  EXPECT_EQ(mem->allocated_bytes(), kData - low * kPage);
  uint64_t rss_half = RssBytes();
  EXPECT_GT(rss_full - std::min(rss_full, rss_half), low * kPage * 9 / 10)
      << "RSS " << rss_full << " -> " << rss_half;
  EXPECT_TRUE(AllZero(lt.Read(*mem, pages[0] < kSize / 2 / kPage ? pages[0] * kPage : 0, kPage)));

  // WRITE_ZEROES without NO_HOLE frees the rest the same way.
  for (uint64_t off = kSize / 2; off < kSize; off += kChunk) {
    ASSERT_EQ(lt.Submit(*mem, IoType::kWriteZeroes, off, kChunk), 0);
  }
  EXPECT_EQ(mem->allocated_bytes(), 0u);
  uint64_t rss_empty = RssBytes();
  EXPECT_GT(rss_full - std::min(rss_full, rss_empty), kData * 9 / 10)
      << "RSS " << rss_full << " -> " << rss_empty;
  EXPECT_TRUE(AllZero(lt.Read(*mem, pages.back() * kPage, kPage)));
}

// Reading never-written space neither allocates pages nor maps the zero page
// into the backend's mapping (which would cost 2 MiB of page tables per GiB).
TEST(MemoryBackendTest, ReadingUntouchedSpaceCostsNothing) {
  auto mem = MakeMemory(uint64_t{1} << 40);
  LoopThread lt;
  constexpr uint32_t kChunk = 32 * kMiB;
  auto buf = testing::MakeBuffer(kChunk, 0xAB);
  ASSERT_EQ(lt.Write(*mem, kPage, {1}), 0);  // one written page among them
  uint64_t pte_before = PageTableBytes();
  uint64_t rss_before = RssBytes();
  for (uint64_t off = 0; off < 512 * kMiB; off += kChunk) {
    ASSERT_EQ(lt.Submit(*mem, IoType::kRead, off, kChunk, buf.get()), 0);
    if (off == 0) {
      EXPECT_EQ(buf[kPage], 1);
      buf[kPage] = 0;
    }
    ASSERT_TRUE(std::all_of(buf.get(), buf.get() + kChunk, [](uint8_t b) { return b == 0; }));
  }
  EXPECT_LT(PageTableBytes() - std::min(pte_before, PageTableBytes()), 256 * 1024u);
  EXPECT_LT(RssBytes() - std::min(rss_before, RssBytes()), 4 * kMiB);
  EXPECT_EQ(mem->allocated_bytes(), kPage);
}

// A trim reaching the end of a device whose size is not a multiple of 4 KiB
// frees the last (partial) page too; one that stops short only zeroes it.
TEST(MemoryBackendTest, TrimAtUnalignedEndFreesTheLastPage) {
  constexpr uint64_t kSize = 3 * kPage + 100;
  auto mem = MakeMemory(kSize);
  LoopThread lt;
  ASSERT_EQ(lt.Write(*mem, 0, Pattern(2, 0, kSize)), 0);
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage);
  ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, 3 * kPage + 10, 50), 0);
  EXPECT_EQ(mem->allocated_bytes(), 4 * kPage);
  ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, 2 * kPage + 1, kSize - 2 * kPage - 1), 0);
  EXPECT_EQ(mem->allocated_bytes(), 3 * kPage);
  std::vector<uint8_t> got = lt.Read(*mem, 0, kSize);
  for (uint64_t i = 0; i < kSize; i++) {
    uint8_t want = i > 2 * kPage ? 0 : testing::PatternByte(2, i);
    ASSERT_EQ(got[i], want) << "at " << i;
  }
  // Zeroing a page that holds nothing does not allocate it.
  ASSERT_EQ(lt.Submit(*mem, IoType::kTrim, 3 * kPage + 1, 10), 0);
  EXPECT_EQ(mem->allocated_bytes(), 3 * kPage);
}

}  // namespace
}  // namespace rbdnbd
