#include "rbd/mon_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
  EXPECT_FALSE(AnyEndpointAcceptsTcp(MonitorEndpoints("[v2:"), std::chrono::milliseconds(200)));
}

TEST(AnyEndpointAcceptsTcpTest, TellsAListeningPortFromAClosedOne) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string open = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));

  // A port that was free a moment ago: bound and closed again.
  int c = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in b{};
  b.sin_family = AF_INET;
  b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(c, reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  len = sizeof(b);
  ASSERT_EQ(getsockname(c, reinterpret_cast<sockaddr*>(&b), &len), 0);
  std::string closed = "127.0.0.1:" + std::to_string(ntohs(b.sin_port));
  close(c);

  auto t = std::chrono::milliseconds(500);
  EXPECT_TRUE(AnyEndpointAcceptsTcp({open}, t));
  EXPECT_TRUE(AnyEndpointAcceptsTcp({closed, open}, t));
  EXPECT_FALSE(AnyEndpointAcceptsTcp({closed}, t));
  EXPECT_FALSE(AnyEndpointAcceptsTcp({}, t));
  close(s);
}

}  // namespace
}  // namespace rbdnbd
