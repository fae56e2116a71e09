// HttpEndpoint over real loopback sockets: answers (200, HEAD, 404, 405, 400) with
// their headers, the one-connection-at-a-time timeout, IPv6, address errors, Stop()
// latency, and the thread handlers run on.
#include "metrics/http_endpoint.h"
#include "metrics/exposition.h"
#include "metrics/process_info.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace rbdnbd::metrics {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A client socket connected to the endpoint, with a receive timeout so that a
// server bug fails the test instead of hanging it.
UniqueFd Dial(int port, int family = AF_INET) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid()) << strerror(errno);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  EXPECT_EQ(rc, 0) << strerror(errno);
  return fd;
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Everything until the server closes (or the 10 s receive timeout).
std::string ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      EXPECT_EQ(n, 0) << "recv: " << strerror(errno);
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string Exchange(int port, std::string_view request, int family = AF_INET) {
  UniqueFd fd = Dial(port, family);
  SendAll(fd.get(), request);
  return ReadToEof(fd.get());
}

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

Reply ParseReply(const std::string& raw) {
  Reply r;
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = raw.substr(0, end + 4);
  r.body = raw.substr(end + 4);
  if (r.head.starts_with("HTTP/1.1 ")) r.status = std::stoi(r.head.substr(9, 3));
  return r;
}

