#include "ublk/ublk_params.h"

#include <bit>
#include <cerrno>
#include <cstring>

namespace rbdnbd {
namespace {

// 1 GiB per discard or write-zeroes request: well inside IoRequest::length.
constexpr uint32_t kMaxDiscardSectors = (1u << 30) >> 9;

uint8_t Shift(uint32_t v) { return static_cast<uint8_t>(std::countr_zero(v)); }

}  // namespace

Result<ublk_params> BuildUblkParams(const BackendCaps& caps, const UblkParamsOptions& o) {
  if (o.logical_block != 512 && o.logical_block != 4096) {
    return Err(EINVAL, "ublk logical block size {} is not 512 or 4096", o.logical_block);
  }
  if (!std::has_single_bit(o.physical_block) || o.physical_block < o.logical_block ||
      o.physical_block > 4096) {
    return Err(EINVAL, "ublk physical block size {} must be a power of two from {} to 4096",
               o.physical_block, o.logical_block);
  }
  if (o.max_io_bytes < 4096 || o.max_io_bytes % 4096 != 0) {
    return Err(EINVAL, "ublk max I/O size {} is not a multiple of 4096", o.max_io_bytes);
  }
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
