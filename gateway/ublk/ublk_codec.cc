#include "ublk/ublk_codec.h"

#include <cerrno>

namespace rbdnbd {

int DecodeUblkIo(const ublksrv_io_desc& desc, uint32_t max_io_bytes, UblkIo* out) {
  const uint8_t op = ublksrv_get_op(&desc);
  const uint32_t flags = ublksrv_get_flags(&desc) << 8;  // back to the UBLK_IO_F_* positions
  UblkIo io;
  switch (op) {
    case UBLK_IO_OP_READ: io.type = IoType::kRead; break;
    case UBLK_IO_OP_WRITE: io.type = IoType::kWrite; break;
    case UBLK_IO_OP_FLUSH: io.type = IoType::kFlush; break;
    case UBLK_IO_OP_DISCARD: io.type = IoType::kTrim; break;
    case UBLK_IO_OP_WRITE_ZEROES: io.type = IoType::kWriteZeroes; break;
    default: return -EOPNOTSUPP;
  }
  if (flags & UBLK_IO_F_FUA) io.flags |= kIoFua;
  if (io.type == IoType::kWriteZeroes && (flags & UBLK_IO_F_NOUNMAP)) io.flags |= kIoNoHole;

  if (io.type == IoType::kFlush) {
    // A flush has no range: the block layer leaves its start sector at -1.
    *out = io;
    return 0;
  }
  const uint64_t bytes = static_cast<uint64_t>(desc.nr_sectors) << kUblkSectorShift;
  if (desc.start_sector > (UINT64_MAX >> kUblkSectorShift)) return -EINVAL;
  io.offset = desc.start_sector << kUblkSectorShift;
  if (bytes > UINT64_MAX - io.offset || bytes > UINT32_MAX) return -EINVAL;
  io.length = static_cast<uint32_t>(bytes);
  if ((io.type == IoType::kRead || io.type == IoType::kWrite) && io.length > max_io_bytes) {
    return -EINVAL;
  }
  *out = io;
  return 0;
}

int32_t UblkCommitResult(const UblkIo& io, int backend_result) {
  if (backend_result < 0) return backend_result;
  if (io.type == IoType::kRead || io.type == IoType::kWrite) return static_cast<int32_t>(io.length);
  return 0;
}

}  // namespace rbdnbd
