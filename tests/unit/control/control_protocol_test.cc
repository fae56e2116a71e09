// The daemon's conversions between the control API's wire messages and its
// own MapRequest, DeviceRecord and MappedInfo (the codec itself: tests/unit/api).
#include "control/control_protocol.h"

#include <gtest/gtest.h>

#include "api/codec.h"
#include "control/client_command.h"

namespace rbdnbd {
namespace {

// The CLI's request through the wire and back, as the daemon receives it.
Result<MapRequest> ThroughTheWire(const MapRequest& r) {
  auto decoded = api::DecodeRequest(api::EncodeRequest(ToWire(r)));
  if (!decoded) return Unexpected(decoded.error());
  return FromWire(std::get<api::MapRequest>(std::move(*decoded)));
}

TEST(ControlProtocolTest, MapRequestRoundTrip) {
  MapRequest r;
  r.spec = "rbd/img";
  r.device.index = 5;
  r.device.connections = 4;
  r.device.io_timeout_s = 30;
  r.device.reattach_timeout_s = 60;
  r.device.cookie = "rbd-nbdd-1";
  r.image.read_only = true;
  r.image.exclusive = true;
  r.image.notrim = true;
  r.image.encryption = EncryptionFormat::kLuks2;
  r.passphrase_file = "/p";
  ASSERT_TRUE(SetClientId(&r.cluster, "kube").has_value());
  r.cluster.conf_path = "/etc/ceph/ceph.conf";
  r.cluster.mon_host = "127.0.0.1:14200";
  r.cluster.keyring_path = "/etc/ceph/k";
  r.cluster.connect_timeout = std::chrono::seconds(9);
  r.cluster.key = Secret(std::string("AQBsecret=="));
  r.keyfile_path = "/kf";
  auto back = ThroughTheWire(r);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->spec, "rbd/img");
  EXPECT_EQ(*back->device.index, 5u);
  EXPECT_EQ(back->device.connections, 4u);
  EXPECT_EQ(back->device.io_timeout_s, 30u);
  EXPECT_EQ(back->device.reattach_timeout_s, 60u);
  EXPECT_EQ(back->device.cookie, "rbd-nbdd-1");
  EXPECT_TRUE(back->image.read_only);
  EXPECT_TRUE(back->image.exclusive);
  EXPECT_TRUE(back->image.notrim);
  EXPECT_EQ(back->image.encryption, EncryptionFormat::kLuks2);
  EXPECT_EQ(back->passphrase_file, "/p");
  EXPECT_EQ(back->cluster.client_name, "client.kube");
  EXPECT_EQ(back->cluster.conf_path, "/etc/ceph/ceph.conf");
  EXPECT_EQ(back->cluster.mon_host, "127.0.0.1:14200");
  EXPECT_EQ(back->cluster.keyring_path, "/etc/ceph/k");
  EXPECT_EQ(back->cluster.connect_timeout, std::chrono::seconds(9));
  EXPECT_EQ(back->cluster.key.reveal(), "AQBsecret==");
  EXPECT_EQ(back->keyfile_path, "/kf");
  EXPECT_FALSE(back->cluster.read_ceph_args) << "the daemon must not apply its own CEPH_ARGS to a client's map";
}

TEST(ControlProtocolTest, InMemoryPassphraseRoundTrip) {
  MapRequest r;
  r.spec = "rbd/img";
  r.image.encryption = EncryptionFormat::kLuks1;
  r.image.passphrase = Secret(std::string("correct horse"));
  auto back = ThroughTheWire(r);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->image.encryption, EncryptionFormat::kLuks1);
  EXPECT_EQ(back->image.passphrase.reveal(), "correct horse");
  EXPECT_TRUE(back->passphrase_file.empty());
}

