#include "api/socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

namespace rbdnbd::api {

Result<std::string> ReadLine(int fd, std::chrono::seconds timeout) {
  std::string line;
  char c;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count() * 1000)) <= 0) {
      return Err(ETIMEDOUT, "no answer on the control socket within {} s", timeout.count());
    }
    // One byte at a time: nothing past the newline is consumed, and a message is small.
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "control socket read: {}", strerror(errno));
    if (n == 0) {
      if (line.empty()) return Err(ECONNRESET, "the control socket closed without an answer");
      return line;
    }
    if (c == '\n') return line;
    line.push_back(c);
    if (line.size() > kMaxMessageBytes) return Err(EMSGSIZE, "control message over {} bytes", kMaxMessageBytes);
  }
}

Result<void> WriteAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "control socket write: {}", strerror(errno));
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<std::string> CallDaemon(const std::string& socket_path, std::string request,
                               std::chrono::seconds reply_timeout) {
  request.push_back('\n');
  auto wipe = [&request] { explicit_bzero(request.data(), request.size()); };  // may hold a key
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    wipe();
    return Err(ENAMETOOLONG, "control socket path too long: {}", socket_path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    int e = errno;
    wipe();
    return Err(e, "socket: {}", strerror(e));
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    wipe();
    return Err(e, "cannot reach the rbd-nbdd daemon at {}: {} (is `rbd-nbdd daemon` running?)", socket_path,
               strerror(e));
  }
  auto w = WriteAll(fd.get(), request);
  wipe();
  if (!w) return Unexpected(w.error());
  return ReadLine(fd.get(), reply_timeout);
}

}  // namespace rbdnbd::api
