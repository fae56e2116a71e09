#include "kernel_peer.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace rbdnbd::testing {

bool KernelPeer::SendRaw(const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t r = ::send(fd_, b, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool KernelPeer::Send(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length, uint16_t flags,
                      const std::vector<uint8_t>& payload) {
  nbd::Request r{flags, type, cookie, offset, length};
  uint8_t hdr[nbd::kRequestHeaderSize];
  nbd::EncodeRequest(r, hdr);
  if (!SendRaw(hdr, sizeof(hdr))) return false;
  return payload.empty() || SendRaw(payload.data(), payload.size());
}

bool KernelPeer::ReadFull(void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) <= 0) return false;  // a hang is a failure, not a stuck test
    ssize_t r = ::recv(fd_, b, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool KernelPeer::Receive(nbd::SimpleReply* reply, std::vector<uint8_t>* data, uint32_t read_len) {
  uint8_t hdr[nbd::kSimpleReplyHeaderSize];
  if (!ReadFull(hdr, sizeof(hdr)) || !nbd::DecodeSimpleReply(hdr, reply)) return false;
  if (data != nullptr && reply->error == 0 && read_len > 0) {
    data->resize(read_len);
    return ReadFull(data->data(), read_len);
  }
  return true;
}

bool KernelPeer::WaitForEof() {
  uint8_t scratch[4096];
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) <= 0) return false;
    ssize_t r = ::recv(fd_, scratch, sizeof(scratch), 0);
    if (r == 0) return true;
    if (r < 0 && errno != EINTR) return errno == ECONNRESET;
  }
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

}  // namespace rbdnbd::testing