Reply Get(int port, const std::string& path, const std::string& method = "GET") {
  return ParseReply(Exchange(port, method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"));
}

class HttpEndpointTest : public ::testing::Test {
 protected:
  void StartOn(const std::string& address = "127.0.0.1:0") {
    ep_.Handle("/metrics", [] {
      HttpResponse r;
      r.body = "rbdnbd_up 1\n";
      return r;
    });
    ep_.Handle("/healthz", [] {
      HttpResponse r;
      r.status = 503;
      r.content_type = "text/plain";
      r.body = "draining\n";
      return r;
    });
    auto started = ep_.Start(address);
    ASSERT_TRUE(started) << started.error().message;
    ASSERT_GT(ep_.port(), 0);
  }
  HttpEndpoint ep_;
};

TEST_F(HttpEndpointTest, GetMetricsAnswersTheHandlersBodyWithHeaders) {
  StartOn();
  const Reply r = Get(ep_.port(), "/metrics");
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_TRUE(r.head.starts_with("HTTP/1.1 200 OK\r\n")) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Length: 12\r\n"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("\r\nConnection: close\r\n"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "rbdnbd_up 1\n");
}

TEST_F(HttpEndpointTest, HandlerStatusAndContentTypeAreAnswered) {
  StartOn();
  const Reply r = Get(ep_.port(), "/healthz");
  EXPECT_TRUE(r.head.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Type: text/plain\r\n"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "draining\n");
}

TEST_F(HttpEndpointTest, HeadHasTheHeadersAndContentLengthButNoBody) {
  StartOn();
  const Reply r = Get(ep_.port(), "/metrics", "HEAD");
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Length: 12\r\n"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "");
}

TEST_F(HttpEndpointTest, QueryStringIsIgnoredAndBareLfAndHttp10Accepted) {
  StartOn();
  EXPECT_EQ(Get(ep_.port(), "/metrics?name[]=x").body, "rbdnbd_up 1\n");
  EXPECT_EQ(ParseReply(Exchange(ep_.port(), "GET /metrics HTTP/1.0\n\n")).body, "rbdnbd_up 1\n");
}

TEST_F(HttpEndpointTest, AbsoluteFormTargetNamesThePath) {
  StartOn();
  EXPECT_EQ(Get(ep_.port(), "http://127.0.0.1/metrics").body, "rbdnbd_up 1\n");
  EXPECT_EQ(Get(ep_.port(), "HTTP://example:80/metrics?x").body, "rbdnbd_up 1\n");
  EXPECT_EQ(Get(ep_.port(), "http://example").status, 404);  // path "/"
  EXPECT_EQ(Get(ep_.port(), "ftp://x/metrics").status, 400);
}

TEST_F(HttpEndpointTest, UnknownPathIs404) {
  StartOn();
  EXPECT_EQ(Get(ep_.port(), "/").status, 404);
  const Reply head = Get(ep_.port(), "/nope", "HEAD");
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.body, "");  // HEAD: never a body
  const Reply r = Get(ep_.port(), "/metricsx");
  EXPECT_TRUE(r.head.starts_with("HTTP/1.1 404 Not Found\r\n")) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(r.head.find("\r\nConnection: close\r\n"), std::string::npos) << r.head;
}

TEST_F(HttpEndpointTest, OtherMethodsAre405WithAllow) {
  StartOn();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    const Reply r = Get(ep_.port(), "/metrics", method);
    EXPECT_TRUE(r.head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")) << method << ": " << r.head;
    EXPECT_NE(r.head.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << r.head;
  }
}

TEST_F(HttpEndpointTest, OversizedRequestIs400) {
  StartOn();
  const std::string big_header = "X-Big: " + std::string(9000, 'a') + "\r\n";
  // Complete, but past 8 KiB.
  EXPECT_EQ(ParseReply(Exchange(ep_.port(), "GET /metrics HTTP/1.1\r\n" + big_header + "\r\n")).status, 400);
  // Never complete: 9 KiB without the end of the head.
  EXPECT_EQ(ParseReply(Exchange(ep_.port(), "GET /metrics HTTP/1.1\r\n" + big_header)).status, 400);
  // Just under the limit is fine.
  const std::string fits = "GET /metrics HTTP/1.1\r\nX-Fits: " + std::string(8000, 'b') + "\r\n\r\n";
  ASSERT_LE(fits.size(), 8192u);
  EXPECT_EQ(ParseReply(Exchange(ep_.port(), fits)).status, 200);
}

TEST_F(HttpEndpointTest, GarbageIs400) {
  StartOn();
  for (const std::string& req : {
           std::string("hello\r\n\r\n"),
           std::string("GET\r\n\r\n"),
           std::string("GET metrics HTTP/1.1\r\n\r\n"),
           std::string("GET /metrics HTTP/2.0\r\n\r\n"),
           std::string("GET /metrics HTTP/1.1 extra\r\n\r\n"),
           std::string("get /metrics HTTP/1.1\r\n\r\n"),
           std::string("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
           std::string("GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n"),
           std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n", 13),  // a TLS hello
       }) {
    EXPECT_EQ(ParseReply(Exchange(ep_.port(), req)).status, 400) << req;
  }
  // Still serving after all that.
  EXPECT_EQ(Get(ep_.port(), "/metrics").status, 200);
}

TEST_F(HttpEndpointTest, ClientClosingEarlyIsDroppedAndTheNextServed) {
  StartOn();
  {
    UniqueFd fd = Dial(ep_.port());
    SendAll(fd.get(), "GET /met");
  }
  EXPECT_EQ(Get(ep_.port(), "/metrics").status, 200);
}

TEST_F(HttpEndpointTest, SilentClientIsDroppedAfterTheTimeoutThenTheNextIsServed) {
  ep_.set_client_timeout(milliseconds(400));
  StartOn();
  // Its timeout runs from its accept, which is after t0.
  const auto t0 = SteadyClock::now();
  UniqueFd silent = Dial(ep_.port());
  // Let the endpoint accept the silent one first.
  std::this_thread::sleep_for(milliseconds(50));
  const Reply r = Get(ep_.port(), "/metrics");
  const auto waited = SteadyClock::now() - t0;
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(waited, milliseconds(395));   // behind the silent one
  EXPECT_LT(waited, milliseconds(2000));  // but only for its timeout
  // The silent one got nothing and a close.
  EXPECT_EQ(ReadToEof(silent.get()), "");
}

TEST_F(HttpEndpointTest, LargeBodyIsDeliveredWhole) {
  const std::string body(3 << 20, 'x');
  ep_.Handle("/big", [&] {
    HttpResponse r;
    r.body = body;
    return r;
  });
  StartOn();
  const Reply r = Get(ep_.port(), "/big");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("\r\nContent-Length: 3145728\r\n"), std::string::npos) << r.head;
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_EQ(r.body, body);
}

TEST_F(HttpEndpointTest, ThrowingHandlerIs500AndTheEndpointKeepsServing) {
  ep_.Handle("/throws", []() -> HttpResponse { throw std::runtime_error("boom"); });
  StartOn();
  EXPECT_EQ(Get(ep_.port(), "/throws").status, 500);
  EXPECT_EQ(Get(ep_.port(), "/metrics").status, 200);
}

TEST_F(HttpEndpointTest, HandlersRunOnTheEndpointThread) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  ep_.Handle("/id", [&] {
    std::lock_guard lock(mu);
    ids.insert(std::this_thread::get_id());
    return HttpResponse{};
  });
  StartOn();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get(ep_.port(), "/id").status, 200);
  // Concurrent clients are served one at a time, still on that one thread.
  std::vector<std::future<int>> f;
  for (int i = 0; i < 4; ++i) f.push_back(std::async(std::launch::async, [&] { return Get(ep_.port(), "/id").status; }));
  for (auto& x : f) EXPECT_EQ(x.get(), 200);
  std::lock_guard lock(mu);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(*ids.begin(), std::this_thread::get_id());
}

TEST_F(HttpEndpointTest, Ipv6Loopback) {
  HttpEndpoint ep;
  ep.Handle("/metrics", [] { return HttpResponse{200, "text/plain", "v6\n"}; });
  auto started = ep.Start("[::1]:0");
  if (!started && (started.error().code == EADDRNOTAVAIL || started.error().code == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << started.error().message;
  }
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(ParseReply(Exchange(ep.port(), "GET /metrics HTTP/1.1\r\n\r\n", AF_INET6)).body, "v6\n");
}

TEST_F(HttpEndpointTest, PortOnlyServesEveryAddress) {
  StartOn(":0");
  EXPECT_EQ(ParseReply(Exchange(ep_.port(), "GET /metrics HTTP/1.1\r\n\r\n", AF_INET)).status, 200);
  UniqueFd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.valid()) {
    EXPECT_EQ(ParseReply(Exchange(ep_.port(), "GET /metrics HTTP/1.1\r\n\r\n", AF_INET6)).status, 200);
  }
}

TEST_F(HttpEndpointTest, PortInUseIsAClearError) {
  StartOn();
  HttpEndpoint second;
  const std::string address = "127.0.0.1:" + std::to_string(ep_.port());
  auto r = second.Start(address);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EADDRINUSE);
  EXPECT_NE(r.error().message.find(address), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("port in use"), std::string::npos) << r.error().message;
  EXPECT_EQ(second.port(), 0);
  // The first one is unaffected.
  EXPECT_EQ(Get(ep_.port(), "/metrics").status, 200);
}