TEST(ControlProtocolTest, TheDaemonRefusesWhatTheCliMustNotSend) {
  MapRequest r;
  r.spec = "rbd/img";
  r.image.encryption = EncryptionFormat::kLuks2;  // no passphrase of either kind
  auto back = ThroughTheWire(r);
  ASSERT_FALSE(back.has_value());
  EXPECT_EQ(back.error().code, EINVAL);
  EXPECT_NE(back.error().message.find("passphrase"), std::string::npos) << back.error().message;
}

TEST(ControlProtocolTest, AttachGivesTheRecordOfItsDevice) {
  api::AttachRequest a;
  a.map.spec = "rbd/a@s";
  a.map.device = 1;
  a.map.cookie = "c";
  a.map.keyring = "/k";
  a.map.client_name = "client.kube";
  a.map.connect_timeout_s = 11;
  auto r = RecordForAttach(a);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->index, 1u);
  EXPECT_EQ(r->spec, "rbd/a@s");
  EXPECT_EQ(r->cookie, "c");
  EXPECT_TRUE(r->read_only) << "a snapshot is always read-only";
  EXPECT_EQ(r->keyring_path, "/k");
  EXPECT_EQ(r->client_name, "client.kube");
  EXPECT_EQ(r->connect_timeout_s, 11u);
  EXPECT_FALSE(r->key_in_memory);
  EXPECT_FALSE(r->passphrase_in_memory);
}

TEST(ControlProtocolTest, AttachOfABadSpecIsRefused) {
  api::AttachRequest a;
  a.map.spec = "nopool";
  a.map.device = 1;
  a.map.cookie = "c";
  auto r = RecordForAttach(a);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("no pool"), std::string::npos) << r.error().message;
}

TEST(ControlProtocolTest, MappedInfoBecomesTheWireEntryInEachState) {
  MappedInfo m;
  m.record.index = 2;
  m.record.spec = "rbd/a";
  m.record.cookie = "c";
  m.record.connections = 2;
  m.record.io_timeout_s = 30;
  m.record.reattach_timeout_s = 60;
  m.record.read_only = true;
  m.record.exclusive = true;
  m.record.encryption = "luks1";
  m.record.client_name = "client.kube";
  m.device = "/dev/nbd2";
  m.live_connections = 1;
  m.size = 4096;
  m.kernel_connected = false;
  api::DeviceEntry d = ToWire(m);
  EXPECT_EQ(d.device, "/dev/nbd2");
  EXPECT_EQ(d.index, 2u);
  EXPECT_EQ(d.spec, "rbd/a");
  EXPECT_EQ(d.cookie, "c");
  EXPECT_EQ(d.connections, 2u);
  EXPECT_EQ(d.live_connections, 1u);
  EXPECT_EQ(d.size, 4096u);
  EXPECT_TRUE(d.read_only);
  EXPECT_TRUE(d.exclusive);
  EXPECT_EQ(d.encryption, "luks1");
  EXPECT_EQ(d.io_timeout_s, 30u);
  EXPECT_EQ(d.reattach_timeout_s, 60u);
  EXPECT_EQ(d.client_name, "client.kube");
  EXPECT_FALSE(d.kernel_connected);
  EXPECT_EQ(d.state, api::DeviceState::kMapped);
  EXPECT_EQ(d.last_error, "");
  EXPECT_EQ(d.last_error_unix, 0u);
  EXPECT_EQ(d.reattach_attempts, 0u);

  m.state = api::DeviceState::kReattaching;
  m.last_error = "cannot connect";
  m.last_error_unix = 1764690000;
  m.reattach_attempts = 7;
  d = ToWire(m);
  EXPECT_EQ(d.state, api::DeviceState::kReattaching);
  EXPECT_EQ(d.last_error, "cannot connect");
  EXPECT_EQ(d.last_error_unix, 1764690000u);
  EXPECT_EQ(d.reattach_attempts, 7u);
}

