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
//
// The queue shape (depth, largest request) that `map -t ublk --queue-depth
// --max-io` and the API's queue_depth/max_io_bytes choose is checked here too:
// CheckUblkQueueShape() against the kernel's limits, CheckUblkBufferMemory()
// against what one device may reserve for its per-tag buffers.
#pragma once

#include <linux/ublk_cmd.h>

#include <cstdint>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

// The defaults: requests per queue, and the largest request (also each tag's buffer).
inline constexpr uint16_t kUblkDefaultDepth = 128;
inline constexpr uint32_t kUblkDefaultMaxIoBytes = 512u << 10;
// The kernel's limits (include/uapi/linux/ublk_cmd.h): UBLK_MAX_QUEUE_DEPTH
// tags per queue, and one request's buffer at most 1 << UBLK_IO_BUF_BITS (25)
// bytes, 32 MiB (the bits of a tag's buffer offset; older headers lack the name).
inline constexpr uint32_t kUblkMaxDepth = UBLK_MAX_QUEUE_DEPTH;
inline constexpr uint32_t kUblkMaxIoBytes = 1u << 25;
// Buffers one device may reserve (queues x depth x max_io, anonymous memory
// touched as requests use it): at most 4 GiB and a quarter of the machine's
// memory, but always what the default shape takes on those queues.
inline constexpr uint64_t kUblkMaxBufferBytes = 4ull << 30;

struct UblkParamsOptions {
  uint32_t logical_block = 512;    // 512 or 4096
  uint32_t physical_block = 4096;  // >= logical_block, power of two, <= 4096
  uint32_t io_opt = 0;             // 0: the backend's preferred block
  uint32_t max_io_bytes = kUblkDefaultMaxIoBytes;  // also the per-tag buffer size (ADD_DEV)
};

// A depth of 1..UBLK_MAX_QUEUE_DEPTH and a largest request that is a
// multiple of 4096 and of `logical_block`, from 4 KiB to 32 MiB; EINVAL naming
// the value and the limit otherwise.
Result<void> CheckUblkQueueShape(uint64_t depth, uint64_t max_io_bytes, uint32_t logical_block = 512);

// The buffer memory limit for a device of `queues` queues on a machine of
// `phys_bytes` memory (0: unknown, the 4 GiB bound alone).
uint64_t UblkBufferLimit(uint32_t queues, uint64_t phys_bytes);
// EINVAL, naming queues x depth x max_io and the limit, when a device of this
// shape would reserve more than UblkBufferLimit(queues, phys_bytes).
Result<void> CheckUblkBufferMemory(uint32_t queues, uint32_t depth, uint32_t max_io_bytes, uint64_t phys_bytes);
// The machine's memory (sysconf), 0 when unknown.
uint64_t PhysicalMemoryBytes();
// Both checks for a device of `queues` queues on this machine: the kernel's
// limits (CheckUblkQueueShape), then the buffer memory (CheckUblkBufferMemory
// with PhysicalMemoryBytes()). What UblkDevice::Add() runs before ADD_DEV, and
// the daemon before it opens the image.
Result<void> CheckUblkDeviceShape(uint32_t queues, uint32_t depth, uint32_t max_io_bytes, uint32_t logical_block);

Result<ublk_params> BuildUblkParams(const BackendCaps& caps, const UblkParamsOptions& options);

}  // namespace rbdnbd
