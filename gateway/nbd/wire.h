// Big-endian load/store helpers for the NBD codec.
//
// Contract: pure functions on caller-owned memory. Load*/Store* read or write
// exactly 2, 4 or 8 bytes at `p` (no alignment needed; the caller guarantees
// the bytes exist). Append* grows a caller-owned vector. No I/O, no state,
// safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace rbdnbd::nbd {

inline uint16_t LoadBe16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline uint64_t LoadBe64(const uint8_t* p) {
  return (uint64_t{LoadBe32(p)} << 32) | LoadBe32(p + 4);
}

inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline void StoreBe64(uint8_t* p, uint64_t v) {
  StoreBe32(p, static_cast<uint32_t>(v >> 32));
  StoreBe32(p + 4, static_cast<uint32_t>(v));
}

inline void AppendBe16(std::vector<uint8_t>* out, uint16_t v) {
  uint8_t b[2];
  StoreBe16(b, v);
  out->insert(out->end(), b, b + 2);
}

inline void AppendBe32(std::vector<uint8_t>* out, uint32_t v) {
  uint8_t b[4];
  StoreBe32(b, v);
  out->insert(out->end(), b, b + 4);
}

inline void AppendBe64(std::vector<uint8_t>* out, uint64_t v) {
  uint8_t b[8];
  StoreBe64(b, v);
  out->insert(out->end(), b, b + 8);
}

inline void AppendBytes(std::vector<uint8_t>* out, std::string_view s) {
  out->insert(out->end(), s.begin(), s.end());
}

}  // namespace rbdnbd::nbd
