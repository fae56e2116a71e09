#include "control/control_protocol.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace rbdnbd {
namespace {

using nlohmann::json;

TEST(ControlProtocolTest, MapRequestRoundTrip) {
  MapRequest r;
  r.spec = "rbd/img";
  r.device.index = 5;
  r.device.connections = 4;
  r.device.io_timeout_s = 30;
  r.device.reattach_timeout_s = 60;
  r.image.read_only = true;
  r.image.encryption = EncryptionFormat::kLuks2;
  r.passphrase_file = "/p";
  ASSERT_TRUE(SetClientId(&r.cluster, "kube").has_value());
  r.cluster.mon_host = "127.0.0.1:14200";
  r.cluster.key = Secret(std::string("AQBsecret=="));
  json j = MapRequestToJson(r);
  EXPECT_EQ(j["key"], "AQBsecret==");
  auto back = MapRequestFromJson(j);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->spec, "rbd/img");
  EXPECT_EQ(*back->device.index, 5u);
  EXPECT_EQ(back->device.connections, 4u);
  EXPECT_TRUE(back->image.read_only);
  EXPECT_EQ(back->image.encryption, EncryptionFormat::kLuks2);
  EXPECT_EQ(back->cluster.client_name, "client.kube");
  EXPECT_EQ(back->cluster.mon_host, "127.0.0.1:14200");
  EXPECT_EQ(back->cluster.key.reveal(), "AQBsecret==");
  EXPECT_FALSE(back->cluster.read_ceph_args) << "the daemon must not apply its own CEPH_ARGS to a client's map";
}

TEST(ControlProtocolTest, InMemoryPassphraseRoundTrip) {
  MapRequest r;
  r.spec = "rbd/img";
  r.image.encryption = EncryptionFormat::kLuks1;
  r.image.passphrase = Secret(std::string("correct horse"));
  json j = MapRequestToJson(r);
  EXPECT_EQ(j["passphrase"], "correct horse");
  EXPECT_EQ(j["passphrase_file"], "");
  auto back = MapRequestFromJson(j);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->image.encryption, EncryptionFormat::kLuks1);
  EXPECT_EQ(back->image.passphrase.reveal(), "correct horse");
  EXPECT_TRUE(back->passphrase_file.empty());
  // A passphrase in memory is for map only: attach records come from the state file.
  j["device"] = 3;
  j["cookie"] = "c";
  auto rec = RecordFromJson(j);
  ASSERT_FALSE(rec.has_value());
  EXPECT_NE(rec.error().message.find("passphrase"), std::string::npos) << rec.error().message;
}

TEST(ControlProtocolTest, BadRequestsNameTheField) {
  struct Case { const char* text; const char* needle; } cases[] = {
      {R"({"op":"map"})", "spec"},
      {R"({"op":"map","spec":"rbd/a","connections":0})", "connections"},
      {R"({"op":"map","spec":"rbd/a","connections":"x"})", "connections"},
      {R"({"op":"map","spec":"rbd/a","read_only":1})", "read_only"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks9"})", "encryption"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks2"})", "passphrase_file"},
      {R"({"op":"map","spec":"rbd/a","client_name":"nodot"})", "client name"},
      {R"({"op":"map","spec":"rbd/a","connect_timeout":0})", "connect_timeout"},
      {R"({"op":"map","spec":"rbd/a","device":-1})", "device"},
      {R"({"op":"map","spec":"rbd/a","device":4294967296})", "device"},
      {R"({"op":"map","spec":"rbd/a","passphrase":"p"})", "encryption"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks1","passphrase":"p","passphrase_file":"/f"})", "not both"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks1","passphrase":7})", "passphrase"},
  };
  for (const auto& c : cases) {
    auto r = MapRequestFromJson(json::parse(c.text));
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_TRUE(r.error().code == EINVAL || r.error().code == ERANGE) << c.text;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << c.text << " -> " << r.error().message;
  }
}

TEST(ControlProtocolTest, AttachNeedsDeviceAndCookieAndNoInMemoryKey) {
  EXPECT_FALSE(RecordFromJson(json::parse(R"({"spec":"rbd/a","cookie":"c"})")).has_value());
  EXPECT_FALSE(RecordFromJson(json::parse(R"({"spec":"rbd/a","device":1})")).has_value());
  EXPECT_FALSE(RecordFromJson(json::parse(R"({"spec":"rbd/a","device":1,"cookie":"c","key":"k"})")).has_value());
  auto r = RecordFromJson(json::parse(R"({"spec":"rbd/a@s","device":1,"cookie":"c","keyring":"/k"})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->read_only) << "a snapshot is always read-only";
  EXPECT_EQ(r->keyring_path, "/k");
}

TEST(ControlProtocolTest, ErrorReplyCarriesErrnoAndMessage) {
  json j = ErrorReply(Error{ENOENT, "image 'rbd/x' does not exist"});
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["errno"], ENOENT);
  EXPECT_EQ(j["error"], "image 'rbd/x' does not exist");
}

TEST(ControlProtocolTest, CallDaemonWithoutDaemonIsAClearError) {
  auto r = CallDaemon("/nonexistent/rbd-nbdd.sock", json{{"op", "list"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("is `rbd-nbdd daemon` running?"), std::string::npos);
}

}  // namespace
}  // namespace rbdnbd
