// The control API's codec on its own: every message round-trips, and bad
// input (a missing field, a wrong type, a negative number, an unknown op) is
// refused with the field named and the right errno.
#include "api/codec.h"

#include <cerrno>
#include <string>

#include <gtest/gtest.h>

namespace rbdnbd::api {
namespace {

// Expects `r` to fail with `code` and a message that contains `needle`.
template <typename T>
void ExpectError(const Result<T>& r, int code, const std::string& needle, const std::string& input) {
  ASSERT_FALSE(r.has_value()) << input;
  EXPECT_EQ(r.error().code, code) << input << " -> " << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << input << " -> " << r.error().message;
}

MapRequest FullMap() {
  MapRequest m;
  m.spec = "kube/tenant-a/pvc-1";
  m.device_type = "ublk";
  m.device = 7;
  m.queue_depth = 64;
  m.max_io_bytes = 256u << 10;
  m.connections = 4;
  m.io_timeout_s = 31;
  m.reattach_timeout_s = 61;
  m.cookie = "rbd-nbdd-c0ffee";
  m.read_only = true;
  m.exclusive = true;
  m.notrim = true;
  m.encryption = "luks2";
  m.passphrase = Secret(std::string("correct horse battery staple"));
  m.client_name = "client.kube";
  m.conf = "/etc/ceph/ceph.conf";
  m.mon_host = "v2:127.0.0.1:3300";
  m.keyring = "/etc/ceph/kube.keyring";
  m.keyfile = "";
  m.connect_timeout_s = 12;
  m.key = Secret(std::string("AQBsecretkeysecretkeysecretkeysecret12=="));
  return m;
}

void ExpectSameMap(const MapRequest& a, const MapRequest& b) {
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.device_type, b.device_type);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.queue_depth, b.queue_depth);
  EXPECT_EQ(a.max_io_bytes, b.max_io_bytes);
  EXPECT_EQ(a.connections, b.connections);
  EXPECT_EQ(a.io_timeout_s, b.io_timeout_s);
  EXPECT_EQ(a.reattach_timeout_s, b.reattach_timeout_s);
  EXPECT_EQ(a.cookie, b.cookie);
  EXPECT_EQ(a.read_only, b.read_only);
  EXPECT_EQ(a.exclusive, b.exclusive);
  EXPECT_EQ(a.notrim, b.notrim);
  EXPECT_EQ(a.encryption, b.encryption);
  EXPECT_EQ(a.passphrase_file, b.passphrase_file);
  EXPECT_EQ(a.passphrase.reveal(), b.passphrase.reveal());
  EXPECT_EQ(a.client_name, b.client_name);
  EXPECT_EQ(a.conf, b.conf);
  EXPECT_EQ(a.mon_host, b.mon_host);
  EXPECT_EQ(a.keyring, b.keyring);
  EXPECT_EQ(a.keyfile, b.keyfile);
  EXPECT_EQ(a.connect_timeout_s, b.connect_timeout_s);
  EXPECT_EQ(a.key.reveal(), b.key.reveal());
}

TEST(ApiCodecTest, MapRequestRoundTripsWithItsSecrets) {
  MapRequest m = FullMap();
  std::string line = EncodeRequest(m);
  EXPECT_NE(line.find("\"key\":\"AQBsecret"), std::string::npos) << "the key travels in the map request";
  auto back = DecodeRequest(line);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_TRUE(std::holds_alternative<MapRequest>(*back));
  ExpectSameMap(std::get<MapRequest>(*back), m);
}

