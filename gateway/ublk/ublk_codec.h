// ublk codec: a ublk I/O descriptor (what the driver wrote into the queue's
// shared descriptor array for one tag) to our backend request, and a backend
// result to the value COMMIT_AND_FETCH_REQ hands back to the driver.
//
// Contract: pure functions, no I/O, no state; any thread.
// * DecodeUblkIo() maps READ/WRITE/FLUSH/DISCARD/WRITE_ZEROES to IoType,
//   UBLK_IO_F_FUA to kIoFua and, for WRITE_ZEROES, the absence of
//   UBLK_IO_F_NOUNMAP to nothing (the backend may punch) and its presence to
//   kIoNoHole (allocate, don't punch). Offsets and lengths are in bytes
//   (sectors are 512 bytes in ublk whatever the logical block size); a FLUSH
//   has offset and length 0 whatever its descriptor says (the block layer
//   leaves a flush request's start sector at -1). Any other
//   op (WRITE_SAME, zoned ops) is -EOPNOTSUPP; a range that overflows 64 bits
//   or a data op longer than `max_io_bytes` is -EINVAL.
// * UblkCommitResult(): what the driver expects in ublksrv_io_cmd.result:
//   the byte count for a successful READ/WRITE, 0 for the other ops, and the
//   negative errno of a failure unchanged.
#pragma once

#include <linux/ublk_cmd.h>

#include <cstdint>

#include "backend/backend.h"

namespace rbdnbd {

inline constexpr uint32_t kUblkSectorShift = 9;

struct UblkIo {
  IoType type = IoType::kRead;
  uint32_t flags = 0;  // kIoFua | kIoNoHole
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Returns 0 and fills `out`, or a negative errno (see above).
int DecodeUblkIo(const ublksrv_io_desc& desc, uint32_t max_io_bytes, UblkIo* out);

int32_t UblkCommitResult(const UblkIo& io, int backend_result);

}  // namespace rbdnbd
