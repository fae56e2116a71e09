#include "ublk/ublk_params.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace rbdnbd {
namespace {

// 1 GiB per discard or write-zeroes request: well inside IoRequest::length.
constexpr uint32_t kMaxDiscardSectors = (1u << 30) >> 9;

uint8_t Shift(uint32_t v) { return static_cast<uint8_t>(std::countr_zero(v)); }

// For people: 262144 -> "256 KiB", 5000 -> "5000 bytes", 3055726592 -> "2.8 GiB"
// (exact below a MiB, one decimal above one when not whole).
std::string Bytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  std::string text = fmt::format("{} bytes", n);
  uint64_t unit = 1024;
  for (const char* name : kUnits) {
    if (n < unit) break;
    if (n % unit == 0) {
      text = fmt::format("{} {}", n / unit, name);
    } else if (unit >= (1u << 20)) {
      text = fmt::format("{:.1f} {}", static_cast<double>(n) / static_cast<double>(unit), name);
    }
    unit <<= 10;
  }
  return text;
}

}  // namespace

Result<void> CheckUblkQueueShape(uint64_t depth, uint64_t max_io_bytes, uint32_t logical_block) {
  if (depth < 1 || depth > kUblkMaxDepth) {
    return Err(EINVAL, "ublk queue depth {} is not in 1..{} (UBLK_MAX_QUEUE_DEPTH)", depth, kUblkMaxDepth);
  }
  if (max_io_bytes < 4096 || max_io_bytes > kUblkMaxIoBytes) {
    return Err(EINVAL, "ublk max I/O size {} is not in 4 KiB..32 MiB (the kernel's per-request buffer limit)",
               Bytes(max_io_bytes));
  }
  if (max_io_bytes % 4096 != 0 || (logical_block != 0 && max_io_bytes % logical_block != 0)) {
    return Err(EINVAL, "ublk max I/O size {} is not a multiple of 4096 and of the {}-byte logical block",
               Bytes(max_io_bytes), logical_block);
  }
  return {};
}

uint64_t UblkBufferLimit(uint32_t queues, uint64_t phys_bytes) {
  uint64_t limit = kUblkMaxBufferBytes;
  if (phys_bytes != 0) limit = std::min(limit, phys_bytes / 4 / (1u << 20) * (1u << 20));  // whole MiB
  const uint64_t default_shape = uint64_t{queues} * kUblkDefaultDepth * kUblkDefaultMaxIoBytes;
  return std::max(limit, default_shape);
}

Result<void> CheckUblkBufferMemory(uint32_t queues, uint32_t depth, uint32_t max_io_bytes, uint64_t phys_bytes) {
  const uint64_t want = uint64_t{queues} * depth * max_io_bytes;
  const uint64_t limit = UblkBufferLimit(queues, phys_bytes);
  if (want <= limit) return {};
  const std::string why = phys_bytes != 0
                              ? fmt::format("the smaller of 4 GiB and a quarter of this machine's {}", Bytes(phys_bytes))
                              : std::string("4 GiB");
  return Err(EINVAL, "ublk buffers of {} queue(s) x depth {} x max I/O {} = {} per device exceed the limit of {} "
             "({}): lower the queue depth or the max I/O size",
             queues, depth, Bytes(max_io_bytes), Bytes(want), Bytes(limit), why);
}

uint64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

Result<void> CheckUblkDeviceShape(uint32_t queues, uint32_t depth, uint32_t max_io_bytes, uint32_t logical_block) {
  if (auto s = CheckUblkQueueShape(depth, max_io_bytes, logical_block); !s) return s;
  return CheckUblkBufferMemory(queues, depth, max_io_bytes, PhysicalMemoryBytes());
}

Result<ublk_params> BuildUblkParams(const BackendCaps& caps, const UblkParamsOptions& o) {
  if (o.logical_block != 512 && o.logical_block != 4096) {
    return Err(EINVAL, "ublk logical block size {} is not 512 or 4096", o.logical_block);
  }
  if (!std::has_single_bit(o.physical_block) || o.physical_block < o.logical_block ||
      o.physical_block > 4096) {
    return Err(EINVAL, "ublk physical block size {} must be a power of two from {} to 4096",
               o.physical_block, o.logical_block);
  }
  if (auto shape = CheckUblkQueueShape(1, o.max_io_bytes, o.logical_block); !shape) return Unexpected(shape.error());
  if (caps.size % o.logical_block != 0) {
    return Err(EINVAL, "export size {} is not a multiple of the logical block size {}", caps.size,
               o.logical_block);
  }
  uint32_t io_opt = o.io_opt != 0 ? o.io_opt : caps.preferred_block;
  if (!std::has_single_bit(io_opt) || io_opt < o.logical_block) io_opt = o.logical_block;

  ublk_params p;
  std::memset(&p, 0, sizeof(p));
  p.len = sizeof(p);
  p.types = UBLK_PARAM_TYPE_BASIC;
  ublk_param_basic& b = p.basic;
  if (caps.read_only) b.attrs |= UBLK_ATTR_READ_ONLY;
  if (caps.rotational) b.attrs |= UBLK_ATTR_ROTATIONAL;
  if (caps.can_flush) b.attrs |= UBLK_ATTR_VOLATILE_CACHE;
  if (caps.can_flush && caps.can_fua) b.attrs |= UBLK_ATTR_FUA;
  b.logical_bs_shift = Shift(o.logical_block);
  b.physical_bs_shift = Shift(o.physical_block);
  b.io_min_shift = Shift(o.logical_block);
  b.io_opt_shift = Shift(io_opt);
  b.max_sectors = o.max_io_bytes >> 9;
  b.dev_sectors = caps.size >> 9;

  if (!caps.read_only && (caps.can_trim || caps.can_write_zeroes)) {
    p.types |= UBLK_PARAM_TYPE_DISCARD;
    ublk_param_discard& d = p.discard;
    // The driver takes single-segment discards only and wants a granularity.
    d.discard_granularity = o.physical_block;
    d.discard_alignment = 0;
    d.max_discard_segments = 1;
    d.max_discard_sectors = caps.can_trim ? kMaxDiscardSectors : 0;
    d.max_write_zeroes_sectors = caps.can_write_zeroes ? kMaxDiscardSectors : 0;
  }
  return p;
}

}  // namespace rbdnbd