TEST(ControlProtocolTest, HealthTravelsToTheWireEntry) {
  MappedInfo m;
  m.record.spec = "rbd/a";
  m.device = "/dev/nbd0";
  m.health = api::DeviceHealth{api::DeviceState::kReattaching, "cannot connect", 1764690000, 12, 5, 3, true};
  api::DeviceEntry d = ToWire(m);
  ASSERT_TRUE(d.health.has_value());
  EXPECT_EQ(d.health->state, api::DeviceState::kReattaching);
  EXPECT_EQ(d.health->last_error, "cannot connect");
  EXPECT_EQ(d.health->last_error_time, 1764690000u);
  EXPECT_EQ(d.health->seconds_since_last_io, 12);
  EXPECT_EQ(d.health->inflight, 5u);
  EXPECT_EQ(d.health->recent_errors, 3u);
  EXPECT_TRUE(d.health->stalled);
}

TEST(ControlProtocolTest, UblkTypeTravelsThroughTheWireTheRecordAndTheListEntry) {
  MapRequest r;
  r.spec = "rbd/img";
  r.type = DeviceType::kUblk;
  r.device.index = 7;
  r.device.cookie = "rbd-nbdd-u";
  auto back = ThroughTheWire(r);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->type, DeviceType::kUblk);
  EXPECT_EQ(ToWire(r).device_type, "ublk");
  EXPECT_EQ(ToWire(MapRequest{}).device_type, "nbd");

  auto spec = ParseImageSpec(back->spec);
  ASSERT_TRUE(spec.has_value());
  DeviceRecord rec = RecordForMap(*back, *spec);
  EXPECT_EQ(rec.type, DeviceType::kUblk);
  EXPECT_EQ(rec.index, 7u);
  auto again = MapRequestForRecord(rec);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->type, DeviceType::kUblk);
  EXPECT_EQ(*again->device.index, 7u);

  MappedInfo m;
  m.record = rec;
  m.device = DevicePath(rec.type, rec.index);
  api::DeviceEntry d = ToWire(m);
  EXPECT_EQ(d.type, "ublk");
  EXPECT_EQ(d.device, "/dev/ublkb7");
  EXPECT_EQ(ToWire(MappedInfo{}).type, "nbd");
}

TEST(ControlProtocolTest, UblkQueueShapeTravelsToTheRecordAndBackAndToTheListEntry) {
  MapRequest r;
  r.spec = "rbd/img";
  r.type = DeviceType::kUblk;
  r.ublk_queue_depth = 64;
  r.ublk_max_io_bytes = 256u << 10;
  auto back = ThroughTheWire(r);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->ublk_queue_depth, 64u);
  EXPECT_EQ(back->ublk_max_io_bytes, 256u << 10);
  auto spec = ParseImageSpec(back->spec);
  ASSERT_TRUE(spec.has_value());
  DeviceRecord rec = RecordForMap(*back, *spec);
  EXPECT_EQ(rec.queue_depth, 64u);
  EXPECT_EQ(rec.max_io_bytes, 256u << 10);
  auto again = MapRequestForRecord(rec);  // restore and attach
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->ublk_queue_depth, 64u);
  EXPECT_EQ(again->ublk_max_io_bytes, 256u << 10);
  MappedInfo m;
  m.record = rec;
  api::DeviceEntry d = ToWire(m);
  EXPECT_EQ(d.queue_depth, 64u);
  EXPECT_EQ(d.max_io_bytes, 256u << 10);

  // Not given: the record holds the defaults for ublk (what list-mapped shows), nothing for nbd.
  r.ublk_queue_depth = 0;
  r.ublk_max_io_bytes = 0;
  rec = RecordForMap(r, *spec);
  EXPECT_EQ(rec.queue_depth, 128u);
  EXPECT_EQ(rec.max_io_bytes, 512u << 10);
  r.type = DeviceType::kNbd;
  rec = RecordForMap(r, *spec);
  EXPECT_EQ(rec.queue_depth, 0u);
  EXPECT_EQ(rec.max_io_bytes, 0u);
  m.record = rec;
  EXPECT_EQ(ToWire(m).queue_depth, 0u);
}