TEST_F(HttpEndpointTest, BadAddressesAreClearErrors) {
  for (const std::string address :
       {"", "9480", "localhost:9480", "1.2.3:80", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:", "127.0.0.1:80x",
        "::1:9480", "[::1]9480", "[::1]", "[zz::q]:1", "[]:80"}) {
    HttpEndpoint ep;
    auto r = ep.Start(address);
    ASSERT_FALSE(r) << address;
    EXPECT_EQ(r.error().code, EINVAL) << address;
    EXPECT_NE(r.error().message.find("'" + address + "'"), std::string::npos) << r.error().message;
  }
  HttpEndpoint ep;
  auto r = ep.Start("192.0.2.1:0");  // TEST-NET-1: not an address of this host
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EADDRNOTAVAIL) << r.error().message;
}

TEST_F(HttpEndpointTest, StartTwiceIsAnError) {
  StartOn();
  auto r = ep_.Start("127.0.0.1:0");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EALREADY);
}

TEST_F(HttpEndpointTest, StopJoinsPromptlyEvenMidConnectionAndIsIdempotent) {
  StartOn();  // the default 5 s client timeout
  UniqueFd silent = Dial(ep_.port());
  SendAll(silent.get(), "GET /metr");  // half a request: the thread waits on it
  std::this_thread::sleep_for(milliseconds(100));
  const auto t0 = SteadyClock::now();
  ep_.Stop();
  EXPECT_LT(SteadyClock::now() - t0, milliseconds(250));
  ep_.Stop();
  EXPECT_EQ(ReadToEof(silent.get()), "");
  // The port is closed.
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(ep_.port()));
  EXPECT_NE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
}

TEST_F(HttpEndpointTest, StopWhenIdleIsPromptAndStartWorksAgain) {
  StartOn();
  std::this_thread::sleep_for(milliseconds(50));
  const auto t0 = SteadyClock::now();
  ep_.Stop();
  EXPECT_LT(SteadyClock::now() - t0, milliseconds(100));
  auto again = ep_.Start("127.0.0.1:0");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(Get(ep_.port(), "/metrics").status, 200);
}

TEST(HttpEndpointLifetimeTest, StopBeforeStartAndDestructorWithoutStart) {
  HttpEndpoint ep;
  ep.Stop();
  EXPECT_EQ(ep.port(), 0);
}

}  // namespace
}  // namespace rbdnbd::metrics

namespace rbdnbd::metrics {
namespace {

// rbdnbd_metrics_render_seconds: the previous GET /metrics handler's time, as
// WriteProcessFamilies reports it (only /metrics is timed, not /healthz).
TEST(MetricsRenderTimeTest, ThePreviousMetricsHandlersTimeIsReported) {
  HttpEndpoint ep;
  ep.Handle("/metrics", [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    TextWriter w;
    WriteProcessFamilies(w, "v", "c", 1.0);
    HttpResponse r;
    r.body = w.text();
    return r;
  });
  ep.Handle("/healthz", [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return HttpResponse{};
  });
  ASSERT_TRUE(ep.Start("127.0.0.1:0"));
  auto render_seconds = [](const std::string& body) {
    const std::string key = "\nrbdnbd_metrics_render_seconds ";
    const size_t at = body.find(key);
    EXPECT_NE(at, std::string::npos) << body;
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + key.size()));
  };
  (void)Get(ep.port(), "/metrics");
  (void)Get(ep.port(), "/healthz");  // not a /metrics render: leaves the value alone
  const double s = render_seconds(Get(ep.port(), "/metrics").body);
  EXPECT_GE(s, 0.030);
  EXPECT_LT(s, 0.200);
}

}  // namespace
}  // namespace rbdnbd::metrics
