#include "rbd/mon_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "common/unique_fd.h"

namespace rbdnbd {

namespace {

// One address of a vector, without its type prefix and nonce.
std::string StripAddress(std::string_view a) {
  if (a.starts_with("v1:") || a.starts_with("v2:") || a.starts_with("any:")) a.remove_prefix(a.find(':') + 1);
  if (auto slash = a.find('/'); slash != std::string_view::npos) a = a.substr(0, slash);
  return std::string(a);
}

// Splits "host:port" (or "[v6]:port", or a bare host) into its parts.
void SplitHostPort(const std::string& ep, std::string* host, std::string* port) {
  if (!ep.empty() && ep.front() == '[') {
    auto close = ep.find(']');
    *host = ep.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    *port = close != std::string::npos && close + 1 < ep.size() && ep[close + 1] == ':' ? ep.substr(close + 2) : "";
    return;
  }
  auto colon = ep.rfind(':');
  if (colon == std::string::npos || ep.find(':') != colon) {  // no port, or a bare IPv6
    *host = ep;
    port->clear();
    return;
  }
  *host = ep.substr(0, colon);
  *port = ep.substr(colon + 1);
}

bool AcceptsTcp(const std::string& endpoint, std::chrono::milliseconds timeout) {
  std::string host, port;
  SplitHostPort(endpoint, &host, &port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return false;
  bool ok = false;
  for (addrinfo* ai = res; ai != nullptr && !ok; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      ok = true;
      break;
    }
    if (errno != EINPROGRESS) continue;
    pollfd p{fd.get(), POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) continue;
    int err = 0;
    socklen_t len = sizeof(err);
    ok = getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  }
  freeaddrinfo(res);
  return ok;
}

}  // namespace

std::vector<std::string> MonitorEndpoints(std::string_view mon_host) {
  std::vector<std::string> out;
  auto add = [&out](std::string ep) {
    if (!ep.empty() && std::find(out.begin(), out.end(), ep) == out.end()) out.push_back(std::move(ep));
  };
  size_t i = 0;
  while (i < mon_host.size()) {
    char c = mon_host[i];
    if (c == ',' || c == ';' || c == ' ' || c == '\t') {
      i++;
      continue;
    }
    // "[v2:..,v1:..]" is one monitor's vector; "[::1]:3300" is one IPv6 endpoint.
    bool vector = c == '[' && (mon_host.substr(i + 1).starts_with("v1:") || mon_host.substr(i + 1).starts_with("v2:") ||
                               mon_host.substr(i + 1).starts_with("any:"));
    size_t end;
    if (vector) {
      int depth = 0;  // IPv6 addresses inside bring their own brackets
      for (end = i; end < mon_host.size(); end++) {
        if (mon_host[end] == '[') depth++;
        if (mon_host[end] == ']' && --depth == 0) break;
      }
      std::string_view inner = mon_host.substr(i + 1, end - i - 1);
      size_t j = 0;
      while (j <= inner.size()) {
        size_t comma = std::min(inner.find(',', j), inner.size());
        add(StripAddress(inner.substr(j, comma - j)));
        j = comma + 1;
      }
      i = end + 1;
      continue;
    }
    end = c == '[' ? mon_host.find(']', i) : i;
    if (end == std::string_view::npos) end = i;
    end = mon_host.find_first_of(",; \t", end);
    if (end == std::string_view::npos) end = mon_host.size();
    std::string ep = StripAddress(mon_host.substr(i, end - i));
    std::string host, port;
    SplitHostPort(ep, &host, &port);
    if (port.empty()) {  // a bare host: Ceph tries both default ports
      bool v6 = host.find(':') != std::string::npos;
      add(v6 ? "[" + host + "]:3300" : host + ":3300");
      add(v6 ? "[" + host + "]:6789" : host + ":6789");
    } else {
      add(ep);
    }
    i = end;
  }
  return out;
}

bool AnyEndpointAcceptsTcp(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout) {
  // One bound for all: many blackholed monitors must not add up.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  return std::any_of(endpoints.begin(), endpoints.end(), [deadline](const std::string& ep) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 && AcceptsTcp(ep, left);
  });
}

}  // namespace rbdnbd
