// libFuzzer target: feed arbitrary client bytes to a Handshake in
// BytesWanted() chunks, against a directory of two exports.
//
// Beyond "no crash, no UB", it checks what a connection relies on: the
// machine never asks for more than 64 KiB, terminal states want nothing, and
// every reply it emits while negotiating is a well-framed option reply.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "nbd/handshake.h"
#include "nbd/protocol.h"
#include "nbd/wire.h"

namespace {

using namespace rbdnbd::nbd;  // NOLINT

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

class TwoExports : public ExportDirectory {
 public:
  TwoExports() {
    exports_.push_back(ExportInfo{"disk0", "first disk", 1 << 20,
                                  kFlagSendFlush | kFlagSendTrim});
    exports_.push_back(ExportInfo{"ro", "", 4096, kFlagReadOnly});
  }
  std::optional<ExportInfo> Find(std::string_view name) const override {
    if (name.empty()) return exports_[0];
    for (const ExportInfo& e : exports_)
      if (e.name == name) return e;
    return std::nullopt;
  }
  std::vector<ExportInfo> List() const override { return exports_; }

 private:
  std::vector<ExportInfo> exports_;
};

// True when `out` is a sequence of complete fixed-newstyle option replies.
bool WellFramedReplies(const std::vector<uint8_t>& out, bool* ends_with_ack) {
  size_t at = 0;
  *ends_with_ack = false;
  while (at < out.size()) {
    if (out.size() - at < kOptionReplyHeaderSize) return false;
    if (LoadBe64(&out[at]) != kOptionReplyMagic) return false;
    const uint32_t type = LoadBe32(&out[at + 12]);
    const uint32_t length = LoadBe32(&out[at + 16]);
    if (length > out.size() - at - kOptionReplyHeaderSize) return false;
    *ends_with_ack = type == kRepAck;
    at += kOptionReplyHeaderSize + length;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TwoExports dir;
  Handshake hs(dir);
  std::vector<uint8_t> out;
  hs.Greeting(&out);
  Check(out.size() == kGreetingSize);

  size_t at = 0;
  Handshake::State state = Handshake::State::kNegotiating;
  while (state == Handshake::State::kNegotiating) {
    const size_t want = hs.BytesWanted();
    Check(want > 0 && want <= kMaxOptionDataLength);
    if (size - at < want) break;
    out.clear();
    state = hs.Feed(std::span<const uint8_t>(data + at, want), &out);
    at += want;
    bool ack = false;
    if (state == Handshake::State::kNegotiating) {
      Check(WellFramedReplies(out, &ack));
    } else if (state == Handshake::State::kTransmission) {
      // EXPORT_NAME: size + flags (+ zeroes); GO: replies ending in ACK.
      const bool export_name = out.size() == 10 || out.size() == 134;
      Check(export_name || (WellFramedReplies(out, &ack) && ack));
      const ExportInfo& e = hs.selected_export();
      Check(e.name == "disk0" || e.name == "ro");
      Check(e.transmission_flags & kFlagHasFlags);
    } else {
      Check(!hs.close_reason().empty());
      Check(WellFramedReplies(out, &ack));
    }
  }
  if (state != Handshake::State::kNegotiating) Check(hs.BytesWanted() == 0);
  Check(hs.options_seen() <= kMaxOptions);
  return 0;
}
