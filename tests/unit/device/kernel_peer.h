// KernelPeer: the test's side of a socketpair, speaking the NBD transmission
// phase the way the kernel's nbd driver does (no handshake, pipelined
// requests, replies matched by cookie). Blocking I/O; test thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nbd/reply_codec.h"
#include "nbd/request_codec.h"

namespace rbdnbd::testing {

class KernelPeer {
 public:
  explicit KernelPeer(int fd) : fd_(fd) {}

  // Sends one request header (and the payload, if any). False if the socket broke.
  bool Send(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length, uint16_t flags = 0,
            const std::vector<uint8_t>& payload = {});
  // Sends raw bytes (for malformed requests).
  bool SendRaw(const void* p, size_t n);
  // Reads one simple reply header; for a successful read of `read_len` bytes
  // also its payload. False on EOF or a malformed reply.
  bool Receive(nbd::SimpleReply* reply, std::vector<uint8_t>* data = nullptr, uint32_t read_len = 0);
  // True when the server closed the socket (reads return EOF) within 10 s.
  bool WaitForEof();

 private:
  bool ReadFull(void* p, size_t n);
  int fd_;
};

std::vector<uint8_t> Pattern(size_t n, uint32_t seed);

}  // namespace rbdnbd::testing
