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

// How one endpoint reacts within `timeout`: no TCP connection, a connection
// but no banner, or the start of a Ceph banner.
MonitorReach ProbeEndpoint(const std::string& endpoint, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [deadline] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
  };
  std::string host, port;
  SplitHostPort(endpoint, &host, &port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return MonitorReach::kNothingAccepts;
  }
  MonitorReach best = MonitorReach::kNothingAccepts;
  for (addrinfo* ai = res; ai != nullptr && best != MonitorReach::kAnswers && left_ms() > 0; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) continue;
      pollfd p{fd.get(), POLLOUT, 0};
      if (poll(&p, 1, left_ms()) != 1) continue;
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) continue;
    }
    best = MonitorReach::kNoBanner;
    // Every Ceph banner starts with these bytes, whatever the protocol version.
    static constexpr std::string_view kBanner = "ceph v";
    char buf[8];
    size_t got = 0;
    while (got < kBanner.size()) {
      pollfd p{fd.get(), POLLIN, 0};
      if (poll(&p, 1, left_ms()) != 1) break;
      ssize_t n = recv(fd.get(), buf + got, kBanner.size() - got, 0);
      if (n <= 0) break;  // closed or reset without a banner: not a live monitor
      got += static_cast<size_t>(n);
    }
    if (got == kBanner.size() && std::string_view(buf, got) == kBanner) best = MonitorReach::kAnswers;
  }
  freeaddrinfo(res);
  return best;
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

MonitorReach ProbeMonitors(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout) {
  // One bound for all: many blackholed monitors must not add up. A silent
  // endpoint may use up the time that was left; that is the answer anyway
  // unless a later one talks, so each gets at most half of what is left.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MonitorReach best = MonitorReach::kNothingAccepts;
  for (size_t i = 0; i < endpoints.size(); i++) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto slice = i + 1 == endpoints.size() ? left : std::max(left / 2, std::chrono::milliseconds(1));
    best = std::max(best, ProbeEndpoint(endpoints[i], slice));
    if (best == MonitorReach::kAnswers) break;
  }
  return best;
}

const char* MonitorReachName(MonitorReach reach) {
  switch (reach) {
    case MonitorReach::kNothingAccepts: return "nothing accepts";
    case MonitorReach::kNoBanner: return "accepts, no banner";
    case MonitorReach::kAnswers: return "answers";
  }
  return "?";
}

}  // namespace rbdnbd
