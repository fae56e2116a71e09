// VolumeCondition: the pure judgement from the daemon's status reply, the
// reply parsed with and without the daemon's health object, and
// NodeGetVolumeStats' condition through VolumeStats with the fake daemon.
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "csi/csi_error.h"
#include "csi/daemon_client.h"
#include "csi/stager.h"
#include "csi/volume_condition.h"
#include "csi/volume_stats.h"
#include "fakes.h"
#include "node_fixture.h"

namespace rbdnbd::csi {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kNow = 1'800'000'000;

VolumeRecord Record() {
  VolumeRecord r;
  r.volume_id = "vol-1";
  r.spec = "kube/img-1";
  r.device = "/dev/nbd3";
  r.staged = true;
  return r;
}

MappedDevice Device(std::optional<api::DeviceHealth> health = api::DeviceHealth{}) {
  MappedDevice d;
  d.device = "/dev/nbd3";
  d.spec = "kube/img-1";
  d.health = health;
  return d;
}

Result<DaemonStatus> StatusWith(MappedDevice d) {
  DaemonStatus s;
  s.devices.push_back(std::move(d));
  return s;
}

void ExpectAbnormal(const VolumeCondition& c, const std::string& mention) {
  EXPECT_TRUE(c.abnormal) << c.message;
  EXPECT_NE(c.message.find(mention), std::string::npos) << c.message;
}

TEST(VolumeConditionTest, AMappedDeviceWithoutTroubleIsHealthy) {
  api::DeviceHealth h;
  h.seconds_since_last_io = 2;
  h.inflight = 3;
  auto c = EvaluateCondition(Record(), StatusWith(Device(h)), kNow);
  EXPECT_FALSE(c.abnormal);
  EXPECT_EQ(c.message.rfind("healthy", 0), 0u) << c.message;
  EXPECT_NE(c.message.find("/dev/nbd3"), std::string::npos);
}

TEST(VolumeConditionTest, ReattachingOrUnmappingIsAbnormal) {
  api::DeviceHealth h;
  h.state = api::DeviceState::kReattaching;
  h.stalled = true;  // the daemon also calls a reattaching device stalled: said once
  MappedDevice d = Device(h);
  d.reattach_attempts = 4;
  auto c = EvaluateCondition(Record(), StatusWith(d), kNow);
  ExpectAbnormal(c, "waiting for a reattach");
  ExpectAbnormal(c, "4 tries");
  EXPECT_EQ(c.message.find("stalled"), std::string::npos) << c.message;
  ExpectAbnormal(c, "/dev/nbd3 (kube/img-1)");

  h.state = api::DeviceState::kUnmapping;
  h.stalled = false;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(Device(h)), kNow), "being unmapped");
}

TEST(VolumeConditionTest, AStalledDeviceIsAbnormal) {
  api::DeviceHealth h;
  h.stalled = true;
  h.inflight = 7;
  h.seconds_since_last_io = 45;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(Device(h)), kNow),
                 "stalled: 7 requests in flight, none completed for 45 s");
  h.seconds_since_last_io = -1;  // none completed since the map
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(Device(h)), kNow), "none completed yet");
}

TEST(VolumeConditionTest, RecentErrorsAreAbnormal) {
  api::DeviceHealth h;
  h.recent_errors = 12;
  h.last_error = "write: EIO";
  h.last_error_time = kNow - 5;
  auto c = EvaluateCondition(Record(), StatusWith(Device(h)), kNow);
  ExpectAbnormal(c, "12 requests failed in the last 60 s");
  ExpectAbnormal(c, "last error 5 s ago: write: EIO");
}

TEST(VolumeConditionTest, ALastErrorIsAbnormalOnlyWhileRecent) {
  api::DeviceHealth h;
  h.last_error = "reattach: connection refused";
  h.last_error_time = kNow - 240;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(Device(h)), kNow), "last error 4 min ago");
  h.last_error_time = kNow - kRecentErrorWindow.count() - 1;
  auto old = EvaluateCondition(Record(), StatusWith(Device(h)), kNow);
  EXPECT_FALSE(old.abnormal) << old.message;
  h.last_error_time = 0;  // an error without a time is not news
  EXPECT_FALSE(EvaluateCondition(Record(), StatusWith(Device(h)), kNow).abnormal);
}

TEST(VolumeConditionTest, ADeviceNoLongerMappedIsAbnormal) {
  DaemonStatus none;
  ExpectAbnormal(EvaluateCondition(Record(), none, kNow), "/dev/nbd3 (kube/img-1) is no longer mapped");
  MappedDevice other = Device();
  other.spec = "kube/someone-else";
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(other), kNow), "now serves kube/someone-else");
  MappedDevice dropped = Device();
  dropped.kernel_connected = false;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(dropped), kNow), "the kernel no longer has the device");
  VolumeRecord unmapped = Record();
  unmapped.device.clear();
  ExpectAbnormal(EvaluateCondition(unmapped, StatusWith(Device()), kNow), "stage has not finished");
}

TEST(VolumeConditionTest, AnUnreachableDaemonIsAbnormal) {
  Result<DaemonStatus> down = Err(kUnavailable, "rbd-nbdd daemon unreachable at /run/rbd-nbdd/control.sock");
  ExpectAbnormal(EvaluateCondition(Record(), down, kNow), "unreachable at /run/rbd-nbdd/control.sock");
}

