// Stage, unstage, stats and expand of deviceType ublk and auto volumes against
// the fakes (fakes.h): the fake daemon maps /dev/ublkbN when asked for ublk,
// and FakeUblkProbe plays the node's kernel.
#include <filesystem>

#include <gtest/gtest.h>

#include "csi/csi_error.h"
#include "csi/expander.h"
#include "csi/stager.h"
#include "csi/volume_stats.h"
#include "fakes.h"
#include "node_fixture.h"

namespace rbdnbd::csi {
namespace {

using testing::FakeUblkProbe;

constexpr uint64_t kUserRecovery = 1ULL << 3;

class UblkStageTest : public testing::NodeFixture {
 protected:
  void SetUp() override {
    SetUpNode("ublk-stage");
    ctx_.ublk = &probe_;
    ctx_.resize_wait = std::chrono::milliseconds(2000);
  }

  StageRequest Stage(const std::string& device_type, VolumeMode mode = VolumeMode::kBlock) {
    StageRequest r;
    r.volume_id = "vol-1";
    r.staging_path = (root_ / "staging" / "globalmount").string();
    r.capability.mode = mode;
    r.capability.access_mode = 1;
    r.context = {{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "img-1"}};
    if (!device_type.empty()) r.context["deviceType"] = device_type;
    r.secrets = {{"userID", "kube"}, {"userKey", "AQBUBLKKEY=="}};
    return r;
  }

  std::optional<VolumeRecord> Record() {
    auto r = store_->Load("vol-1");
    EXPECT_TRUE(r);
    return r ? *r : std::nullopt;
  }

  FakeUblkProbe probe_;
};

TEST_F(UblkStageTest, UblkMapsAUblkDeviceAndRemembersIt) {
  probe_.support = FakeUblkProbe::Features(kUserRecovery | kUblkFeatureUpdateSize);
  Stager stager(ctx_);
  auto r = stager.Stage(Stage("ublk", VolumeMode::kMount));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(daemon_.last_device_type, "ublk");
  auto rec = Record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->device, "/dev/ublkb0");
  EXPECT_EQ(rec->device_type, DeviceType::kUblk);
  ASSERT_EQ(fs_.made.size(), 1u);
  EXPECT_EQ(fs_.made[0], "/dev/ublkb0:ext4");
  ASSERT_TRUE(mounter_.table.size() == 1u);
  EXPECT_EQ(mounter_.table[0].source, "/dev/ublkb0");

  ASSERT_TRUE(stager.Stage(Stage("ublk", VolumeMode::kMount)));  // idempotent
  ASSERT_TRUE(stager.Stage(Stage("auto", VolumeMode::kMount)));  // auto takes what is staged
  EXPECT_EQ(daemon_.maps, 1);
  auto other = stager.Stage(Stage("nbd", VolumeMode::kMount));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, kAlreadyExists) << other.error().message;
  EXPECT_NE(other.error().message.find("already staged as ublk at /dev/ublkb0"), std::string::npos)
      << other.error().message;

  ASSERT_TRUE(stager.Unstage("vol-1", Stage("ublk").staging_path));
  EXPECT_EQ(daemon_.unmaps, 1);
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_FALSE(Record());
}

TEST_F(UblkStageTest, UblkWithoutTheDriverFailsAndLeavesNothingBehind) {
  Stager stager(ctx_);
  auto r = stager.Stage(Stage("ublk"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_NE(r.error().message.find("the ublk driver is not loaded on this node: modprobe ublk_drv, or use "
                                   "deviceType nbd|auto"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(daemon_.maps, 0);
  EXPECT_FALSE(Record());
}

TEST_F(UblkStageTest, AutoMapsNbdWhereTheKernelCannotResizeUblk) {
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage("auto")));  // no driver
  EXPECT_EQ(daemon_.last_device_type, "nbd");
  EXPECT_EQ(Record()->device, "/dev/nbd0");
  EXPECT_EQ(Record()->device_type, DeviceType::kNbd);
  ASSERT_TRUE(stager.Unstage("vol-1", Stage("").staging_path));

  probe_.support = FakeUblkProbe::Features(kUserRecovery);  // Debian 12's 6.12
  ASSERT_TRUE(stager.Stage(Stage("auto")));
  EXPECT_EQ(daemon_.last_device_type, "nbd");
  EXPECT_EQ(Record()->device_type, DeviceType::kNbd);
  ASSERT_TRUE(stager.Unstage("vol-1", Stage("").staging_path));

  probe_.support = FakeUblkProbe::Features(kUserRecovery | kUblkFeatureUpdateSize);
  ASSERT_TRUE(stager.Stage(Stage("auto")));
  EXPECT_EQ(daemon_.last_device_type, "ublk");
  EXPECT_EQ(Record()->device_type, DeviceType::kUblk);
  EXPECT_EQ(Record()->device, "/dev/ublkb2");
}

TEST_F(UblkStageTest, NbdIsTheDefaultAndNeverProbes) {
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage("")));
  EXPECT_EQ(daemon_.last_device_type, "nbd");
  EXPECT_EQ(Record()->device_type, DeviceType::kNbd);
  EXPECT_EQ(probe_.probes, 0);
}

