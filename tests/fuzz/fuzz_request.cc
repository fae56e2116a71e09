// libFuzzer target: DecodeRequest + ValidateRequest on arbitrary headers and
// export views, plus the simple reply codec and ErrnoToNbd.
//
// Input layout: 28 bytes of request header, then (optional, zero-filled when
// short) export size u64, transmission flags u16, max_length u32, errno i32.
// Beyond "no crash, no UB", it checks the contract the connection code relies
// on and traps when it is broken.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nbd/protocol.h"
#include "nbd/reply_codec.h"
#include "nbd/request_codec.h"
#include "nbd/wire.h"

namespace {

using namespace rbdnbd::nbd;  // NOLINT

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool IsWriteLike(uint16_t t) {
  return t == kCmdWrite || t == kCmdTrim || t == kCmdWriteZeroes;
}

void CheckVerdict(const Request& r, const ExportView& e, const Verdict& v) {
  // The stream stays in sync: WRITE always drains its payload.
  Check(v.payload == (r.type == kCmdWrite ? r.length : 0));
  Check(v.error == 0 || v.error == static_cast<int>(kNbdEPERM) ||
        v.error == static_cast<int>(kNbdEINVAL) ||
        v.error == static_cast<int>(kNbdENOSPC));
  if (v.error != 0) return;
  // Anything accepted is safe to hand to a backend.
  Check(r.type <= kCmdBlockStatus && r.type != kCmdBlockStatus);
  if (r.type == kCmdDisc) return;
  Check(!(IsWriteLike(r.type) && (e.transmission_flags & kFlagReadOnly)));
  Check((r.flags & ~(kCmdFlagFua | kCmdFlagNoHole)) == 0);
  if (r.flags & kCmdFlagFua) Check(e.transmission_flags & kFlagSendFua);
  if (r.flags & kCmdFlagNoHole) Check(r.type == kCmdWriteZeroes);
  if (r.type == kCmdFlush) {
    Check(r.offset == 0 && r.length == 0);
    Check(e.transmission_flags & kFlagSendFlush);
    return;
  }
  Check(r.length > 0);
  Check(r.offset <= e.size && r.length <= e.size - r.offset);
  if (r.type == kCmdRead || r.type == kCmdWrite) Check(r.length <= e.max_length);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kRequestHeaderSize) return 0;
  uint8_t tail[18] = {};
  std::memcpy(tail, data + kRequestHeaderSize,
              std::min(sizeof tail, size - kRequestHeaderSize));

  ExportView e{LoadBe64(tail), LoadBe16(tail + 8)};
  if (size >= kRequestHeaderSize + 14) e.max_length = LoadBe32(tail + 10);

  Request r{};
  if (DecodeRequest(data, &r)) {
    uint8_t again[kRequestHeaderSize];
    EncodeRequest(r, again);
    Check(std::memcmp(again, data, kRequestHeaderSize) == 0);
    CheckVerdict(r, e, ValidateRequest(r, e));

    uint8_t reply[kSimpleReplyHeaderSize];
    const uint32_t err = ErrnoToNbd(static_cast<int>(LoadBe32(tail + 14)));
    EncodeSimpleReply(reply, err, r.cookie);
    SimpleReply decoded{};
    Check(DecodeSimpleReply(reply, &decoded));
    Check(decoded.error == err && decoded.cookie == r.cookie);
  } else {
    Check(LoadBe32(data) != kRequestMagic);
  }
  return 0;
}
