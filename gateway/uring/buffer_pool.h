// BufferPool: recycles 4096-aligned I/O buffers for one loop.
//
// Contract: loop thread only (one pool per EventLoop, no locking). Get() returns
// a buffer of at least `len` bytes (a power-of-two class from 4 KiB up) that is
// 4096-aligned, so it suits O_DIRECT; Put() gives it back with the capacity Get()
// reported. At most `max_cached_bytes` stay cached; the rest is freed, so an
// idle loop holds a bounded amount of memory. Buffers are not zeroed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rbdnbd {

class BufferPool {
 public:
  explicit BufferPool(size_t max_cached_bytes = 64u << 20) : max_cached_(max_cached_bytes) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Returns nullptr only when the allocation fails (the caller answers ENOMEM).
  uint8_t* Get(size_t len, size_t* capacity);
  void Put(uint8_t* buf, size_t capacity);

  size_t cached_bytes() const { return cached_; }

 private:
  static constexpr size_t kMinShift = 12;  // 4 KiB
  static constexpr size_t kClasses = 14;   // up to 32 MiB
  std::array<std::vector<uint8_t*>, kClasses> free_;
  size_t cached_ = 0;
  size_t max_cached_;
};

}  // namespace rbdnbd
