// One connection at a time, on the endpoint's thread:
//
//   poll(listen, stop) --accept--> read request --complete--> answer --> linger --> close
//                                   |  (poll conn+stop, until the client deadline)
//                                   +-- > 8 KiB or malformed: 400 --> linger --> close
//                                   +-- deadline, EOF or error: close (no answer)
//   stop readable at any wait: close the connection, leave Run().
//
// "linger": after the answer, shut down our side and read what the client still sends
// (briefly), so that unread input (an oversized request) doesn't turn the close into
// a RST that would discard the answer before the client reads it.
#include "metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <exception>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "metrics/process_info.h"

namespace rbdnbd::metrics {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequestBytes = 8 * 1024;
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kMaxLingerBytes = 1 << 20;
constexpr auto kAcceptErrorBackoff = std::chrono::milliseconds(100);

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool any = false;  // ":PORT": every address (IPv6 dual-stack, else IPv4)
};

// "127.0.0.1:9480", "[::1]:9480", ":9480". Only numeric addresses: a name would need
// a resolver, and an address to serve on is the operator's to spell.
Result<SockAddr> ParseListenAddress(const std::string& address) {
  std::string host;
  std::string port_text;
  if (!address.empty() && address[0] == '[') {
    const auto close = address.find("]:");
    if (close == std::string::npos) return Err(EINVAL, "metrics address '{}': expected [IPV6]:PORT", address);
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
    if (host.empty()) return Err(EINVAL, "metrics address '{}': empty IPv6 address", address);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return Err(EINVAL, "metrics address '{}': expected HOST:PORT or :PORT", address);
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return Err(EINVAL, "metrics address '{}': an IPv6 address goes in brackets ([::1]:9480)", address);
    }
  }
  unsigned port = 0;
  const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() || port > 65535) {
    return Err(EINVAL, "metrics address '{}': bad port '{}' (0-65535)", address, port_text);
  }
  SockAddr a;
  if (host.empty()) {
    a.any = true;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(sockaddr_in6);
  } else if (address[0] == '[') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    in6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
      return Err(EINVAL, "metrics address '{}': '{}' is not an IPv6 address", address, host);
    }
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    in4->sin_family = AF_INET;
    if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) {
      return Err(EINVAL, "metrics address '{}': '{}' is not a numeric IPv4 address", address, host);
    }
    in4->sin_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

SockAddr AnyIpv4(const SockAddr& any6) {
  SockAddr a;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  in4->sin_family = AF_INET;
  in4->sin_addr.s_addr = htonl(INADDR_ANY);
  in4->sin_port = reinterpret_cast<const sockaddr_in6*>(&any6.ss)->sin6_port;
  a.len = sizeof(sockaddr_in);
  return a;
}

Result<UniqueFd> BindAndListen(const SockAddr& a, const std::string& address) {
  UniqueFd fd(::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Err(errno, "metrics address '{}': socket: {}", address, strerror(errno));
  const int one = 1;
  const int zero = 0;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return Err(errno, "metrics address '{}': SO_REUSEADDR: {}", address, strerror(errno));
  }
  if (a.any && a.ss.ss_family == AF_INET6) {
    // Dual-stack, whatever net.ipv6.bindv6only says.
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
      return Err(errno, "metrics address '{}': IPV6_V6ONLY: {}", address, strerror(errno));
    }
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
    const int e = errno;
    if (e == EADDRINUSE) return Err(e, "metrics address '{}': port in use ({})", address, strerror(e));
    if (e == EADDRNOTAVAIL) return Err(e, "metrics address '{}': not an address of this host ({})", address, strerror(e));
    return Err(e, "metrics address '{}': bind: {}", address, strerror(e));
  }
  if (::listen(fd.get(), 16) != 0) return Err(errno, "metrics address '{}': listen: {}", address, strerror(errno));
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

enum class Wait { kReady, kTimeout, kStop, kError };

