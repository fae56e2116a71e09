// The control API's socket helpers over socketpairs and a real Unix listener.
#include "api/socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace rbdnbd::api {
namespace {

struct Pair {
  UniqueFd a, b;
};

Pair SocketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(ApiSocketTest, ReadLineStopsAtTheNewlineAndLeavesTheRest) {
  Pair p = SocketPair();
  ASSERT_TRUE(WriteAll(p.a.get(), "{\"op\":\"list\"}\nsecond").has_value());
  auto line = ReadLine(p.b.get());
  ASSERT_TRUE(line.has_value()) << line.error().message;
  EXPECT_EQ(*line, R"({"op":"list"})");
  p.a.Reset();
  auto rest = ReadLine(p.b.get());
  ASSERT_TRUE(rest.has_value()) << rest.error().message;
  EXPECT_EQ(*rest, "second") << "a last line without a newline still counts";
  auto none = ReadLine(p.b.get());
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ECONNRESET);
}

TEST(ApiSocketTest, ReadLineRefusesALineOverTheLimit) {
  Pair p = SocketPair();
  std::thread writer([fd = p.a.get()] { (void)WriteAll(fd, std::string(kMaxMessageBytes + 2, 'x')); });
  auto line = ReadLine(p.b.get());
  p.b.Reset();  // unblocks the writer
  writer.join();
  ASSERT_FALSE(line.has_value());
  EXPECT_EQ(line.error().code, EMSGSIZE);
}

TEST(ApiSocketTest, CallDaemonWithoutDaemonIsAClearError) {
  auto r = CallDaemon("/nonexistent/rbd-nbdd.sock", R"({"op":"list"})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find("/nonexistent/rbd-nbdd.sock"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("is `rbd-nbdd daemon` running?"), std::string::npos) << r.error().message;
}

TEST(ApiSocketTest, CallDaemonRefusesAPathTooLongForAUnixSocket) {
  auto r = CallDaemon("/tmp/" + std::string(200, 'a'), R"({"op":"list"})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ENAMETOOLONG);
}

TEST(ApiSocketTest, CallDaemonSendsOneLineAndReturnsTheReplyLine) {
  std::string path = ::testing::TempDir() + "/api-socket-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  std::string received;
  std::thread server([&] {
    UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto line = ReadLine(c.get());
    if (line) received = *line;
    (void)WriteAll(c.get(), "{\"ok\":true}\n");
  });
  auto reply = CallDaemon(path, R"({"op":"status"})");
  server.join();
  ::unlink(path.c_str());
  ASSERT_TRUE(reply.has_value()) << reply.error().message;
  EXPECT_EQ(*reply, R"({"ok":true})");
  EXPECT_EQ(received, R"({"op":"status"})");
}

}  // namespace
}  // namespace rbdnbd::api
