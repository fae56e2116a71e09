#include "backend/memory_backend.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include <spdlog/spdlog.h>

#include "backend/human_size.h"

namespace rbdnbd {

Result<std::shared_ptr<Backend>> MemoryBackend::Create(uint64_t size) {
  if (size == 0) return Err(EINVAL, "memory backend: size must be greater than 0");
  if (size > kMaxSize) {
    return Err(EINVAL, "memory backend: size {} ({}) is larger than the 16 TiB limit", size,
               HumanSize(size));
  }
  std::shared_ptr<MemoryBackend> backend(new (std::nothrow) MemoryBackend(size));
  if (!backend || !backend->top_ || !backend->stripes_) {
    return Err(ENOMEM, "memory backend: cannot allocate the page table for {}", HumanSize(size));
  }
  spdlog::debug("memory backend created: {}", backend->Describe());
  return std::shared_ptr<Backend>(std::move(backend));
}

MemoryBackend::MemoryBackend(uint64_t size)
    : size_(size),
      leaf_count_((size + kLeafSize - 1) / kLeafSize),
      top_(new (std::nothrow) std::atomic<Leaf*>[leaf_count_]),
      stripes_(new (std::nothrow) Stripe[kStripes]) {
  if (!top_) return;
  for (uint64_t i = 0; i < leaf_count_; i++) top_[i].store(nullptr, std::memory_order_relaxed);
}

MemoryBackend::~MemoryBackend() {
  if (!top_) return;
  for (uint64_t i = 0; i < leaf_count_; i++) {
    Leaf* leaf = top_[i].load(std::memory_order_acquire);
    if (leaf == nullptr) continue;
    for (uint8_t*& page : leaf->pages) {
      if (page != nullptr) FreePage(page);
    }
    delete leaf;
  }
}

BackendCaps MemoryBackend::Capabilities() const {
  BackendCaps caps;
  caps.size = size_;
  caps.can_flush = true;
  caps.can_trim = true;
  caps.can_write_zeroes = true;
  caps.can_fua = true;
  caps.can_multi_conn = true;
  caps.can_cache = true;
  caps.min_block = 1;
  return caps;
}

std::string MemoryBackend::Describe() const { return "memory " + HumanSize(size_); }

void MemoryBackend::Submit(EventLoop& /*loop*/, IoRequest& io) {
  assert(io.offset <= size_ && io.length <= size_ - io.offset);
  int result = 0;
  switch (io.type) {
    case IoType::kRead:
      assert(io.data != nullptr);
      result = Apply(Op::kRead, io.offset, io.length, io.data);
      break;
    case IoType::kWrite:
      assert(io.data != nullptr);
      result = Apply(Op::kWrite, io.offset, io.length, io.data);
      break;
    case IoType::kTrim:
      result = Apply(Op::kDiscard, io.offset, io.length, nullptr);
      break;
    case IoType::kWriteZeroes:
      result = Apply((io.flags & kIoNoHole) ? Op::kZeroAllocate : Op::kDiscard, io.offset,
                     io.length, nullptr);
      break;
    case IoType::kFlush:
    case IoType::kCache:
      break;
  }
  io.OnIoDone(result);
}

int MemoryBackend::Apply(Op op, uint64_t offset, uint64_t length, uint8_t* data) {
  while (length > 0) {
    uint64_t leaf_index = offset / kLeafSize;
    uint64_t in_leaf = offset % kLeafSize;
    uint64_t n = std::min(length, kLeafSize - in_leaf);
    int r = ApplyToLeaf(op, leaf_index, in_leaf, n, data);
    if (r < 0) return r;
    offset += n;
    length -= n;
    if (data != nullptr) data += n;
  }
  return 0;
}

MemoryBackend::Leaf* MemoryBackend::GetLeaf(uint64_t leaf_index, bool create) {
  std::atomic<Leaf*>& slot = top_[leaf_index];
  Leaf* leaf = slot.load(std::memory_order_acquire);
  if (leaf != nullptr || !create) return leaf;
  Leaf* fresh = new (std::nothrow) Leaf();
  if (fresh == nullptr) return nullptr;
  if (slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread won the race; `leaf` now holds its pointer
  return leaf;
}

int MemoryBackend::ApplyToLeaf(Op op, uint64_t leaf_index, uint64_t offset_in_leaf,
                               uint64_t length, uint8_t* data) {
  // Reads and discards never need a leaf that does not exist yet.
  bool create = op == Op::kWrite || op == Op::kZeroAllocate;
  Leaf* leaf = GetLeaf(leaf_index, create);
  if (leaf == nullptr) {
    if (create) return -ENOMEM;
    if (op == Op::kRead) std::memset(data, 0, length);
    return 0;
  }

  std::lock_guard lock(StripeFor(leaf_index));
  uint64_t off = offset_in_leaf;
  uint64_t end = offset_in_leaf + length;
  while (off < end) {
    uint64_t page_index = off / kPageSize;
    uint64_t in_page = off % kPageSize;
    uint64_t n = std::min(end - off, kPageSize - in_page);
    bool whole_page = n == kPageSize;
    uint8_t*& page = leaf->pages[page_index];
    switch (op) {
      case Op::kRead:
        if (page != nullptr) {
          std::memcpy(data, page + in_page, n);
        } else {
          std::memset(data, 0, n);
        }
        data += n;
        break;
      case Op::kWrite:
        if (page == nullptr) {
          page = AllocatePage();
          if (page == nullptr) return -ENOMEM;
          // A full-page write overwrites every byte; only partial ones need
          // the rest of the page to read back as zeroes.
          if (!whole_page) std::memset(page, 0, kPageSize);
        }
        std::memcpy(page + in_page, data, n);
        data += n;
        break;
      case Op::kDiscard:
        if (page == nullptr) break;
        if (whole_page) {
          FreePage(page);
        } else {
          std::memset(page + in_page, 0, n);
        }
        break;
      case Op::kZeroAllocate:
        if (page == nullptr) {
          page = AllocatePage();
          if (page == nullptr) return -ENOMEM;
          std::memset(page, 0, kPageSize);
        } else {
          std::memset(page + in_page, 0, n);
        }
        break;
    }
    off += n;
  }
  return 0;
}

uint8_t* MemoryBackend::AllocatePage() {
  void* p = std::aligned_alloc(kPageSize, kPageSize);
  if (p == nullptr) return nullptr;
  allocated_pages_.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint8_t*>(p);
}

void MemoryBackend::FreePage(uint8_t*& page) {
  std::free(page);
  page = nullptr;
  allocated_pages_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace rbdnbd