TEST(ControlProtocolTest, AnUnknownDeviceTypeFromTheWireIsRefused) {
  api::MapRequest w;
  w.spec = "rbd/img";
  w.device_type = "krbd";  // what the codec refuses; the daemon refuses it too
  auto r = FromWire(w);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST(ClientOptionsTest, DeviceTypeTakesNbdAndUblkOnly) {
  EXPECT_EQ(ParseDeviceTypeOption("nbd").value(), DeviceType::kNbd);
  EXPECT_EQ(ParseDeviceTypeOption("ublk").value(), DeviceType::kUblk);
  for (const char* bad : {"", "krbd", "ubbd", "UBLK"}) {
    auto t = ParseDeviceTypeOption(bad);
    ASSERT_FALSE(t.has_value()) << bad;
    EXPECT_NE(t.error().message.find("--device-type"), std::string::npos) << t.error().message;
  }
}

TEST(ClientOptionsTest, DeviceIndexFollowsTheType) {
  EXPECT_EQ(ParseDeviceIndex("/dev/nbd3", DeviceType::kNbd).value(), 3u);
  EXPECT_EQ(ParseDeviceIndex("3", DeviceType::kNbd).value(), 3u);
  EXPECT_EQ(ParseDeviceIndex("/dev/ublkb12", DeviceType::kUblk).value(), 12u);
  EXPECT_EQ(ParseDeviceIndex("12", DeviceType::kUblk).value(), 12u);
  auto wrong = ParseDeviceIndex("/dev/ublkb1", DeviceType::kNbd);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message.find("-t ublk"), std::string::npos) << wrong.error().message;
  wrong = ParseDeviceIndex("/dev/nbd1", DeviceType::kUblk);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message.find("-t nbd"), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(ParseDeviceIndex("/dev/sda", DeviceType::kUblk).has_value());
}

TEST(ClientOptionsTest, UblkQueueDepthAndMaxIoAreCheckedAndUblkOnly) {
  auto shape = ParseUblkShapeOptions(DeviceType::kUblk, "64", "256K");
  ASSERT_TRUE(shape.has_value()) << shape.error().message;
  EXPECT_EQ(shape->queue_depth, 64u);
  EXPECT_EQ(shape->max_io_bytes, 256u << 10);
  shape = ParseUblkShapeOptions(DeviceType::kUblk, "", "1M");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->queue_depth, 0u) << "not given: the daemon's default";
  EXPECT_EQ(shape->max_io_bytes, 1u << 20);
  shape = ParseUblkShapeOptions(DeviceType::kUblk, "4096", "32M");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->queue_depth, 4096u);
  EXPECT_EQ(shape->max_io_bytes, 32u << 20);
  shape = ParseUblkShapeOptions(DeviceType::kNbd, "", "");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->queue_depth, 0u);

  struct Bad { DeviceType type; const char* depth; const char* max_io; const char* needle; } bad[] = {
      {DeviceType::kNbd, "64", "", "--queue-depth applies to -t ublk only"},
      {DeviceType::kNbd, "", "256K", "--max-io applies to -t ublk only"},
      {DeviceType::kUblk, "0", "", "--queue-depth: '0' is not a number of requests in 1..4096"},
      {DeviceType::kUblk, "4097", "", "1..4096"},
      {DeviceType::kUblk, "sixty", "", "--queue-depth"},
      {DeviceType::kUblk, "", "6K", "--max-io: '6K' is not a size that is a multiple of 4K"},
      {DeviceType::kUblk, "", "2K", "--max-io"},
      {DeviceType::kUblk, "", "64M", "from 4K to 32M"},
      {DeviceType::kUblk, "", "1.5M", "--max-io"},
      {DeviceType::kUblk, "", "-4K", "--max-io"},
  };
  for (const Bad& b : bad) {
    auto r = ParseUblkShapeOptions(b.type, b.depth, b.max_io);
    ASSERT_FALSE(r.has_value()) << b.depth << " " << b.max_io;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find(b.needle), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace rbdnbd
