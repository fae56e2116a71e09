#include "uring/buffer_pool.h"

#include <cstdint>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

TEST(BufferPoolTest, BuffersAreAlignedAndLargeEnough) {
  BufferPool pool;
  for (size_t len : {1ul, 512ul, 4096ul, 4097ul, 131072ul, 32ul << 20}) {
    size_t cap = 0;
    uint8_t* b = pool.Get(len, &cap);
    ASSERT_NE(b, nullptr);
    EXPECT_GE(cap, len);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 4096, 0u);
    b[len - 1] = 1;
    pool.Put(b, cap);
  }
}

TEST(BufferPoolTest, RecyclesSameClass) {
  BufferPool pool;
  size_t cap1 = 0, cap2 = 0;
  uint8_t* a = pool.Get(5000, &cap1);
  pool.Put(a, cap1);
  EXPECT_EQ(pool.cached_bytes(), cap1);
  uint8_t* b = pool.Get(8192, &cap2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(pool.cached_bytes(), 0u);
  pool.Put(b, cap2);
}

TEST(BufferPoolTest, CacheIsBounded) {
  BufferPool pool(64 * 1024);
  std::vector<std::pair<uint8_t*, size_t>> bufs;
  for (int i = 0; i < 10; i++) {
    size_t cap;
    bufs.emplace_back(pool.Get(16384, &cap), cap);
  }
  for (auto [b, cap] : bufs) pool.Put(b, cap);
  EXPECT_LE(pool.cached_bytes(), 64u * 1024);
}

}  // namespace
}  // namespace rbdnbd