TEST(VolumeConditionTest, AnOlderDaemonIsJudgedByTheDeviceEntry) {
  MappedDevice d = Device(std::nullopt);
  EXPECT_FALSE(EvaluateCondition(Record(), StatusWith(d), kNow).abnormal);
  d.state = api::DeviceState::kReattaching;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(d), kNow), "waiting for a reattach");
  d.state = api::DeviceState::kMapped;
  d.last_error = "connect: timed out";
  d.last_error_unix = kNow - 30;
  ExpectAbnormal(EvaluateCondition(Record(), StatusWith(d), kNow), "last error 30 s ago: connect: timed out");
}

// The reply as the daemon's codec writes it, read through the plugin's parser.
TEST(VolumeConditionTest, StatusReplyHealthIsReadWhenPresent) {
  auto with = ParseStatusReply(
      R"({"ok":true,"pid":9,"devices":[{"device":"/dev/nbd3","spec":"kube/img-1","state":"reattaching",)"
      R"("reattach_attempts":2,"health":{"state":"reattaching","last_error":"x","last_error_time":123,)"
      R"("seconds_since_last_io":40,"inflight":5,"recent_errors":6,"stalled":true}}]})");
  ASSERT_TRUE(with) << with.error().message;
  ASSERT_EQ(with->devices.size(), 1u);
  const MappedDevice& d = with->devices[0];
  EXPECT_EQ(d.state, api::DeviceState::kReattaching);
  EXPECT_EQ(d.reattach_attempts, 2u);
  ASSERT_TRUE(d.health.has_value());
  EXPECT_EQ(d.health->state, api::DeviceState::kReattaching);
  EXPECT_EQ(d.health->last_error, "x");
  EXPECT_EQ(d.health->last_error_time, 123u);
  EXPECT_EQ(d.health->seconds_since_last_io, 40);
  EXPECT_EQ(d.health->inflight, 5u);
  EXPECT_EQ(d.health->recent_errors, 6u);
  EXPECT_TRUE(d.health->stalled);

  auto without = ParseStatusReply(R"({"ok":true,"pid":9,"devices":[{"device":"/dev/nbd3","spec":"kube/img-1"}]})");
  ASSERT_TRUE(without) << without.error().message;
  ASSERT_EQ(without->devices.size(), 1u);
  EXPECT_FALSE(without->devices[0].health.has_value());
  EXPECT_EQ(without->devices[0].state, api::DeviceState::kMapped);
  EXPECT_TRUE(without->devices[0].kernel_connected);
}

// NodeGetVolumeStats' logic with the fake daemon client: usage and condition.
class VolumeStatsConditionTest : public testing::NodeFixture {
 protected:
  void SetUp() override {
    SetUpNode("volume-condition");
    StageRequest r;
    r.volume_id = "vol-1";
    r.staging_path = (root_ / "staging").string();
    r.capability.mode = VolumeMode::kBlock;
    r.capability.access_mode = 1;
    r.context = {{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "img-1"}};
    r.secrets = {{"userID", "kube"}, {"userKey", "AQDUMMYKEYDUMMYKEYDUMMYKEY0123456789=="}};
    auto staged = Stager(ctx_).Stage(r);
    ASSERT_TRUE(staged) << staged.error().message;
    devices_.sizes["/dev/nbd0"] = 1ull << 30;
  }
};

TEST_F(VolumeStatsConditionTest, StatsCarryTheConditionTheDaemonReports) {
  VolumeStats stats(ctx_);
  auto healthy = stats.Get("vol-1", root_.string());
  ASSERT_TRUE(healthy) << healthy.error().message;
  EXPECT_EQ(healthy->bytes_total, int64_t{1} << 30);
  EXPECT_FALSE(healthy->condition.abnormal) << healthy->condition.message;
  EXPECT_EQ(healthy->condition.message.rfind("healthy", 0), 0u);

  {
    std::lock_guard lock(daemon_.mu);
    ASSERT_EQ(daemon_.devices.size(), 1u);
    api::DeviceHealth h;
    h.recent_errors = 3;
    h.last_error = "read: EIO";
    h.last_error_time = static_cast<uint64_t>(::time(nullptr));
    daemon_.devices[0].health = h;
  }
  auto failing = stats.Get("vol-1", root_.string());
  ASSERT_TRUE(failing);
  ExpectAbnormal(failing->condition, "3 requests failed");
  ExpectAbnormal(failing->condition, "read: EIO");

  {
    std::lock_guard lock(daemon_.mu);
    daemon_.devices.clear();  // the daemon lost the device
  }
  auto gone = stats.Get("vol-1", root_.string());
  ASSERT_TRUE(gone);
  ExpectAbnormal(gone->condition, "no longer mapped");

  {
    std::lock_guard lock(daemon_.mu);
    daemon_.unreachable = true;
  }
  auto down = stats.Get("vol-1", root_.string());
  ASSERT_TRUE(down) << "an unreachable daemon makes the volume abnormal, not the call fail";
  ExpectAbnormal(down->condition, "unreachable");
}

}  // namespace
}  // namespace rbdnbd::csi
