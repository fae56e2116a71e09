// ublk device parameters: what SET_PARAMS tells the kernel about a backend.
//
// Contract: pure, no I/O, any thread. BuildUblkParams() derives the basic
// parameters (size, block sizes, max sectors, attributes) and, when the
// backend can trim or write zeroes, the discard parameters from the backend's
// capabilities, advertising only what the backend really provides
// (backend.h): VOLATILE_CACHE only with can_flush, FUA only with can_fua,
// discard only with can_trim, write-zeroes only with can_write_zeroes,
// READ_ONLY with read_only. It fails (EINVAL) on a block size that is not 512
// or 4096, a physical block smaller than the logical one, a max I/O size that
// is not a multiple of the logical block, or a size that is not a multiple of
// the logical block.
#pragma once

#include <linux/ublk_cmd.h>

#include <cstdint>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

struct UblkParamsOptions {
  uint32_t logical_block = 512;    // 512 or 4096
  uint32_t physical_block = 4096;  // >= logical_block, power of two, <= 4096
  uint32_t io_opt = 0;             // 0: the backend's preferred block
  uint32_t max_io_bytes = 512u << 10;  // also the per-tag buffer size (ADD_DEV)
};

Result<ublk_params> BuildUblkParams(const BackendCaps& caps, const UblkParamsOptions& options);

}  // namespace rbdnbd