TEST(ApiCodecTest, AbsentFieldsDecodeToTheDaemonsDefaults) {
  auto back = DecodeRequest(R"({"op":"map","spec":"rbd/a","client_name":null})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  MapRequest defaults;
  defaults.spec = "rbd/a";
  ExpectSameMap(std::get<MapRequest>(*back), defaults);
  EXPECT_FALSE(std::get<MapRequest>(*back).device.has_value());
  EXPECT_EQ(std::get<MapRequest>(*back).client_name, "client.admin");
  EXPECT_EQ(std::get<MapRequest>(*back).connect_timeout_s, 30u);
  EXPECT_EQ(std::get<MapRequest>(*back).device_type, "nbd") << "an older client's map is an nbd map";
}

TEST(ApiCodecTest, UnknownFieldsAreIgnoredAndNoneIsNoEncryption) {
  auto back = DecodeRequest(R"({"op":"map","spec":"rbd/a","future_field":[1,2],"encryption":"none"})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(std::get<MapRequest>(*back).encryption, "");
}

TEST(ApiCodecTest, AttachRoundTripsWithoutSecrets) {
  AttachRequest a{FullMap()};
  a.map.passphrase_file = "/etc/rbd-nbdd/luks";
  std::string line = EncodeRequest(a);
  EXPECT_EQ(line.find("AQBsecret"), std::string::npos) << "an attach never carries the key: " << line;
  EXPECT_EQ(line.find("horse"), std::string::npos) << "nor the passphrase: " << line;
  auto back = DecodeRequest(line);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_TRUE(std::holds_alternative<AttachRequest>(*back));
  MapRequest want = a.map;
  want.key = Secret();
  want.passphrase = Secret();
  ExpectSameMap(std::get<AttachRequest>(*back).map, want);
}

TEST(ApiCodecTest, UnmapDetachListStatusRoundTrip) {
  auto unmap = DecodeRequest(EncodeRequest(UnmapRequest{"/dev/nbd3", true}));
  ASSERT_TRUE(unmap.has_value()) << unmap.error().message;
  ASSERT_TRUE(std::holds_alternative<UnmapRequest>(*unmap));
  EXPECT_EQ(std::get<UnmapRequest>(*unmap).target, "/dev/nbd3");
  EXPECT_TRUE(std::get<UnmapRequest>(*unmap).force);
  auto unforced = DecodeRequest(R"({"op":"unmap","target":"rbd/a"})");
  ASSERT_TRUE(unforced.has_value()) << unforced.error().message;
  EXPECT_FALSE(std::get<UnmapRequest>(*unforced).force);

  auto detach = DecodeRequest(EncodeRequest(DetachRequest{"kube/pvc-1"}));
  ASSERT_TRUE(detach.has_value()) << detach.error().message;
  ASSERT_TRUE(std::holds_alternative<DetachRequest>(*detach));
  EXPECT_EQ(std::get<DetachRequest>(*detach).target, "kube/pvc-1");

  auto list = DecodeRequest(EncodeRequest(ListRequest{}));
  ASSERT_TRUE(list.has_value()) << list.error().message;
  EXPECT_TRUE(std::holds_alternative<ListRequest>(*list));
  auto status = DecodeRequest(EncodeRequest(StatusRequest{}));
  ASSERT_TRUE(status.has_value()) << status.error().message;
  EXPECT_TRUE(std::holds_alternative<StatusRequest>(*status));
}

TEST(ApiCodecTest, BadRequestsAreEinvalAndNameTheField) {
  struct Case { const char* text; const char* needle; } cases[] = {
      // Not a request at all.
      {"", "malformed request"},
      {"not json", "malformed request"},
      {"[1,2]", "malformed request"},
      {R"({"spec":"rbd/a"})", "malformed request"},
      {R"({"op":7})", "malformed request"},
      {R"({"op":"mount"})", "unknown op 'mount'"},
      // map: missing, wrong types, negative and out-of-range numbers.
      {R"({"op":"map"})", "'spec' is required"},
      {R"({"op":"map","spec":""})", "'spec' is required"},
      {R"({"op":"map","spec":5})", "'spec' must be a string"},
      {R"({"op":"map","spec":"rbd/a","connections":0})", "'connections' must be 1..16, not 0"},
      {R"({"op":"map","spec":"rbd/a","connections":17})", "'connections' must be 1..16"},
      {R"({"op":"map","spec":"rbd/a","connections":"4"})", "'connections' must be a non-negative whole number"},
      {R"({"op":"map","spec":"rbd/a","connections":2.5})", "'connections' must be a non-negative whole number"},
      {R"({"op":"map","spec":"rbd/a","io_timeout":-1})", "'io_timeout' must be a non-negative whole number"},
      {R"({"op":"map","spec":"rbd/a","reattach_timeout":-60})", "'reattach_timeout' must be a non-negative"},
      {R"({"op":"map","spec":"rbd/a","read_only":1})", "'read_only' must be true or false"},
      {R"({"op":"map","spec":"rbd/a","exclusive":"yes"})", "'exclusive' must be true or false"},
      {R"({"op":"map","spec":"rbd/a","notrim":[]})", "'notrim' must be true or false"},
      {R"({"op":"map","spec":"rbd/a","device_type":"krbd"})", "'device_type' must be nbd or ublk, not 'krbd'"},
      {R"({"op":"map","spec":"rbd/a","device_type":1})", "'device_type' must be a string"},
      {R"({"op":"map","spec":"rbd/a","cookie":{}})", "'cookie' must be a string"},
      {R"({"op":"map","spec":"rbd/a","device":-1})", "'device' must be a non-negative"},
      {R"({"op":"map","spec":"rbd/a","device":4294967296})", "'device' must be 0..4294967295"},
      {R"({"op":"map","spec":"rbd/a","connect_timeout":0})", "'connect_timeout' must be 1..3600"},
      {R"({"op":"map","spec":"rbd/a","connect_timeout":3601})", "'connect_timeout' must be 1..3600"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks9","passphrase_file":"/f"})", "'encryption' must be luks1 or luks2"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks2"})", "needs 'passphrase_file' or 'passphrase'"},
      {R"({"op":"map","spec":"rbd/a","passphrase":"p"})", "'passphrase' needs 'encryption'"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks1","passphrase":"p","passphrase_file":"/f"})", "not both"},
      {R"({"op":"map","spec":"rbd/a","encryption":"luks1","passphrase":7})", "'passphrase' must be a string"},
      {R"({"op":"map","spec":"rbd/a","key":false})", "'key' must be a string"},
      {R"({"op":"map","spec":"rbd/a","client_name":"nodot"})", "bad client name 'nodot'"},
      {R"({"op":"map","spec":"rbd/a","client_name":".kube"})", "'client_name'"},
      {R"({"op":"map","spec":"rbd/a","client_name":"client."})", "'client_name'"},
      {R"({"op":"map","spec":"rbd/a","client_name":"client.a b"})", "'client_name'"},
      {R"({"op":"map","spec":"rbd/a","client_name":"client.a/b"})", "'client_name'"},
      {R"({"op":"map","spec":"rbd/a","mon_host":1})", "'mon_host' must be a string"},
      // ublk's queue shape: the driver's limits, and ublk only.
      {R"({"op":"map","spec":"rbd/a","device_type":"ublk","queue_depth":4097})", "'queue_depth' must be 0..4096"},
      {R"({"op":"map","spec":"rbd/a","device_type":"ublk","queue_depth":-1})", "'queue_depth' must be a non-neg"},
      {R"({"op":"map","spec":"rbd/a","device_type":"ublk","max_io_bytes":33554433})",
       "'max_io_bytes' must be 0..33554432"},
      {R"({"op":"map","spec":"rbd/a","device_type":"ublk","max_io_bytes":6144})",
       "'max_io_bytes' must be a multiple of 4096 from 4096 to 33554432, not 6144"},
      {R"({"op":"map","spec":"rbd/a","device_type":"ublk","max_io_bytes":2048})", "'max_io_bytes' must be a multiple"},
      {R"({"op":"map","spec":"rbd/a","queue_depth":64})", "'queue_depth' applies to device_type ublk only"},
      {R"({"op":"map","spec":"rbd/a","device_type":"nbd","max_io_bytes":262144})",
       "'max_io_bytes' applies to device_type ublk only"},
      // attach: map's rules plus device, cookie and no secret in memory.
      {R"({"op":"attach","spec":"rbd/a","cookie":"c"})", "attach: 'device' is required"},
      {R"({"op":"attach","spec":"rbd/a","device":1})", "attach: 'cookie' is required"},
      {R"({"op":"attach","spec":"rbd/a","device":1,"cookie":"c","key":"k"})", "'key' is refused"},
      {R"({"op":"attach","spec":"rbd/a","device":1,"cookie":"c","encryption":"luks1","passphrase":"p"})",
       "'passphrase' is refused"},
      {R"({"op":"attach","device":1,"cookie":"c"})", "attach: 'spec' is required"},
      {R"({"op":"attach","spec":"rbd/a","device":"1","cookie":"c"})", "'device' must be a non-negative"},
      // unmap and detach.
      {R"({"op":"unmap"})", "unmap: 'target' is required"},
      {R"({"op":"unmap","target":3})", "'target' must be a string"},
      {R"({"op":"unmap","target":"/dev/nbd0","force":"yes"})", "'force' must be true or false"},
      {R"({"op":"detach"})", "detach: 'target' is required"},
      {R"({"op":"detach","target":""})", "detach: 'target' is required"},
  };
  for (const auto& c : cases) ExpectError(DecodeRequest(c.text), EINVAL, c.needle, c.text);
}

TEST(ApiCodecTest, UblkQueueShapeTravelsOnlyWhenSetAndAbsentIsTheDefault) {
  MapRequest m;
  m.spec = "rbd/a";
  m.device_type = "ublk";
  std::string line = EncodeRequest(m);
  EXPECT_EQ(line.find("queue_depth"), std::string::npos) << line;  // an older daemon sees the request it knew
  EXPECT_EQ(line.find("max_io_bytes"), std::string::npos) << line;
  auto back = DecodeRequest(line);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(std::get<MapRequest>(*back).queue_depth, 0u);
  EXPECT_EQ(std::get<MapRequest>(*back).max_io_bytes, 0u);

  back = DecodeRequest(
      R"({"op":"map","spec":"rbd/a","device_type":"ublk","queue_depth":4096,"max_io_bytes":33554432})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(std::get<MapRequest>(*back).queue_depth, 4096u);
  EXPECT_EQ(std::get<MapRequest>(*back).max_io_bytes, 32u << 20);
  // 0 and null are the defaults, whatever the type.
  back = DecodeRequest(R"({"op":"map","spec":"rbd/a","queue_depth":0,"max_io_bytes":null})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(std::get<MapRequest>(*back).device_type, "nbd");

  // The list entry: only a ublk device carries them.
  StatusReply s;
  s.devices.resize(2);
  s.devices[0].device = "/dev/nbd0";
  s.devices[0].spec = "rbd/n";
  s.devices[1].device = "/dev/ublkb0";
  s.devices[1].type = "ublk";
  s.devices[1].spec = "rbd/u";
  s.devices[1].queue_depth = 64;
  s.devices[1].max_io_bytes = 256u << 10;
  line = FormatDevices(s.devices, -1);
  EXPECT_NE(line.find(R"("queue_depth":64)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("max_io_bytes":262144)"), std::string::npos) << line;
  EXPECT_EQ(line.find("queue_depth"), line.rfind("queue_depth")) << "the nbd entry has none: " << line;
}

TEST(ApiCodecTest, ErrorsNameASecretFieldButNeverItsValue) {
  auto r = DecodeRequest(R"({"op":"attach","spec":"rbd/a","device":1,"cookie":"c","key":"AQBtopsecret=="})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.find("AQBtopsecret"), std::string::npos) << r.error().message;
}

TEST(ApiCodecTest, OpNamesAreTheWireNames) {
  for (const char* op : {"map", "unmap", "attach", "detach", "list", "status"}) {
    std::string line = std::string(R"({"op":")") + op + R"(","spec":"rbd/a","target":"rbd/a","device":1,"cookie":"c"})";
    auto r = DecodeRequest(line);
    ASSERT_TRUE(r.has_value()) << line << ": " << r.error().message;
    EXPECT_STREQ(OpName(*r), op);
  }
}

TEST(ApiCodecTest, MappedAndOkRepliesRoundTrip) {
  auto mapped = DecodeMappedReply(EncodeReply(MappedReply{"/dev/nbd4", "rbd-nbdd-42"}));
  ASSERT_TRUE(mapped.has_value()) << mapped.error().message;
  EXPECT_EQ(mapped->device, "/dev/nbd4");
  EXPECT_EQ(mapped->cookie, "rbd-nbdd-42");
  EXPECT_FALSE(mapped->already_mapped);
  auto again = DecodeMappedReply(EncodeReply(MappedReply{"/dev/nbd4", "rbd-nbdd-42", true}));
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->already_mapped);
  // A daemon that predates the field: a fresh mapping.
  auto old = DecodeMappedReply(R"({"ok":true,"device":"/dev/nbd1","cookie":"c"})");
  ASSERT_TRUE(old.has_value()) << old.error().message;
  EXPECT_FALSE(old->already_mapped);
  EXPECT_EQ(EncodeReply(OkReply{}), R"({"ok":true})");
  EXPECT_TRUE(DecodeOkReply(EncodeReply(OkReply{})).has_value());
}

TEST(ApiCodecTest, ErrorReplyDecodesToTheDaemonsErrorFromEveryReplyDecoder) {
  std::string line = EncodeReply(Error{ENOENT, "image 'rbd/x' does not exist"});
  EXPECT_EQ(line, R"({"errno":2,"error":"image 'rbd/x' does not exist","ok":false})");
  ExpectError(DecodeMappedReply(line), ENOENT, "image 'rbd/x' does not exist", line);
  ExpectError(DecodeOkReply(line), ENOENT, "image 'rbd/x' does not exist", line);
  ExpectError(DecodeStatusReply(line), ENOENT, "image 'rbd/x' does not exist", line);
}

TEST(ApiCodecTest, ErrorReplyKeepsBytesThatAreNotUtf8Readable) {
  std::string line = EncodeReply(Error{EINVAL, "bad spec 'rbd/\xff'"});
  ExpectError(DecodeOkReply(line), EINVAL, "bad spec 'rbd/", line);
}

StatusReply FullStatus() {
  StatusReply s;
  DeviceEntry a;
  a.device = "/dev/nbd0";
  a.index = 0;
  a.spec = "kube/pvc-1";
  a.cookie = "rbd-nbdd-a";
  a.connections = 4;
  a.live_connections = 3;
  a.size = 1ull << 40;
  a.read_only = true;
  a.exclusive = true;
  a.encryption = "luks1";
  a.io_timeout_s = 30;
  a.reattach_timeout_s = 60;
  a.client_name = "client.kube";
  a.kernel_connected = false;
  a.state = DeviceState::kReattaching;
  a.last_error = "cannot connect to the cluster as client.kube: timed out";
  a.last_error_unix = 1764690000;
  a.reattach_attempts = 5;
  a.health = DeviceHealth{DeviceState::kReattaching, "cannot connect to the cluster as client.kube: timed out",
                          1764690000, 42, 3, 7, true};
  DeviceEntry b;
  b.device = "/dev/nbd9";
  b.index = 9;
  b.spec = "rbd/img@snap";
  DeviceEntry c;
  c.device = "/dev/ublkb3";
  c.type = "ublk";
  c.index = 3;
  c.queue_depth = 64;
  c.max_io_bytes = 1u << 20;
  c.spec = "rbd/going";
  c.state = DeviceState::kUnmapping;
  c.health = DeviceHealth{};  // a device that never did I/O: seconds_since_last_io -1
  c.health->state = DeviceState::kUnmapping;
  s.devices = {a, b, c};
  s.pid = 4242;
  s.nbd_driver = true;
  s.netlink = false;
  return s;
}

void ExpectSameDevice(const DeviceEntry& a, const DeviceEntry& b) {
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.cookie, b.cookie);
  EXPECT_EQ(a.connections, b.connections);
  EXPECT_EQ(a.live_connections, b.live_connections);
  EXPECT_EQ(a.queue_depth, b.queue_depth);
  EXPECT_EQ(a.max_io_bytes, b.max_io_bytes);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.read_only, b.read_only);
  EXPECT_EQ(a.exclusive, b.exclusive);
  EXPECT_EQ(a.encryption, b.encryption);
  EXPECT_EQ(a.io_timeout_s, b.io_timeout_s);
  EXPECT_EQ(a.reattach_timeout_s, b.reattach_timeout_s);
  EXPECT_EQ(a.client_name, b.client_name);
  EXPECT_EQ(a.kernel_connected, b.kernel_connected);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.last_error, b.last_error);
  EXPECT_EQ(a.last_error_unix, b.last_error_unix);
  EXPECT_EQ(a.reattach_attempts, b.reattach_attempts);
  ASSERT_EQ(a.health.has_value(), b.health.has_value());
  if (a.health) {
    EXPECT_EQ(a.health->state, b.health->state);
    EXPECT_EQ(a.health->last_error, b.health->last_error);
    EXPECT_EQ(a.health->last_error_time, b.health->last_error_time);
    EXPECT_EQ(a.health->seconds_since_last_io, b.health->seconds_since_last_io);
    EXPECT_EQ(a.health->inflight, b.health->inflight);
    EXPECT_EQ(a.health->recent_errors, b.health->recent_errors);
    EXPECT_EQ(a.health->stalled, b.health->stalled);
  }
}

TEST(ApiCodecTest, StatusReplyRoundTripsEveryField) {
  StatusReply s = FullStatus();
  std::string line = EncodeReply(s);
  EXPECT_NE(line.find(R"("state":"reattaching")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("state":"mapped")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("state":"unmapping")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("type":"ublk")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("type":"nbd")"), std::string::npos) << line;
  auto back = DecodeStatusReply(line);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_EQ(back->devices.size(), 3u);
  ExpectSameDevice(back->devices[0], s.devices[0]);
  ExpectSameDevice(back->devices[1], s.devices[1]);
  ExpectSameDevice(back->devices[2], s.devices[2]);
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->nbd_driver, std::optional<bool>(true));
  EXPECT_EQ(back->netlink, std::optional<bool>(false));
}

TEST(ApiCodecTest, StatusReplyOfAnOlderDaemonDecodesToDefaults) {
  // What a daemon from before the state fields sends.
  auto back = DecodeStatusReply(
      R"({"ok":true,"pid":7,"devices":[{"device":"/dev/nbd1","spec":"rbd/a","cookie":"c","size":1073741824,)"
      R"("read_only":false,"connections":1,"live_connections":1}]})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_EQ(back->devices.size(), 1u);
  EXPECT_EQ(back->devices[0].state, DeviceState::kMapped);
  EXPECT_EQ(back->devices[0].type, "nbd");  // before ublk, every device was nbd
  EXPECT_EQ(back->devices[0].last_error, "");
  EXPECT_EQ(back->devices[0].reattach_attempts, 0u);
  EXPECT_EQ(back->devices[0].size, 1073741824u);
  EXPECT_FALSE(back->nbd_driver.has_value());
  EXPECT_FALSE(back->netlink.has_value());
  EXPECT_FALSE(back->devices[0].health.has_value());
}

TEST(ApiCodecTest, HealthHasTheWireNamesThePluginReads) {
  StatusReply s = FullStatus();
  std::string line = EncodeReply(s);
  EXPECT_NE(line.find(R"("health":{"inflight":3,"last_error":"cannot connect to the cluster as client.kube: )"
                      R"(timed out","last_error_time":1764690000,"recent_errors":7,"seconds_since_last_io":42,)"
                      R"("stalled":true,"state":"reattaching"})"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("seconds_since_last_io":-1)"), std::string::npos) << line;
  // A device without health (b) has no "health" key at all: two of three have one.
  size_t healths = 0;
  for (size_t at = line.find(R"("health":)"); at != std::string::npos; at = line.find(R"("health":)", at + 1)) healths++;
  EXPECT_EQ(healths, 2u) << line;
  auto back = DecodeStatusReply(line);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_FALSE(back->devices[1].health.has_value());
  ASSERT_TRUE(back->devices[2].health.has_value());
  EXPECT_EQ(back->devices[2].health->seconds_since_last_io, -1);
}

TEST(ApiCodecTest, HealthFieldsAbsentFromAPartialObjectTakeTheirDefaults) {
  // A daemon that sends fewer health fields (or a newer one that adds more).
  auto back = DecodeStatusReply(
      R"({"ok":true,"devices":[{"device":"/dev/nbd1","spec":"rbd/a","health":{"stalled":true,"future":1}}]})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_TRUE(back->devices[0].health.has_value());
  const DeviceHealth& h = *back->devices[0].health;
  EXPECT_TRUE(h.stalled);
  EXPECT_EQ(h.state, DeviceState::kMapped);
  EXPECT_EQ(h.seconds_since_last_io, -1);
  EXPECT_EQ(h.inflight, 0u);
  EXPECT_EQ(h.recent_errors, 0u);
  EXPECT_EQ(h.last_error_time, 0u);
  // "health": null is an older daemon too.
  back = DecodeStatusReply(R"({"ok":true,"devices":[{"device":"/dev/nbd1","spec":"rbd/a","health":null}]})");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_FALSE(back->devices[0].health.has_value());
}

TEST(ApiCodecTest, MalformedHealthIsEprotoAndNamesTheField) {
  struct Case { const char* health; const char* needle; } cases[] = {
      {"7", "devices[0]: health is not an object"},
      {R"({"state":"lost"})", "health: 'state' must be mapped, reattaching or unmapping"},
      {R"({"seconds_since_last_io":-2})", "health: 'seconds_since_last_io' must be -1.."},
      {R"({"seconds_since_last_io":1.5})", "'seconds_since_last_io' must be a whole number"},
      {R"({"inflight":-1})", "health: 'inflight' must be a non-negative"},
      {R"({"stalled":"no"})", "health: 'stalled' must be true or false"},
      {R"({"last_error":1})", "health: 'last_error' must be a string"},
  };
  for (const auto& c : cases) {
    std::string text = std::string(R"({"ok":true,"devices":[{"device":"/dev/nbd0","spec":"rbd/a","health":)") +
                       c.health + "}]}";
    ExpectError(DecodeStatusReply(text), EPROTO, c.needle, text);
  }
}

TEST(ApiCodecTest, MalformedRepliesAreEprotoAndNameTheField) {
  struct Case { const char* text; const char* needle; } status_cases[] = {
      {"", "malformed reply"},
      {"[]", "malformed reply"},
      {R"({"devices":[]})", "'ok' is required"},
      {R"({"ok":"true","devices":[]})", "'ok' must be true or false"},
      {R"({"ok":true})", "'devices' is required"},
      {R"({"ok":true,"devices":{}})", "'devices' must be a list"},
      {R"({"ok":true,"devices":[7]})", "devices[0] is not an object"},
      {R"({"ok":true,"devices":[{"spec":"rbd/a"}]})", "devices[0]: 'device' is required"},
      {R"({"ok":true,"devices":[{"device":"/dev/nbd0"}]})", "devices[0]: 'spec' is required"},
      {R"({"ok":true,"devices":[{"device":"/dev/nbd0","spec":"rbd/a","size":-1}]})", "'size' must be a non-negative"},
      {R"({"ok":true,"devices":[{"device":"/dev/nbd0","spec":"rbd/a","state":"lost"}]})",
       "'state' must be mapped, reattaching or unmapping, not 'lost'"},
      {R"({"ok":true,"devices":[{"device":"/dev/nbd0","spec":"rbd/a","last_error":5}]})", "'last_error' must be a string"},
      {R"({"ok":true,"devices":[{"device":"/dev/nbd0","spec":"rbd/a","reattach_attempts":-2}]})", "'reattach_attempts'"},
      {R"({"ok":true,"devices":[],"nbd_driver":"yes"})", "'nbd_driver' must be true or false"},
      {R"({"ok":true,"devices":[],"pid":-1})", "'pid' must be a non-negative"},
      {R"({"ok":false})", "'errno' is required"},
      {R"({"ok":false,"errno":"2","error":"x"})", "'errno' must be a non-negative"},
      {R"({"ok":false,"errno":0,"error":"x"})", "'errno' must be 1..4095"},
      {R"({"ok":false,"errno":2})", "'error' is required"},
  };
  for (const auto& c : status_cases) ExpectError(DecodeStatusReply(c.text), EPROTO, c.needle, c.text);
  ExpectError(DecodeMappedReply(R"({"ok":true,"cookie":"c"})"), EPROTO, "map reply: 'device' is required", "no device");
  ExpectError(DecodeMappedReply(R"({"ok":true,"device":0})"), EPROTO, "'device' must be a string", "device 0");
  ExpectError(DecodeOkReply("garbage"), EPROTO, "malformed reply", "garbage");
}

TEST(ApiCodecTest, FormatsForPeopleAreIndentedJson) {
  StatusReply s = FullStatus();
  std::string devices = FormatDevices(s.devices, 2);
  EXPECT_EQ(devices.rfind("[\n  {", 0), 0u) << devices;
  EXPECT_NE(devices.find(R"("reattach_attempts": 5)"), std::string::npos) << devices;
  EXPECT_EQ(FormatDevices({}, 2), "[]");
  std::string status = FormatStatus(s, 2);
  EXPECT_NE(status.find(R"("pid": 4242)"), std::string::npos) << status;
  // The status format is the reply itself: it decodes.
  auto back = DecodeStatusReply(status);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->devices.size(), 3u);
}

}  // namespace
}  // namespace rbdnbd::api
