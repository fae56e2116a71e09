// MemoryBackend: a sparse RAM disk, for tests and benchmarks of the frontends.
//
// Contract
// --------
// * Create(size): size in 1 byte .. 16 TiB. Nothing is allocated up front but
//   the top-level table (8 bytes per 2 MiB of size).
// * Submit(): completes INLINE: io.OnIoDone() has been called, on the calling
//   loop thread, before Submit() returns. The loop itself is never used.
//   Thread-safe: any number of loops may Submit() at once.
// * Reads of never-written or trimmed bytes return zeroes. kTrim frees the
//   whole 4 KiB pages inside the range and zeroes the partial ones at its
//   edges; kWriteZeroes does the same unless kIoNoHole, which allocates and
//   zeroes. kFlush and kCache succeed at once (RAM is coherent, so every
//   connection sees every completed write: can_multi_conn).
// * Buffers: the backend copies into and out of io.data during Submit() and
//   keeps no pointer to it.
// * An allocation failure completes the request with -ENOMEM.
//
// Layout: top_[leaf] is an atomic pointer to a Leaf of 512 page pointers
// (2 MiB). Leaves are created on first write with a compare-and-swap and live
// until the backend is destroyed, so the top level needs no lock. Pages are
// created and freed only under the leaf's stripe mutex, and every copy in or
// out of a page holds that mutex too, so a TRIM can never free a page that a
// concurrent read is copying from.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

class MemoryBackend final : public Backend {
 public:
  static constexpr uint64_t kPageSize = 4096;
  static constexpr uint64_t kPagesPerLeaf = 512;
  static constexpr uint64_t kLeafSize = kPageSize * kPagesPerLeaf;  // 2 MiB
  static constexpr uint64_t kMaxSize = uint64_t{16} << 40;          // 16 TiB

  static Result<std::shared_ptr<Backend>> Create(uint64_t size);
  ~MemoryBackend() override;

  BackendCaps Capabilities() const override;
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

  // Bytes held in pages right now (a multiple of 4 KiB). Any thread.
  uint64_t allocated_bytes() const {
    return allocated_pages_.load(std::memory_order_relaxed) * kPageSize;
  }

 private:
  struct Leaf {
    std::array<uint8_t*, kPagesPerLeaf> pages{};  // null: reads as zeroes
  };
  // What one leaf-sized slice of a request does with its pages.
  enum class Op { kRead, kWrite, kDiscard, kZeroAllocate };

  explicit MemoryBackend(uint64_t size);
  int Apply(Op op, uint64_t offset, uint64_t length, uint8_t* data);
  int ApplyToLeaf(Op op, uint64_t leaf_index, uint64_t offset_in_leaf,
                  uint64_t length, uint8_t* data);
  Leaf* GetLeaf(uint64_t leaf_index, bool create);
  uint8_t* AllocatePage();
  void FreePage(uint8_t*& page);
  std::mutex& StripeFor(uint64_t leaf_index) {
    return stripes_[leaf_index % kStripes].mu;
  }

  static constexpr size_t kStripes = 256;
  struct alignas(64) Stripe {
    std::mutex mu;
  };

  const uint64_t size_;
  const uint64_t leaf_count_;
  std::unique_ptr<std::atomic<Leaf*>[]> top_;
  std::unique_ptr<Stripe[]> stripes_;
  std::atomic<uint64_t> allocated_pages_{0};
};

}  // namespace rbdnbd
