// The daemon's control server, driven over a socketpair the way a client
// drives it, with a real DeviceManager (no netlink, no cluster: only what
// needs no kernel and no Ceph).
#include "control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>

#include "api/codec.h"
#include "api/socket.h"

namespace rbdnbd {
namespace {

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rbd-nbdd-control-server-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto loops = LoopPool::Create(1, "ctl-test");
    ASSERT_TRUE(loops.has_value()) << loops.error().message;
    loops_ = std::move(loops).value();
    loops_->Start();
    StateStore store(dir_);
    ASSERT_TRUE(store.Init().has_value());
    manager_ = std::make_unique<DeviceManager>(nullptr, *loops_, std::move(store), [] {});
  }
  void TearDown() override {
    manager_.reset();
    if (loops_) loops_->Stop();
    std::filesystem::remove_all(dir_);
  }

  // Sends `request` (a raw line, as any client could) and returns the reply line.
  std::string Call(const std::string& request) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    UniqueFd client(fds[0]);
    std::thread server([fd = fds[1], this] { ServeClient(UniqueFd(fd), *manager_, &calls_); });
    EXPECT_TRUE(api::WriteAll(client.get(), request + "\n").has_value());
    auto reply = api::ReadLine(client.get());
    server.join();
    EXPECT_TRUE(reply.has_value()) << reply.error().message;
    return reply ? *reply : std::string();
  }

  // Expects the reply to `request` to be an error with `code` and `needle`.
  void ExpectRefused(const std::string& request, int code, const std::string& needle) {
    std::string line = Call(request);
    auto r = api::DecodeOkReply(line);
    ASSERT_FALSE(r.has_value()) << request << " -> " << line;
    EXPECT_EQ(r.error().code, code) << request << " -> " << line;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << request << " -> " << r.error().message;
  }

  std::string dir_;
  ControlCalls calls_;
  std::unique_ptr<LoopPool> loops_;
  std::unique_ptr<DeviceManager> manager_;
};

TEST_F(ControlServerTest, StatusAndListReportTheDaemon) {
  for (const api::Request& request : {api::Request(api::StatusRequest{}), api::Request(api::ListRequest{})}) {
    std::string text = std::visit([](const auto& r) { return api::EncodeRequest(r); }, request);
    auto reply = api::DecodeStatusReply(Call(text));
    ASSERT_TRUE(reply.has_value()) << reply.error().message;
    EXPECT_TRUE(reply->devices.empty());
    EXPECT_EQ(reply->pid, ::getpid());
    struct stat st;
    EXPECT_EQ(reply->nbd_driver, std::optional<bool>(::stat("/sys/module/nbd", &st) == 0));
    EXPECT_EQ(reply->netlink, std::optional<bool>(false)) << "this manager has no netlink";
  }
}

TEST_F(ControlServerTest, BadRequestsGetAClearErrorAndChangeNothing) {
  ExpectRefused("hello", EINVAL, "malformed request");
  ExpectRefused(R"({"op":"format"})", EINVAL, "unknown op 'format'");
  ExpectRefused(R"({"op":"map","spec":"rbd/a","connections":99,"key":"AQBk=="})", EINVAL, "'connections' must be 1..16");
  ExpectRefused(R"({"op":"map","spec":"rbd/a","read_only":"no"})", EINVAL, "'read_only' must be true or false");
  ExpectRefused(R"({"op":"unmap","force":true})", EINVAL, "unmap: 'target' is required");
  ExpectRefused(R"({"op":"attach","spec":"rbd/a","device":0})", EINVAL, "attach: 'cookie' is required");
  auto status = api::DecodeStatusReply(Call(api::EncodeRequest(api::StatusRequest{})));
  ASSERT_TRUE(status.has_value()) << status.error().message;
  EXPECT_TRUE(status->devices.empty());
}

