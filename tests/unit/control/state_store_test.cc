#include "control/state_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rbdnbd-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/state";
  }
  void TearDown() override { std::system(("rm -rf " + dir_.substr(0, dir_.rfind('/'))).c_str()); }
  std::string dir_;
};

TEST_F(StateStoreTest, EmptyWhenNoFile) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  auto d = s.Load();
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->empty());
}

TEST_F(StateStoreTest, RoundTripAndPermissions) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  DeviceRecord r;
  r.index = 3;
  r.spec = "kube/ns/img@snap";
  r.cookie = "rbd-nbdd-abc";
  r.connections = 4;
  r.io_timeout_s = 30;
  r.reattach_timeout_s = 60;
  r.read_only = true;
  r.encryption = "luks2";
  r.passphrase_file = "/etc/pass";
  r.client_name = "client.kube";
  r.keyring_path = "/etc/ceph/kube.keyring";
  r.key_in_memory = true;
  r.passphrase_in_memory = true;
  r.client_addr = "127.0.0.1:0/123";
  ASSERT_TRUE(s.Save({r}).has_value());
  auto d = s.Load();
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->size(), 1u);
  const DeviceRecord& g = d->front();
  EXPECT_EQ(g.index, 3u);
  EXPECT_EQ(g.spec, r.spec);
  EXPECT_EQ(g.cookie, r.cookie);
  EXPECT_EQ(g.connections, 4u);
  EXPECT_EQ(g.io_timeout_s, 30u);
  EXPECT_EQ(g.reattach_timeout_s, 60u);
  EXPECT_TRUE(g.read_only);
  EXPECT_EQ(g.encryption, "luks2");
  EXPECT_EQ(g.passphrase_file, "/etc/pass");
  EXPECT_EQ(g.client_name, "client.kube");
  EXPECT_EQ(g.keyring_path, r.keyring_path);
  EXPECT_TRUE(g.key_in_memory);
  EXPECT_TRUE(g.passphrase_in_memory);
  EXPECT_EQ(g.client_addr, r.client_addr);
  struct stat st;
  ASSERT_EQ(stat(s.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_NE(access((s.path() + ".tmp").c_str(), F_OK), 0) << "the temporary file must be renamed away";
}

TEST_F(StateStoreTest, CorruptFileIsAnErrorNotACrash) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  std::ofstream(s.path()) << "{not json";
  auto d = s.Load();
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, EINVAL);
}

TEST_F(StateStoreTest, RecordsWithoutSpecOrCookieAreSkipped) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  std::ofstream(s.path()) << R"({"version":1,"devices":[{"index":1},{"index":2,"spec":"rbd/a","cookie":"c"},7]})";
  auto d = s.Load();
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ(d->front().index, 2u);
}

TEST_F(StateStoreTest, OneFileHoldsBothKindsAndOlderRecordsAreNbd) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  DeviceRecord nbd;
  nbd.index = 0;
  nbd.spec = "rbd/a";
  nbd.cookie = "c0";
  DeviceRecord ublk = nbd;
  ublk.type = DeviceType::kUblk;
  ublk.spec = "rbd/b";
  ublk.cookie = "c1";
  ASSERT_TRUE(s.Save({nbd, ublk}).has_value());
  std::stringstream text;
  text << std::ifstream(s.path()).rdbuf();
  EXPECT_NE(text.str().find(R"("type": "ublk")"), std::string::npos) << text.str();
  auto d = s.Load();
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].type, DeviceType::kNbd);
  EXPECT_EQ((*d)[1].type, DeviceType::kUblk);
  EXPECT_EQ((*d)[1].index, 0u);  // ublk ids and nbd indexes are separate spaces
  EXPECT_EQ(DevicePath((*d)[1].type, (*d)[1].index), "/dev/ublkb0");
  EXPECT_EQ(DevicePath((*d)[0].type, (*d)[0].index), "/dev/nbd0");

  // A file from before ublk: no "type" at all.
  std::ofstream(s.path()) << R"({"version":1,"devices":[{"index":5,"spec":"rbd/a","cookie":"c"}]})";
  d = s.Load();
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ(d->front().type, DeviceType::kNbd);
}

TEST_F(StateStoreTest, AUblkRecordKeepsItsQueueShapeAndAnOlderOneLoadsTheDefaults) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  DeviceRecord ublk;
  ublk.type = DeviceType::kUblk;
  ublk.index = 3;
  ublk.spec = "rbd/u";
  ublk.cookie = "cu";
  ublk.queue_depth = 64;
  ublk.max_io_bytes = 256u << 10;
  DeviceRecord nbd;
  nbd.spec = "rbd/n";
  nbd.cookie = "cn";
  ASSERT_TRUE(s.Save({ublk, nbd}).has_value());
  std::stringstream text;
  text << std::ifstream(s.path()).rdbuf();
  EXPECT_NE(text.str().find(R"("queue_depth": 64)"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find(R"("max_io_bytes": 262144)"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("queue_depth"), text.str().rfind("queue_depth")) << "only the ublk record has one";
  auto d = s.Load();
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].queue_depth, 64u);
  EXPECT_EQ((*d)[0].max_io_bytes, 256u << 10);
  EXPECT_EQ((*d)[1].queue_depth, 0u);
  EXPECT_EQ((*d)[1].max_io_bytes, 0u);

  // A ublk record of a daemon from before the options: the shape it was added with.
  std::ofstream(s.path()) << R"({"version":1,"devices":[{"type":"ublk","index":1,"spec":"rbd/a","cookie":"c"}]})";
  d = s.Load();
  ASSERT_TRUE(d.has_value()) << d.error().message;
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ(d->front().queue_depth, 128u);
  EXPECT_EQ(d->front().max_io_bytes, 512u << 10);
}

TEST_F(StateStoreTest, AnUnknownDeviceTypeIsAnErrorNamingIt) {
  StateStore s(dir_);
  ASSERT_TRUE(s.Init().has_value());
  std::ofstream(s.path()) << R"({"version":1,"devices":[{"type":"ubbd","index":1,"spec":"rbd/a","cookie":"c"}]})";
  auto d = s.Load();
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, EINVAL);
  EXPECT_NE(d.error().message.find("'ubbd'"), std::string::npos) << d.error().message;
}

TEST(DeviceTypeTest, NamesParseBack) {
  for (DeviceType t : {DeviceType::kNbd, DeviceType::kUblk}) {
    auto back = ParseDeviceType(DeviceTypeName(t));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(ParseDeviceType("").value(), DeviceType::kNbd);
  EXPECT_FALSE(ParseDeviceType("krbd").has_value());
}

}  // namespace
}  // namespace rbdnbd
