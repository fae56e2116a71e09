#include "nbd/reply_codec.h"

#include "nbd/wire.h"

namespace rbdnbd::nbd {

void EncodeSimpleReply(uint8_t* out, uint32_t nbd_error, uint64_t cookie) {
  StoreBe32(out, kSimpleReplyMagic);
  StoreBe32(out + 4, nbd_error);
  StoreBe64(out + 8, cookie);
}

bool DecodeSimpleReply(const uint8_t* in16, SimpleReply* out) {
  if (LoadBe32(in16) != kSimpleReplyMagic) return false;
  out->error = LoadBe32(in16 + 4);
  out->cookie = LoadBe64(in16 + 8);
  return true;
}

}  // namespace rbdnbd::nbd
