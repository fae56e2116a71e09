#include "nbd/request_codec.h"

#include <cerrno>
#include <climits>

#include "nbd/wire.h"

namespace rbdnbd::nbd {
namespace {

constexpr uint16_t kKnownCmdFlags = kCmdFlagFua | kCmdFlagNoHole | kCmdFlagDf |
                                    kCmdFlagReqOne | kCmdFlagFastZero;

bool IsWriteLike(uint16_t type) {
  return type == kCmdWrite || type == kCmdTrim || type == kCmdWriteZeroes;
}

// Flags this server accepts on `type`, before looking at what is advertised.
// FUA: the spec says the server MUST accept it on every command once
// kFlagSendFua is advertised (clients, the kernel included, set it on reads
// and flushes too); it only means something for the writing commands.
// DF and REQ_ONE need structured replies and FAST_ZERO needs
// kFlagSendFastZero, none of which rbd-nbdd offers, so they are never valid.
uint16_t AllowedFlags(uint16_t type) {
  return type == kCmdWriteZeroes ? kCmdFlagFua | kCmdFlagNoHole : kCmdFlagFua;
}

// The transmission flag that must be advertised before `type` may be sent;
// 0 when the command needs none.
uint16_t RequiredCapability(uint16_t type) {
  switch (type) {
    case kCmdFlush:
      return kFlagSendFlush;
    case kCmdTrim:
      return kFlagSendTrim;
    case kCmdWriteZeroes:
      return kFlagSendWriteZeroes;
    case kCmdCache:
      return kFlagSendCache;
    default:
      return 0;
  }
}

int CheckFlags(const Request& r, const ExportView& e) {
  if ((r.flags & ~kKnownCmdFlags) != 0) return kNbdEINVAL;
  if ((r.flags & ~AllowedFlags(r.type)) != 0) return kNbdEINVAL;
  if ((r.flags & kCmdFlagFua) != 0 && (e.transmission_flags & kFlagSendFua) == 0)
    return kNbdEINVAL;
  return 0;
}

int CheckRange(const Request& r, const ExportView& e) {
  // Written so that offset + length never has to be computed (it may wrap).
  const bool in_range = r.offset <= e.size && r.length <= e.size - r.offset;
  if (in_range) return 0;
  return (r.type == kCmdWrite || r.type == kCmdWriteZeroes) ? kNbdENOSPC
                                                            : kNbdEINVAL;
}

int Check(const Request& r, const ExportView& e) {
  if (r.type > kCmdBlockStatus) return kNbdEINVAL;                    // 1
  if (r.type == kCmdDisc) return 0;                                   // 2
  if (IsWriteLike(r.type) && (e.transmission_flags & kFlagReadOnly))  // 3
    return kNbdEPERM;
  if (r.type == kCmdBlockStatus) return kNbdEINVAL;                   // 4
  if (int err = CheckFlags(r, e); err != 0) return err;               // 5
  const uint16_t cap = RequiredCapability(r.type);                    // 6
  if (cap != 0 && (e.transmission_flags & cap) == 0) return kNbdEINVAL;
  if (r.type == kCmdFlush)                                            // 7
    return (r.offset != 0 || r.length != 0) ? kNbdEINVAL : 0;
  if (r.length == 0) return kNbdEINVAL;                               // 8
  if ((r.type == kCmdRead || r.type == kCmdWrite) &&                  // 9
      r.length > e.max_length)
    return kNbdEINVAL;
  return CheckRange(r, e);                                            // 10
}

}  // namespace

bool DecodeRequest(const uint8_t* header, Request* out) {
  if (LoadBe32(header) != kRequestMagic) return false;
  out->flags = LoadBe16(header + 4);
  out->type = LoadBe16(header + 6);
  out->cookie = LoadBe64(header + 8);
  out->offset = LoadBe64(header + 16);
  out->length = LoadBe32(header + 24);
  return true;
}

void EncodeRequest(const Request& r, uint8_t* out) {
  StoreBe32(out, kRequestMagic);
  StoreBe16(out + 4, r.flags);
  StoreBe16(out + 6, r.type);
  StoreBe64(out + 8, r.cookie);
  StoreBe64(out + 16, r.offset);
  StoreBe32(out + 24, r.length);
}

Verdict ValidateRequest(const Request& r, const ExportView& e) {
  Verdict v;
  // Only WRITE carries data client -> server; it must be drained whatever
  // the verdict, so this is decided before (and apart from) any rule.
  v.payload = r.type == kCmdWrite ? r.length : 0;
  v.error = Check(r, e);
  return v;
}

uint32_t ErrnoToNbd(int err) {
  // INT_MIN has no positive counterpart; it is no errno anyway.
  const int e = err == INT_MIN ? EIO : err < 0 ? -err : err;
  switch (e) {
    case 0:
      return 0;
    case EPERM:
    case EROFS:
      return kNbdEPERM;
    case ENOMEM:
      return kNbdENOMEM;
    case EINVAL:
      return kNbdEINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return kNbdENOSPC;
    case EOVERFLOW:
      return kNbdEOVERFLOW;
    case ENOTSUP:  // == EOPNOTSUPP on Linux
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
      return kNbdENOTSUP;
    case ESHUTDOWN:
      return kNbdESHUTDOWN;
    default:
      return kNbdEIO;
  }
}

const char* CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead:
      return "READ";
    case kCmdWrite:
      return "WRITE";
    case kCmdDisc:
      return "DISC";
    case kCmdFlush:
      return "FLUSH";
    case kCmdTrim:
      return "TRIM";
    case kCmdCache:
      return "CACHE";
    case kCmdWriteZeroes:
      return "WRITE_ZEROES";
    case kCmdBlockStatus:
      return "BLOCK_STATUS";
    default:
      return "UNKNOWN";
  }
}

}  // namespace rbdnbd::nbd
