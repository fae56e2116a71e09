// The contract between the CSI plugin and the daemon, through the real code
// of both ends: what the plugin sends is what the daemon maps, and what the
// daemon reports is what the plugin sees.
#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "api/codec.h"
#include "control/control_protocol.h"
#include "csi/daemon_client.h"

namespace rbdnbd {
namespace {

constexpr const char* kKey = "AQBzG2tnAAAAABAAwF0V9Qm8bZ3qHk5y3lWcGg==";
constexpr const char* kPassphrase = "correct horse battery staple";

csi::VolumeParams Volume() {
  csi::VolumeParams p;
  p.spec = "kube/tenant-a/pvc-1";
  p.mon_host = "127.0.0.1:14200,127.0.0.1:14201";
  p.client_name = "client.kube";
  p.key = Secret(std::string(kKey));
  p.connections = 4;
  p.io_timeout_s = 31;
  p.connect_timeout_s = 7;
  p.reattach_timeout_s = 61;
  p.exclusive = true;
  p.encryption = "luks2";
  p.passphrase = Secret(std::string(kPassphrase));
  return p;
}

// What the daemon makes of the line the plugin sends: ServeClient's decode and conversion.
MapRequest DaemonDecodes(const std::string& line) {
  auto request = api::DecodeRequest(line);
  EXPECT_TRUE(request.has_value()) << request.error().message;
  EXPECT_TRUE(std::holds_alternative<api::MapRequest>(*request));
  auto map = FromWire(std::get<api::MapRequest>(std::move(*request)));
  EXPECT_TRUE(map.has_value()) << map.error().message;
  return std::move(map).value();
}

TEST(ApiContractTest, ThePluginsMapRequestIsTheDaemonsMapRequest) {
  MapRequest r = DaemonDecodes(api::EncodeRequest(csi::BuildMapRequest(Volume(), /*read_only=*/true)));
  EXPECT_EQ(r.spec, "kube/tenant-a/pvc-1");
  EXPECT_FALSE(r.device.index.has_value()) << "the kernel picks the device";
  EXPECT_EQ(r.device.connections, 4u);
  EXPECT_EQ(r.device.io_timeout_s, 31u);
  EXPECT_EQ(r.device.reattach_timeout_s, 61u);
  EXPECT_EQ(r.device.cookie, "") << "the daemon makes the cookie";
  EXPECT_TRUE(r.image.read_only);
  EXPECT_TRUE(r.image.exclusive);
  EXPECT_FALSE(r.image.notrim);
  EXPECT_EQ(r.image.encryption, EncryptionFormat::kLuks2);
  EXPECT_EQ(r.image.passphrase.reveal(), kPassphrase);
  EXPECT_EQ(r.passphrase_file, "");
  EXPECT_EQ(r.cluster.client_name, "client.kube");
  EXPECT_EQ(r.cluster.conf_path, "") << "the plugin has no ceph.conf";
  EXPECT_EQ(r.cluster.mon_host, "127.0.0.1:14200,127.0.0.1:14201");
  EXPECT_EQ(r.cluster.keyring_path, "");
  EXPECT_EQ(r.cluster.key.reveal(), kKey);
  EXPECT_FALSE(r.cluster.read_ceph_args) << "the daemon's CEPH_ARGS must not apply to the plugin's map";
  EXPECT_EQ(r.cluster.connect_timeout, std::chrono::seconds(7));
  EXPECT_EQ(r.keyfile_path, "");

  // And the record the state file keeps: no secret, only that they were in memory.
  auto spec = ParseImageSpec(r.spec);
  ASSERT_TRUE(spec.has_value());
  DeviceRecord record = RecordForMap(r, *spec);
  EXPECT_TRUE(record.key_in_memory);
  EXPECT_TRUE(record.passphrase_in_memory);
  EXPECT_EQ(record.connect_timeout_s, 7u);
  EXPECT_EQ(record.encryption, "luks2");
}

TEST(ApiContractTest, AnUnencryptedVolumeSendsNoPassphrase) {
  csi::VolumeParams p = Volume();
  p.encryption = "";
  std::string line = api::EncodeRequest(csi::BuildMapRequest(p, /*read_only=*/false));
  EXPECT_EQ(line.find("horse"), std::string::npos) << "a passphrase without encryption would be refused";
  MapRequest r = DaemonDecodes(line);
  EXPECT_EQ(r.image.encryption, EncryptionFormat::kNone);
  EXPECT_TRUE(r.image.passphrase.empty());
  EXPECT_FALSE(r.image.read_only);
  EXPECT_EQ(r.cluster.key.reveal(), kKey);
}

MappedInfo Info(api::DeviceState state) {
  MappedInfo m;
  m.record.index = 3;
  m.record.spec = "kube/tenant-a/pvc-1";
  m.record.cookie = "rbd-nbdd-0123";
  m.record.connections = 4;
  m.record.io_timeout_s = 31;
  m.record.reattach_timeout_s = 61;
  m.record.read_only = true;
  m.record.exclusive = true;
  m.record.encryption = "luks2";
  m.record.client_name = "client.kube";
  m.device = "/dev/nbd3";
  m.live_connections = state == api::DeviceState::kMapped ? 4 : 0;
  m.size = 10ull << 30;
  m.kernel_connected = true;
  m.state = state;
  if (state == api::DeviceState::kReattaching) {
    m.last_error = "cannot connect to the cluster as client.kube: timed out after 7 s";
    m.last_error_unix = 1764690000;
    m.reattach_attempts = 3;
  }
  return m;
}

// The daemon's status reply for `infos`, as ServeClient encodes it.
std::string DaemonReports(const std::vector<MappedInfo>& infos) {
  api::StatusReply reply;
  for (const MappedInfo& m : infos) reply.devices.push_back(ToWire(m));
  reply.pid = 99;
  reply.nbd_driver = true;
  reply.netlink = true;
  return api::EncodeReply(reply);
}

TEST(ApiContractTest, TheDaemonsStatusIsWhatThePluginSeesInEveryState) {
  std::string line = DaemonReports({Info(api::DeviceState::kMapped), Info(api::DeviceState::kReattaching)});

  auto plugin = csi::ParseStatusReply(line);
  ASSERT_TRUE(plugin.has_value()) << plugin.error().message;
  ASSERT_EQ(plugin->devices.size(), 2u);
  for (const csi::MappedDevice& d : plugin->devices) {
    EXPECT_EQ(d.device, "/dev/nbd3");
    EXPECT_EQ(d.spec, "kube/tenant-a/pvc-1");
    EXPECT_EQ(d.cookie, "rbd-nbdd-0123");
    EXPECT_EQ(d.size, 10ull << 30);
    EXPECT_TRUE(d.read_only);
  }
  EXPECT_EQ(plugin->nbd_driver, std::optional<bool>(true));

  // Everything else the daemon says about the device, through the same decoder.
  auto wire = api::DecodeStatusReply(line);
  ASSERT_TRUE(wire.has_value()) << wire.error().message;
  const api::DeviceEntry& mapped = wire->devices[0];
  const api::DeviceEntry& reattaching = wire->devices[1];
  for (const api::DeviceEntry& d : wire->devices) {
    EXPECT_EQ(d.index, 3u);
    EXPECT_EQ(d.connections, 4u);
    EXPECT_EQ(d.io_timeout_s, 31u);
    EXPECT_EQ(d.reattach_timeout_s, 61u);
    EXPECT_TRUE(d.exclusive);
    EXPECT_EQ(d.encryption, "luks2");
    EXPECT_EQ(d.client_name, "client.kube");
    EXPECT_TRUE(d.kernel_connected);
  }
  EXPECT_EQ(mapped.state, api::DeviceState::kMapped);
  EXPECT_EQ(mapped.live_connections, 4u);
  EXPECT_EQ(mapped.last_error, "");
  EXPECT_EQ(mapped.last_error_unix, 0u);
  EXPECT_EQ(mapped.reattach_attempts, 0u);
  EXPECT_EQ(reattaching.state, api::DeviceState::kReattaching);
  EXPECT_EQ(reattaching.live_connections, 0u);
  EXPECT_EQ(reattaching.last_error, "cannot connect to the cluster as client.kube: timed out after 7 s");
  EXPECT_EQ(reattaching.last_error_unix, 1764690000u);
  EXPECT_EQ(reattaching.reattach_attempts, 3u);
  EXPECT_EQ(wire->pid, 99);
  EXPECT_EQ(wire->netlink, std::optional<bool>(true));
}

TEST(ApiContractTest, TheDaemonsErrorReachesThePluginWithItsErrno) {
  auto plugin = csi::ParseStatusReply(api::EncodeReply(Error{EACCES, "permission denied"}));
  ASSERT_FALSE(plugin.has_value());
  EXPECT_EQ(plugin.error().code, EACCES);
  EXPECT_EQ(plugin.error().message, "permission denied");
  auto malformed = csi::ParseStatusReply(R"({"ok":true,"devices":"none"})");
  ASSERT_FALSE(malformed.has_value());
  EXPECT_EQ(malformed.error().code, EPROTO);
}

}  // namespace
}  // namespace rbdnbd
