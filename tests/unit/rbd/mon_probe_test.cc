#include "rbd/mon_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

using Endpoints = std::vector<std::string>;

TEST(MonitorEndpointsTest, ParsesEveryFormCephConfAccepts) {
  EXPECT_EQ(MonitorEndpoints("127.0.0.1:14200"), (Endpoints{"127.0.0.1:14200"}));
  EXPECT_EQ(MonitorEndpoints("[v2:127.0.0.1:14200,v1:127.0.0.1:14201]"),
            (Endpoints{"127.0.0.1:14200", "127.0.0.1:14201"}));
  EXPECT_EQ(MonitorEndpoints("[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0],[v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0]"),
            (Endpoints{"10.0.0.1:3300", "10.0.0.1:6789", "10.0.0.2:3300", "10.0.0.2:6789"}));
  EXPECT_EQ(MonitorEndpoints("v2:10.0.0.1:3300, 10.0.0.2:6789;10.0.0.3:6789"),
            (Endpoints{"10.0.0.1:3300", "10.0.0.2:6789", "10.0.0.3:6789"}));
  EXPECT_EQ(MonitorEndpoints("10.0.0.1"), (Endpoints{"10.0.0.1:3300", "10.0.0.1:6789"}));
  EXPECT_EQ(MonitorEndpoints("[::1]:3300 [v2:[::1]:3301]"), (Endpoints{"[::1]:3300", "[::1]:3301"}));
  EXPECT_EQ(MonitorEndpoints("mon.example:6789"), (Endpoints{"mon.example:6789"}));
  EXPECT_EQ(MonitorEndpoints("10.0.0.1:6789,10.0.0.1:6789"), (Endpoints{"10.0.0.1:6789"}));
}

TEST(MonitorEndpointsTest, EmptyOrJunkGivesNothingUsable) {
  EXPECT_TRUE(MonitorEndpoints("").empty());
  EXPECT_TRUE(MonitorEndpoints(" ,; ").empty());
  EXPECT_EQ(ProbeMonitors(MonitorEndpoints("[v2:"), std::chrono::milliseconds(200)), MonitorReach::kNothingAccepts);
}

// A loopback listener; `banner` (if any) is written to every connection the
// test accepts with Serve().
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    socklen_t len = sizeof(a);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    endpoint_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~Listener() {
    if (server_.joinable()) server_.join();
    close(fd_);
  }
  // Accepts one connection in the background and writes `banner` to it.
  void ServeOnce(std::string banner) {
    server_ = std::thread([this, banner] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      EXPECT_EQ(write(c, banner.data(), banner.size()), static_cast<ssize_t>(banner.size()));
      char b;
      (void)read(c, &b, 1);  // until the probe hangs up
      close(c);
    });
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  int fd_ = -1;
  std::string endpoint_;
  std::thread server_;
};

// A port that was free a moment ago: bound and closed again.
std::string ClosedEndpoint() {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in b{};
  b.sin_family = AF_INET;
  b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(c, reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  socklen_t len = sizeof(b);
  EXPECT_EQ(getsockname(c, reinterpret_cast<sockaddr*>(&b), &len), 0);
  close(c);
  return "127.0.0.1:" + std::to_string(ntohs(b.sin_port));
}

TEST(ProbeMonitorsTest, NothingListeningIsNothingAccepts) {
  EXPECT_EQ(ProbeMonitors({ClosedEndpoint()}, std::chrono::milliseconds(500)), MonitorReach::kNothingAccepts);
  EXPECT_EQ(ProbeMonitors({}, std::chrono::milliseconds(500)), MonitorReach::kNothingAccepts);
}

TEST(ProbeMonitorsTest, AListenerThatNeverWritesIsNoBanner) {
  // What a SIGSTOPped monitor looks like: the kernel accepts from the backlog,
  // and nobody ever writes.
  Listener silent;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ProbeMonitors({silent.endpoint()}, std::chrono::milliseconds(300)), MonitorReach::kNoBanner);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "the bound was not kept";
}

TEST(ProbeMonitorsTest, ACephBannerIsAnswers) {
  Listener v2;
  v2.ServeOnce("ceph v2\n");
  EXPECT_EQ(ProbeMonitors({v2.endpoint()}, std::chrono::seconds(2)), MonitorReach::kAnswers);
  Listener v1;
  v1.ServeOnce("ceph v027");
  EXPECT_EQ(ProbeMonitors({ClosedEndpoint(), v1.endpoint()}, std::chrono::seconds(2)), MonitorReach::kAnswers);
}

TEST(ProbeMonitorsTest, SomethingElseThanCephIsNoBanner) {
  Listener http;
  http.ServeOnce("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_EQ(ProbeMonitors({http.endpoint()}, std::chrono::seconds(1)), MonitorReach::kNoBanner);
}

TEST(ProbeMonitorsTest, TheBestEndpointWinsInAnyOrder) {
  Listener silent;
  Listener talking;
  talking.ServeOnce("ceph v2\n");
  EXPECT_EQ(ProbeMonitors({ClosedEndpoint(), silent.endpoint(), talking.endpoint()}, std::chrono::seconds(2)),
            MonitorReach::kAnswers);
  EXPECT_EQ(ProbeMonitors({ClosedEndpoint(), silent.endpoint()}, std::chrono::milliseconds(400)),
            MonitorReach::kNoBanner);
}

}  // namespace
}  // namespace rbdnbd