TEST_F(UblkStageTest, AnExplicitTypeMustMatchADeviceAlreadyMapped) {
  // An earlier, unfinished stage mapped the image over nbd.
  {
    std::lock_guard lock(daemon_.mu);
    daemon_.devices.push_back(MappedDevice{"/dev/nbd5", "kube/img-1", "cookie-5", 1 << 30, false});
  }
  probe_.support = FakeUblkProbe::Features(kUblkFeatureUpdateSize);
  Stager stager(ctx_);
  auto r = stager.Stage(Stage("ublk"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_NE(r.error().message.find("already mapped as nbd at /dev/nbd5"), std::string::npos) << r.error().message;
  EXPECT_EQ(daemon_.unmaps, 0);  // not this volume's device: left alone
  ASSERT_TRUE(stager.Stage(Stage("auto")));  // auto takes it
  EXPECT_EQ(Record()->device, "/dev/nbd5");
  EXPECT_EQ(Record()->device_type, DeviceType::kNbd);
}

TEST_F(UblkStageTest, ADaemonThatIgnoresDeviceTypeIsCaughtAndUndone) {
  probe_.support = FakeUblkProbe::Features(kUblkFeatureUpdateSize);
  daemon_.ignores_device_type = true;
  Stager stager(ctx_);
  auto r = stager.Stage(Stage("ublk"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition) << r.error().message;
  EXPECT_NE(r.error().message.find("it mapped /dev/nbd0: the daemon does not serve ublk"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(daemon_.unmaps, 1);  // the stray nbd device is undone
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_FALSE(Record());
}

TEST_F(UblkStageTest, StatsAndExpandUseTheUblkDevice) {
  probe_.support = FakeUblkProbe::Features(kUserRecovery | kUblkFeatureUpdateSize);
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage("ublk")));
  devices_.sizes["/dev/ublkb0"] = 1ull << 30;
  VolumeStats stats(ctx_);
  auto s = stats.Get("vol-1", root_.string());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->bytes_total, static_cast<int64_t>(1ull << 30));
  EXPECT_FALSE(s->condition.abnormal) << s->condition.message;

  devices_.on_size = [](testing::FakeBlockDevices* d) {
    if (d->calls == 3) d->sizes["/dev/ublkb0"] = 2ull << 30;  // UPDATE_SIZE arrives
  };
  Expander expander(ctx_);
  auto grown = expander.Expand("vol-1", root_.string(), 2ull << 30);
  ASSERT_TRUE(grown) << grown.error().message;
  EXPECT_EQ(*grown, 2ull << 30);
}

TEST_F(UblkStageTest, ExpandOnAKernelWithoutUpdateSizeFailsAtOnceNamingIt) {
  probe_.support = FakeUblkProbe::Features(kUserRecovery);
  ctx_.resize_wait = std::chrono::milliseconds(30000);
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage("ublk", VolumeMode::kMount)));
  devices_.sizes["/dev/ublkb0"] = 1ull << 30;
  Expander expander(ctx_);
  auto t0 = std::chrono::steady_clock::now();
  auto r = expander.Expand("vol-1", root_.string(), 2ull << 30);
  ASSERT_FALSE(r);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "waited for a resize that cannot come";
  EXPECT_EQ(r.error().code, kFailedPrecondition) << r.error().message;
  EXPECT_NE(r.error().message.find("UBLK_F_UPDATE_SIZE"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("/dev/ublkb0 cannot grow online"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs_.grown.empty());

  // Already big enough (grown while unstaged, say): nothing to ask of the kernel.
  auto ok = expander.Expand("vol-1", root_.string(), 1ull << 30);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, 1ull << 30);
}

}  // namespace
}  // namespace rbdnbd::csi
