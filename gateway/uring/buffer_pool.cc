#include "uring/buffer_pool.h"

#include <bit>
#include <cstdlib>

namespace rbdnbd {

namespace {
size_t ClassOf(size_t len, size_t min_shift) {
  size_t rounded = std::bit_ceil(len < (size_t{1} << min_shift) ? (size_t{1} << min_shift) : len);
  return static_cast<size_t>(std::countr_zero(rounded)) - min_shift;
}
}  // namespace

BufferPool::~BufferPool() {
  for (auto& list : free_) {
    for (uint8_t* b : list) std::free(b);
  }
}

uint8_t* BufferPool::Get(size_t len, size_t* capacity) {
  size_t c = ClassOf(len, kMinShift);
  size_t cap = size_t{1} << (c + kMinShift);
  *capacity = cap;
  if (c < kClasses && !free_[c].empty()) {
    uint8_t* b = free_[c].back();
    free_[c].pop_back();
    cached_ -= cap;
    return b;
  }
  return static_cast<uint8_t*>(std::aligned_alloc(4096, cap));
}

void BufferPool::Put(uint8_t* buf, size_t capacity) {
  if (buf == nullptr) return;
  size_t c = ClassOf(capacity, kMinShift);
  if (c < kClasses && cached_ + capacity <= max_cached_) {
    free_[c].push_back(buf);
    cached_ += capacity;
    return;
  }
  std::free(buf);
}

}  // namespace rbdnbd
