// Helpers for the handshake tests: a fixed export directory, a client that
// builds wire messages by hand (independently of the code under test), and a
// driver that feeds a byte stream to a Handshake in BytesWanted() chunks, the
// way a connection reading from a socket would.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/handshake.h"

namespace rbdnbd::nbd::testing {

using Bytes = std::vector<uint8_t>;

// Appends v as n big-endian bytes.
inline void Be(Bytes* b, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline void Str(Bytes* b, std::string_view s) { b->insert(b->end(), s.begin(), s.end()); }

// "disk0" (the default, 1 MiB, flush+trim+fua) and "ro" (read-only, 64 KiB).
class TwoExports : public ExportDirectory {
 public:
  TwoExports() {
    ExportInfo a;
    a.name = "disk0";
    a.description = "first disk";
    a.size = 1 << 20;
    a.transmission_flags = kFlagSendFlush | kFlagSendTrim | kFlagSendFua;
    ExportInfo b;
    b.name = "ro";
    b.size = 64 << 10;
    b.transmission_flags = kFlagReadOnly;
    b.min_block = 512;
    b.preferred_block = 65536;
    b.max_block = 1 << 20;
    exports_ = {a, b};
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

// Client -> server messages.
inline Bytes ClientFlags(uint32_t flags) {
  Bytes b;
  Be(&b, flags, 4);
  return b;
}

inline Bytes OptionHeader(uint32_t option, uint32_t length,
                          uint64_t magic = 0x49484156454f5054) {
  Bytes b;
  Be(&b, magic, 8);
  Be(&b, option, 4);
  Be(&b, length, 4);
  return b;
}

inline Bytes Option(uint32_t option, const Bytes& data = {}) {
  Bytes b = OptionHeader(option, static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

inline Bytes GoData(std::string_view name, std::vector<uint16_t> infos = {}) {
  Bytes d;
  Be(&d, name.size(), 4);
  Str(&d, name);
  Be(&d, infos.size(), 2);
  for (uint16_t i : infos) Be(&d, i, 2);
  return d;
}

// Server -> client option reply, built by hand.
inline Bytes Reply(uint32_t option, uint32_t type, const Bytes& data = {}) {
  Bytes b = {0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9};
  Be(&b, option, 4);
  Be(&b, type, 4);
  Be(&b, data.size(), 4);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

inline Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

struct Outcome {
  Handshake::State state = Handshake::State::kNegotiating;
  Bytes out;
  size_t consumed = 0;
};

// Feeds `in` in BytesWanted() chunks until it runs out or the state is
// terminal.
inline Outcome Drive(Handshake* hs, const Bytes& in) {
  Outcome r;
  while (r.state == Handshake::State::kNegotiating) {
    const size_t want = hs->BytesWanted();
    if (in.size() - r.consumed < want) break;
    r.state = hs->Feed(std::span<const uint8_t>(in.data() + r.consumed, want),
                       &r.out);
    r.consumed += want;
  }
  return r;
}

// Length of the error message in an option reply that starts at `at`.
inline uint32_t ReplyLength(const Bytes& out, size_t at) {
  return (uint32_t{out[at + 16]} << 24) | (uint32_t{out[at + 17]} << 16) |
         (uint32_t{out[at + 18]} << 8) | out[at + 19];
}

// The first 16 bytes of a reply (magic, option, type): messages may vary.
inline Bytes ReplyHead(const Bytes& out, size_t at = 0) {
  return Bytes(out.begin() + at, out.begin() + at + 16);
}

}  // namespace rbdnbd::nbd::testing
