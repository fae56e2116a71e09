#include "backend/memory_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>

#include <spdlog/spdlog.h>

#include "backend/human_size.h"

namespace rbdnbd {

namespace {

uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }
uint64_t RoundDown(uint64_t v, uint64_t align) { return v / align * align; }

// An anonymous, lazily backed, never-charged mapping without huge pages.
void* MapAnonymous(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Best effort (EINVAL without THP support): with THP=always a single 4 KiB
  // write would otherwise fault in a whole 2 MiB page.
  (void)madvise(p, bytes, MADV_NOHUGEPAGE);
  return p;
}

}  // namespace

Result<std::shared_ptr<Backend>> MemoryBackend::Create(uint64_t size) {
  if (size == 0) return Err(EINVAL, "memory backend: size must be greater than 0");
  if (size > kMaxSize) {
    return Err(EINVAL, "memory backend: size {} ({}) is larger than the 16 TiB limit", size,
               HumanSize(size));
  }
  long system_page = sysconf(_SC_PAGESIZE);
  if (system_page <= 0) system_page = static_cast<long>(kPageSize);

  const size_t data_bytes = RoundUp(size, kPageSize);
  const uint64_t pages = data_bytes >> kPageShift;
  const size_t bitmap_bytes =
      RoundUp((pages + 63) / 64 * sizeof(uint64_t), static_cast<uint64_t>(system_page));

  void* data = MapAnonymous(data_bytes);
  if (data == nullptr) {
    int e = errno;
    return Err(ENOMEM, "memory backend: cannot map {} of memory: {}", HumanSize(size),
               std::strerror(e));
  }
  void* bitmap = MapAnonymous(bitmap_bytes);
  if (bitmap == nullptr) {
    int e = errno;
    munmap(data, data_bytes);
    return Err(ENOMEM, "memory backend: cannot map the page bitmap for {}: {}", HumanSize(size),
               std::strerror(e));
  }
  std::shared_ptr<MemoryBackend> backend(new (std::nothrow) MemoryBackend(
      size, static_cast<uint8_t*>(data), data_bytes, static_cast<uint64_t*>(bitmap),
      bitmap_bytes, static_cast<size_t>(system_page)));
  if (!backend) {
    munmap(bitmap, bitmap_bytes);
    munmap(data, data_bytes);
    return Err(ENOMEM, "memory backend: cannot allocate the backend for {}", HumanSize(size));
  }
  spdlog::debug("memory backend created: {}", backend->Describe());
  return std::shared_ptr<Backend>(std::move(backend));
}

MemoryBackend::MemoryBackend(uint64_t size, uint8_t* data, size_t data_bytes, uint64_t* bitmap,
                             size_t bitmap_bytes, size_t system_page)
    : size_(size),
      data_(data),
      data_bytes_(data_bytes),
      bitmap_(bitmap),
      bitmap_bytes_(bitmap_bytes),
      system_page_(system_page) {}

MemoryBackend::~MemoryBackend() {
  munmap(bitmap_, bitmap_bytes_);
  munmap(data_, data_bytes_);
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
  if (io.length > 0) {
    switch (io.type) {
      case IoType::kRead:
        assert(io.data != nullptr);
        Read(io.offset, io.length, io.data);
        break;
      case IoType::kWrite:
        assert(io.data != nullptr);
        Write(io.offset, io.length, io.data);
        break;
      case IoType::kTrim:
        Discard(io.offset, io.length);
        break;
      case IoType::kWriteZeroes:
        if (io.flags & kIoNoHole) {
          ZeroAllocate(io.offset, io.length);
        } else {
          Discard(io.offset, io.length);
        }
        break;
      case IoType::kFlush:
      case IoType::kCache:
        break;
    }
  }
  io.OnIoDone(0);
}

void MemoryBackend::Read(uint64_t offset, uint64_t length, uint8_t* out) const {
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    // The longest run of pages from `pos` whose bits all agree, found a
    // bitmap word at a time.
    // The page at `pos` is in the run by definition (so a bit flipped by a
    // racing request between the two loads cannot make the run empty).
    const bool has_data = PageHasData(pos >> kPageShift);
    uint64_t page = (pos >> kPageShift) + 1;
    const uint64_t last = (end + kPageSize - 1) >> kPageShift;
    while (page < last) {
      uint64_t word = std::atomic_ref<uint64_t>(bitmap_[page >> 6]).load(std::memory_order_acquire);
      if (!has_data) word = ~word;
      const unsigned bit = page & 63;
      const unsigned bits_left = 64 - bit;
      uint64_t differs = ~(word >> bit);
      if (bits_left < 64) differs &= (uint64_t{1} << bits_left) - 1;
      if (differs != 0) {
        page += static_cast<unsigned>(std::countr_zero(differs));
        break;
      }
      page += bits_left;
    }
    const uint64_t run_end = std::min(end, page << kPageShift);
    if (has_data) {
      std::memcpy(out, data_ + pos, run_end - pos);
    } else {
      // Never faults the mapping: an untouched range costs no page tables.
      std::memset(out, 0, run_end - pos);
    }
    out += run_end - pos;
    pos = run_end;
  }
}