// Waits for `events` on fd, or for the stop eventfd, until `deadline`.
Wait WaitFor(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::kTimeout;
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, 2, static_cast<int>(std::min<int64_t>(left, 60'000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (p[1].revents != 0) return Wait::kStop;
    if (p[0].revents != 0) return Wait::kReady;
  }
}

struct Request {
  std::string method;
  std::string path;
};

enum class Parse { kIncomplete, kDone, kBad };

// Parses what has arrived so far: the request line and the header lines, up to the
// empty line that ends them (CRLF, or a bare LF as RFC 9112 allows a server to take).
// On kDone, *end is the size of the request head.
Parse ParseRequest(std::string_view in, Request* req, size_t* end) {
  size_t pos = 0;
  bool first = true;
  for (;;) {
    const size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) return Parse::kIncomplete;
    std::string_view line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      // METHOD SP request-target SP HTTP/1.x
      const size_t sp1 = line.find(' ');
      const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos) return Parse::kBad;
      const std::string_view method = line.substr(0, sp1);
      const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string_view version = line.substr(sp2 + 1);
      if (method.empty() || target.empty()) return Parse::kBad;
      for (char c : method) {
        if (c < 'A' || c > 'Z') return Parse::kBad;
      }
      for (char c : target) {
        if (c <= ' ' || c == 0x7f) return Parse::kBad;
      }
      if (version != "HTTP/1.1" && version != "HTTP/1.0") return Parse::kBad;
      req->method = method;
      std::string_view path = target.substr(0, target.find('?'));
      // The absolute form (http://host:port/metrics), which a server must accept
      // (RFC 9112 3.2.2), names the same path.
      for (std::string_view scheme : {"http://", "https://"}) {
        if (path.size() >= scheme.size() && std::equal(scheme.begin(), scheme.end(), path.begin(), [](char a, char b) {
              return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
            })) {
          const size_t slash = path.find('/', scheme.size());
          path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
        }
      }
      if (path[0] != '/') return Parse::kBad;
      req->path = path;
      continue;
    }
    if (line.empty()) {
      *end = pos;
      return Parse::kDone;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Parse::kBad;
    for (char c : line.substr(0, colon)) {
      if (c <= ' ' || c == 0x7f) return Parse::kBad;  // no space before the colon (RFC 9112 5.1)
    }
  }
}

std::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string Serialize(const HttpResponse& r, bool head, bool allow_header) {
  assert(r.content_type.find_first_of("\r\n") == std::string::npos);  // the program's own, one header line
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", r.status,
                                Reason(r.status), r.content_type, r.body.size());
  if (allow_header) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += r.body;
  return out;
}

HttpResponse PlainText(int status, std::string_view body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = body;
  return r;
}

}  // namespace

HttpEndpoint::~HttpEndpoint() { Stop(); }

void HttpEndpoint::Handle(std::string path, Handler handler) {
  assert(!thread_.joinable());  // the thread reads handlers_ without a lock
  handlers_[std::move(path)] = std::move(handler);
}

void HttpEndpoint::set_client_timeout(std::chrono::milliseconds timeout) {
  assert(!thread_.joinable());
  client_timeout_ = timeout;
}

Result<void> HttpEndpoint::Start(const std::string& address) {
  if (thread_.joinable()) return Err(EALREADY, "metrics endpoint already serving on port {}", port_);
  auto addr = ParseListenAddress(address);
  if (!addr) return Unexpected(addr.error());
  auto fd = BindAndListen(*addr, address);
  if (!fd && addr->any && fd.error().code == EAFNOSUPPORT) fd = BindAndListen(AnyIpv4(*addr), address);
  if (!fd) return Unexpected(fd.error());
  UniqueFd stop(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop) return Err(errno, "metrics endpoint: eventfd: {}", strerror(errno));
  listen_fd_ = std::move(*fd);
  stop_fd_ = std::move(stop);
  port_ = BoundPort(listen_fd_.get());
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::exception& e) {
    listen_fd_.Reset();
    stop_fd_.Reset();
    port_ = 0;
    return Err(EAGAIN, "metrics endpoint: starting its thread: {}", e.what());
  }
  return {};
}

