// MemoryBackend: a sparse RAM disk, for tests and benchmarks of the frontends.
//
// Contract
// --------
// * Create(size): size in 1 byte .. 16 TiB. Reserves address space only: one
//   anonymous MAP_NORESERVE mapping of `size` rounded up to 4 KiB for the
//   data, and one for the page bitmap (1 bit per 4 KiB page, 32 MiB per TiB
//   of size, itself faulted in only where pages are written). No RAM and no
//   commit charge up front. Fails with ENOMEM if the kernel refuses the
//   mapping (e.g. vm.overcommit_memory=2, which ignores MAP_NORESERVE, or an
//   address-space rlimit).
// * Submit(): completes INLINE: io.OnIoDone() has been called, on the calling
//   loop thread, before Submit() returns. The loop itself is never used.
//   Thread-safe and lock-free: any number of loops may Submit() at once.
// * Reads of never-written or trimmed bytes return zeroes without allocating
//   RAM. kTrim frees the whole 4 KiB pages inside the range
//   (madvise(MADV_DONTNEED): their RAM goes back to the kernel and they read
//   back as zeroes) and zeroes the partial ones at its edges; kWriteZeroes
//   does the same unless kIoNoHole, which memsets (allocates) the whole
//   range. kFlush, kCache and kIoFua need nothing (RAM is coherent, so every
//   connection sees every completed write: can_multi_conn).
// * Buffers: the backend copies into and out of io.data during Submit() and
//   keeps no pointer to it.
// * Nothing fails after Create(): a write that the kernel cannot back with a
//   page is an OOM kill, exactly as for any other anonymous memory.
//
// Why one NORESERVE mapping (and not a page table of malloc'd pages)
// ------------------------------------------------------------------
// * No allocator overhead: aligned_alloc(4096, 4096) costs glibc ~8 KiB per
//   page, so a table of one allocation per page would use ~2x the RAM it
//   stores. Here a written page costs one kernel page (plus its 8-byte PTE).
// * 4 KiB sparseness for free: the kernel allocates a page on its first write
//   only. Transparent huge pages are disabled on both mappings
//   (MADV_NOHUGEPAGE), otherwise with THP=always one 4 KiB write would fault
//   in 2 MiB.
// * Trims return memory to the kernel at once (MADV_DONTNEED).
// * No use-after-free is possible: the mapping lives as long as the backend,
//   so a read racing a trim of the same page copies old data or zeroes, as on
//   a disk, and no locks are needed.
//
// Page bitmap (why not mincore())
// -------------------------------
// allocated_bytes() must count the pages that hold data. mincore() cannot
// tell: on Linux it reports a page that was only READ as resident, because the
// read fault mapped the shared zero page (measured on 6.18: reading 8192
// untouched pages made mincore() report 8192 resident pages while RSS did not
// grow). So the backend keeps its own bitmap, one bit per 4 KiB page, with an
// exact counter of set bits updated on each bit transition:
// * a write (or kIoNoHole zeroing) copies first and then sets the bits of
//   every page it touched (release);
// * a trim clears the bits of its whole pages first and then madvises them;
//   a partial edge is memset only if its bit is set (a clear bit means the
//   page is all zeroes, so zeroing it would only allocate it);
// * a read copies out of the pages whose bit is set (acquire) and memsets the
//   rest of the buffer, so reading an untouched range never faults the
//   mapping: no zero-page PTEs (reading a whole 1 TiB export would otherwise
//   build 2 GiB of page tables).
// With that ordering, once concurrent requests on a page have completed, a
// page holding any non-zero byte always has its bit set, so reads are
// correct. allocated_bytes() is exact whenever no write races a trim of the
// same page; such a race (no defined order anyway) can leave one page counted
// but already freed, or a zeroed page resident but not counted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

class MemoryBackend final : public Backend {
 public:
  static constexpr uint64_t kPageSize = 4096;  // allocation and bitmap unit
  static constexpr uint64_t kMaxSize = uint64_t{16} << 40;  // 16 TiB

  static Result<std::shared_ptr<Backend>> Create(uint64_t size);
  ~MemoryBackend() override;
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;

  BackendCaps Capabilities() const override;
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

  // Bytes held in written pages right now (a multiple of 4 KiB): pages
  // written or zeroed with kIoNoHole and not trimmed since. Any thread.
  uint64_t allocated_bytes() const {
    return allocated_pages_.load(std::memory_order_relaxed) * kPageSize;
  }

 private:
  static constexpr unsigned kPageShift = 12;
  static_assert(uint64_t{1} << kPageShift == kPageSize);

  MemoryBackend(uint64_t size, uint8_t* data, size_t data_bytes, uint64_t* bitmap,
                size_t bitmap_bytes, size_t system_page);

  void Read(uint64_t offset, uint64_t length, uint8_t* out) const;
  void Write(uint64_t offset, uint64_t length, const uint8_t* in);
  void Discard(uint64_t offset, uint64_t length);
  void ZeroAllocate(uint64_t offset, uint64_t length);
  // Frees (and zeroes) whole 4 KiB pages [begin, end) of the mapping.
  void FreePages(uint64_t begin, uint64_t end);

  bool PageHasData(uint64_t page) const;
  // Pages [first, last) of the bitmap; keep allocated_pages_ exact.
  void SetPages(uint64_t first, uint64_t last);
  void ClearPages(uint64_t first, uint64_t last);

  const uint64_t size_;
  uint8_t* const data_;        // data_bytes_ of MAP_NORESERVE anonymous memory
  const size_t data_bytes_;    // size_ rounded up to kPageSize
  uint64_t* const bitmap_;     // 1 bit per page, accessed through atomic_ref
  const size_t bitmap_bytes_;  // mapping size of the bitmap
  const size_t system_page_;   // madvise granularity (4 KiB on x86-64)
  std::atomic<uint64_t> allocated_pages_{0};
};

}  // namespace rbdnbd