void MemoryBackend::Write(uint64_t offset, uint64_t length, const uint8_t* in) {
  std::memcpy(data_ + offset, in, length);
  // After the copy: a page whose bit is clear is always all zeroes.
  SetPages(offset >> kPageShift, (offset + length + kPageSize - 1) >> kPageShift);
}

void MemoryBackend::ZeroAllocate(uint64_t offset, uint64_t length) {
  std::memset(data_ + offset, 0, length);
  SetPages(offset >> kPageShift, (offset + length + kPageSize - 1) >> kPageShift);
}

void MemoryBackend::Discard(uint64_t offset, uint64_t length) {
  const uint64_t begin = offset;
  // A range that reaches the end of the device owns the rest of its last
  // page too (nothing is ever written past size_), so it can free it whole.
  const uint64_t end = offset + length == size_ ? data_bytes_ : offset + length;
  const uint64_t whole_begin = RoundUp(begin, kPageSize);
  const uint64_t whole_end = RoundDown(end, kPageSize);

  // Partial pages at the edges: zero them in place, but only if they hold
  // data (a clear bit means all zeroes; a memset would just allocate it).
  auto zero_partial = [this](uint64_t from, uint64_t to) {
    if (from < to && PageHasData(from >> kPageShift)) std::memset(data_ + from, 0, to - from);
  };
  if (whole_begin >= whole_end) {
    // No whole page inside: [begin, end) lies in one or two partial pages.
    const uint64_t split = std::min(whole_begin, end);
    zero_partial(begin, split);
    zero_partial(split, end);
    return;
  }
  zero_partial(begin, whole_begin);
  zero_partial(whole_end, end);
  // Bits first, then the pages: a write racing this trim either lands before
  // the madvise (and is discarded) or after it, and then sets its bit after
  // ours were cleared.
  ClearPages(whole_begin >> kPageShift, whole_end >> kPageShift);
  FreePages(whole_begin, whole_end);
}

void MemoryBackend::FreePages(uint64_t begin, uint64_t end) {
  // madvise() works in system pages; with a system page larger than 4 KiB
  // the 4 KiB pages outside the aligned middle are zeroed instead.
  uint64_t mid_begin = RoundUp(begin, system_page_);
  uint64_t mid_end = std::max(mid_begin, RoundDown(end, system_page_));
  if (mid_begin < mid_end &&
      madvise(data_ + mid_begin, mid_end - mid_begin, MADV_DONTNEED) != 0) {
    mid_end = mid_begin;  // cannot happen on a private anonymous mapping
  }
  if (mid_begin >= mid_end) {
    std::memset(data_ + begin, 0, end - begin);
    return;
  }
  std::memset(data_ + begin, 0, mid_begin - begin);
  std::memset(data_ + mid_end, 0, end - mid_end);
}

bool MemoryBackend::PageHasData(uint64_t page) const {
  uint64_t word = std::atomic_ref<uint64_t>(bitmap_[page >> 6]).load(std::memory_order_acquire);
  return (word >> (page & 63)) & 1;
}

void MemoryBackend::SetPages(uint64_t first, uint64_t last) {
  uint64_t added = 0;
  for (uint64_t page = first; page < last;) {
    const unsigned bit = page & 63;
    const uint64_t n = std::min<uint64_t>(64 - bit, last - page);
    const uint64_t mask = (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1) << bit;
    std::atomic_ref<uint64_t> word(bitmap_[page >> 6]);
    // Rewriting pages that are already counted is the common case: skip the
    // atomic read-modify-write (and its cache-line bouncing) then.
    if ((word.load(std::memory_order_relaxed) & mask) != mask) {
      const uint64_t old = word.fetch_or(mask, std::memory_order_release);
      added += static_cast<uint64_t>(std::popcount(mask & ~old));
    }
    page += n;
  }
  if (added != 0) allocated_pages_.fetch_add(added, std::memory_order_relaxed);
}

void MemoryBackend::ClearPages(uint64_t first, uint64_t last) {
  uint64_t removed = 0;
  for (uint64_t page = first; page < last;) {
    const unsigned bit = page & 63;
    const uint64_t n = std::min<uint64_t>(64 - bit, last - page);
    const uint64_t mask = (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1) << bit;
    std::atomic_ref<uint64_t> word(bitmap_[page >> 6]);
    // Reading a never-written bitmap word maps the zero page: a trim of a
    // large untouched range allocates nothing here either.
    if ((word.load(std::memory_order_relaxed) & mask) != 0) {
      const uint64_t old = word.fetch_and(~mask, std::memory_order_acq_rel);
      removed += static_cast<uint64_t>(std::popcount(mask & old));
    }
    page += n;
  }
  if (removed != 0) allocated_pages_.fetch_sub(removed, std::memory_order_relaxed);
}

}  // namespace rbdnbd