void HttpEndpoint::Stop() {
  if (!thread_.joinable()) return;
  assert(thread_.get_id() != std::this_thread::get_id());  // a handler must not stop its endpoint
  const uint64_t one = 1;
  // An eventfd write of 1 only fails when the counter would overflow: already woken.
  [[maybe_unused]] const ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
  thread_.join();
  listen_fd_.Reset();
  stop_fd_.Reset();
}

void HttpEndpoint::Run() {
  SetThreadName("metrics-http");
  for (;;) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics endpoint: poll: {}; stopped serving", strerror(errno));
      return;
    }
    if (p[1].revents != 0) return;
    if (p[0].revents == 0) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED) continue;
      // EMFILE and kin leave the listener readable: back off instead of spinning.
      spdlog::warn("metrics endpoint: accept: {}", strerror(e));
      pollfd s = {stop_fd_.get(), POLLIN, 0};
      if (::poll(&s, 1, static_cast<int>(kAcceptErrorBackoff.count())) > 0) return;
      continue;
    }
    if (!Serve(conn.get())) return;
  }
}

// Returns false when Stop() was asked for while serving.
bool HttpEndpoint::Serve(int fd) {
  const auto deadline = Clock::now() + client_timeout_;
  const int stop = stop_fd_.get();
  std::string in;
  Request req;
  Parse parsed = Parse::kIncomplete;
  char buf[4096];
  size_t end = 0;
  while (parsed == Parse::kIncomplete) {
    const Wait w = WaitFor(fd, POLLIN, stop, deadline);
    if (w == Wait::kStop) return false;
    if (w != Wait::kReady) return true;  // silent or broken client: dropped
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return true;  // closed before a whole request
    in.append(buf, static_cast<size_t>(n));
    parsed = ParseRequest(in, &req, &end);
    // Too long, whether complete (its head ends past the limit) or not yet.
    if ((parsed == Parse::kDone && end > kMaxRequestBytes) || (parsed == Parse::kIncomplete && in.size() > kMaxRequestBytes)) {
      parsed = Parse::kBad;
    }
  }

  HttpResponse resp;
  // A HEAD answer has no body whatever its status (RFC 9110 9.3.2).
  const bool head = parsed == Parse::kDone && req.method == "HEAD";
  bool allow = false;
  if (parsed == Parse::kBad) {
    resp = PlainText(400, "400 bad request\n");
  } else if (req.method != "GET" && req.method != "HEAD") {
    resp = PlainText(405, "405 method not allowed\n");
    allow = true;
  } else {
    const auto it = handlers_.find(req.path);
    if (it == handlers_.end()) {
      resp = PlainText(404, "404 page not found\n");
    } else {
      try {
        const auto t0 = std::chrono::steady_clock::now();
        resp = it->second();
        if (req.path == "/metrics") NoteMetricsRender(std::chrono::steady_clock::now() - t0);
      } catch (const std::exception& e) {
        spdlog::error("metrics endpoint: handler of {} threw: {}", req.path, e.what());
        resp = PlainText(500, "500 internal server error\n");
      } catch (...) {
        spdlog::error("metrics endpoint: handler of {} threw", req.path);
        resp = PlainText(500, "500 internal server error\n");
      }
    }
  }

  const std::string out = Serialize(resp, head, allow);
  size_t sent = 0;
  while (sent < out.size()) {
    const Wait w = WaitFor(fd, POLLOUT, stop, deadline);
    if (w == Wait::kStop) return false;
    if (w != Wait::kReady) return true;  // a client that doesn't read: dropped
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return true;
    sent += static_cast<size_t>(n);
  }

  ::shutdown(fd, SHUT_WR);
  const auto linger_deadline = std::min(deadline, Clock::now() + kLingerTime);
  size_t drained = 0;
  while (drained < kMaxLingerBytes) {
    const Wait w = WaitFor(fd, POLLIN, stop, linger_deadline);
    if (w == Wait::kStop) return false;
    if (w != Wait::kReady) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace rbdnbd::metrics