TEST_F(ControlServerTest, ValidRequestsReachTheDeviceManager) {
  // Each of these passes the codec; the answer is the manager's own.
  ExpectRefused(api::EncodeRequest(api::UnmapRequest{"/dev/nbd5", false}), ENOENT, "/dev/nbd5 is not mapped by this daemon");
  ExpectRefused(api::EncodeRequest(api::DetachRequest{"rbd/a"}), ENOENT, "rbd/a is not mapped by this daemon");
  api::MapRequest map;
  map.spec = "no-pool";
  ExpectRefused(api::EncodeRequest(map), EINVAL, "no-pool");
  api::AttachRequest attach;
  attach.map.spec = "rbd/a";
  attach.map.device = 2;
  attach.map.cookie = "rbd-nbdd-x";
  attach.map.keyring = "/etc/ceph/keyring";
  ExpectRefused(api::EncodeRequest(attach), ENOTSUP, "needs the nbd netlink interface");
}

TEST_F(ControlServerTest, ARefusedCallIsLoggedWithItsReasonButNeverItsKey) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::info);
  ExpectRefused(R"({"op":"map","spec":"rbd/a","connections":99,"key":"AQBkSecretKeyValue=="})", EINVAL,
                "'connections' must be 1..16");
  ExpectRefused(api::EncodeRequest(api::UnmapRequest{"/dev/nbd5", false}), ENOENT, "not mapped");
  Call(api::EncodeRequest(api::StatusRequest{}));
  spdlog::set_default_logger(previous);
  const std::string log = out.str();
  EXPECT_NE(log.find("control: bad request refused"), std::string::npos) << log;
  EXPECT_NE(log.find("'connections' must be 1..16, not 99 (EINVAL)"), std::string::npos) << log;
  EXPECT_NE(log.find("control: unmap refused"), std::string::npos) << log;
  EXPECT_NE(log.find("/dev/nbd5 is not mapped by this daemon (ENOENT)"), std::string::npos) << log;
  EXPECT_EQ(log.find("status"), std::string::npos) << "an answered call is logged at debug only: " << log;
  EXPECT_EQ(log.find("AQBkSecretKeyValue"), std::string::npos) << log;
}

TEST_F(ControlServerTest, EveryAnsweredCallIsCountedByOpAndResult) {
  Call(api::EncodeRequest(api::StatusRequest{}));
  Call(api::EncodeRequest(api::ListRequest{}));
  Call(api::EncodeRequest(api::ListRequest{}));
  Call(api::EncodeRequest(api::UnmapRequest{"/dev/nbd5", false}));
  Call("hello");
  auto calls = calls_.Snapshot();
  EXPECT_EQ((calls[{"status", "ok"}]), 1u);
  EXPECT_EQ((calls[{"list", "ok"}]), 2u);
  EXPECT_EQ((calls[{"unmap", "ENOENT"}]), 1u);
  EXPECT_EQ((calls[{"invalid", "EINVAL"}]), 1u);
  EXPECT_EQ(calls.size(), 4u);
}

TEST_F(ControlServerTest, AManagerWithoutDevicesReportsNoneInItsMetrics) {
  ManagerMetrics m = manager_->Metrics();
  EXPECT_TRUE(m.devices.empty());
  EXPECT_EQ(m.devices_by_state[0] + m.devices_by_state[1] + m.devices_by_state[2], 0u);
  EXPECT_EQ(m.clusters_connected, 0u);
  EXPECT_EQ(m.clusters_idle, 0u);
}

TEST_F(ControlServerTest, ALineOverTheLimitIsRefused) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd client(fds[0]);
  std::thread server([fd = fds[1], this] { ServeClient(UniqueFd(fd), *manager_); });
  std::thread writer([fd = client.get()] { (void)api::WriteAll(fd, std::string(api::kMaxMessageBytes + 1, ' ')); });
  auto reply = api::ReadLine(client.get());
  server.join();
  ::shutdown(client.get(), SHUT_RDWR);  // the server is gone: unblock the writer
  writer.join();
  ASSERT_TRUE(reply.has_value()) << reply.error().message;
  auto r = api::DecodeOkReply(*reply);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EMSGSIZE);
}

TEST_F(ControlServerTest, AClientThatLeavesGetsNoReplyAndTheServerReturns) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ::close(fds[0]);
  auto start = std::chrono::steady_clock::now();
  ServeClient(UniqueFd(fds[1]), *manager_);
  // At once, not after ReadLine's 120 s: the hang-up is seen, not waited out.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace rbdnbd
