#include "device/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {

class Listener::AcceptOp final : public Completion {
 public:
  explicit AcceptOp(Listener* l) : l_(l) {}
  void Complete(int res, uint32_t) override { l_->OnAccept(res); }

 private:
  Listener* l_;
};

Listener::Listener(UniqueFd fd, std::string address, bool is_unix)
    : fd_(std::move(fd)), address_(std::move(address)), is_unix_(is_unix),
      op_(std::make_unique<AcceptOp>(this)) {}

Listener::~Listener() {
  if (is_unix_ && fd_.valid()) ::unlink(address_.c_str());
}

Result<std::unique_ptr<Listener>> Listener::OpenUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Err(ENAMETOOLONG, "unix socket path '{}' must be 1..{} bytes", path, sizeof(addr.sun_path) - 1);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Err(errno, "socket(AF_UNIX): {}", strerror(errno));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Err(EEXIST, "{} exists and is not a socket", path);
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return Err(EADDRINUSE, "another server is listening on {}", path);
    }
    ::unlink(path.c_str());  // stale socket from a previous run
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Err(errno, "bind {}: {}", path, strerror(errno));
  }
  if (::listen(fd.get(), 128) != 0) return Err(errno, "listen {}: {}", path, strerror(errno));
  return std::unique_ptr<Listener>(new Listener(std::move(fd), path, true));
}

Result<std::unique_ptr<Listener>> Listener::OpenTcp(const std::string& host_port) {
  std::string host, port;
  if (!host_port.empty() && host_port.front() == '[') {
    auto close = host_port.find(']');
    if (close == std::string::npos || close + 1 >= host_port.size() || host_port[close + 1] != ':') {
      return Err(EINVAL, "bad TCP address '{}' (use HOST:PORT or [V6]:PORT)", host_port);
    }
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
  } else {
    auto colon = host_port.rfind(':');
    if (colon == std::string::npos) return Err(EINVAL, "bad TCP address '{}' (use HOST:PORT)", host_port);
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  if (port.empty()) return Err(EINVAL, "bad TCP address '{}': no port", host_port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Err(EINVAL, "cannot resolve '{}': {}", host_port, gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int last = EADDRNOTAVAIL;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) { last = errno; continue; }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      last = errno;
      continue;
    }
    return std::unique_ptr<Listener>(new Listener(std::move(fd), host_port, false));
  }
  return Err(last, "cannot listen on {}: {}", host_port, strerror(last));
}

void Listener::Start(EventLoop& loop, AcceptFn on_accept) {
  loop_ = &loop;
  on_accept_ = std::move(on_accept);
  Arm();
}

void Listener::Arm() {
  if (closing_ || inflight_) return;
  peer_len_ = sizeof(peer_);
  io_uring_prep_accept(loop_->GetSqe(op_.get()), fd_.get(), reinterpret_cast<sockaddr*>(&peer_),
                       &peer_len_, SOCK_CLOEXEC);
  inflight_ = true;
}

void Listener::OnAccept(int res) {
  inflight_ = false;
  if (closing_) {
    if (res >= 0) ::close(res);
    if (closed_) std::exchange(closed_, nullptr)();
    return;
  }
  if (res < 0) {
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      spdlog::warn("accept on {}: {}; retrying in 100 ms", address_, strerror(-res));
      loop_->RunAfter(std::chrono::milliseconds(100), [this] { Arm(); });
      return;
    }
    if (res != -EINTR && res != -ECONNABORTED && res != -EAGAIN) {
      spdlog::error("accept on {}: {}", address_, strerror(-res));
    }
    Arm();
    return;
  }
  UniqueFd fd(res);
  std::string peer = address_;
  if (!is_unix_) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (peer_.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&peer_);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
      port = ntohs(a->sin_port);
    } else if (peer_.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&peer_);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
      port = ntohs(a->sin6_port);
    }
    peer = fmt::format("{}:{}", host, port);
  } else {
    peer = fmt::format("unix:{}#{}", address_, res);
  }
  Arm();
  on_accept_(std::move(fd), std::move(peer));
}

void Listener::Close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  if (!inflight_) {
    done();
    return;
  }
  closed_ = std::move(done);
  // Ends the accept in flight; OnAccept then reports the close.
  ::shutdown(fd_.get(), SHUT_RDWR);
  struct CancelOp final : Completion {
    void Complete(int, uint32_t) override { delete this; }
  };
  io_uring_prep_cancel(loop_->GetSqe(new CancelOp), op_.get(), 0);
}

}  // namespace rbdnbd
