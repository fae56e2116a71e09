// deviceType: parsing, the nbd|ublk|auto choice against a fake ublk probe, the
// expand check, and the kernel probe's ring run against files that are not a
// ublk control device (no ublk driver needed, no root).
#include "csi/device_type.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "csi/csi_error.h"
#include "csi/daemon_client.h"
#include "csi/ublk_probe.h"
#include "csi/volume_params.h"
#include "fakes.h"

namespace rbdnbd::csi {
namespace {

using testing::FakeUblkProbe;

constexpr uint64_t kUserRecovery = 1ULL << 3;

void ExpectError(const Result<DeviceChoice>& r, int code, const std::string& mention) {
  ASSERT_FALSE(r) << "chose " << DeviceTypeName(r->type);
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(mention), std::string::npos) << r.error().message;
}

TEST(DeviceTypeTest, ParsesNbdUblkAutoAndNothingElse) {
  EXPECT_EQ(*ParseDeviceType(""), DeviceType::kNbd);
  EXPECT_EQ(*ParseDeviceType("nbd"), DeviceType::kNbd);
  EXPECT_EQ(*ParseDeviceType("ublk"), DeviceType::kUblk);
  EXPECT_EQ(*ParseDeviceType("auto"), DeviceType::kAuto);
  for (const char* bad : {"NBD", "krbd", "ublk ", "ubbd", "nbd,ublk"}) {
    auto r = ParseDeviceType(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, kInvalidArgument);
    EXPECT_NE(r.error().message.find("'deviceType' must be nbd, ublk or auto"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos) << r.error().message;
  }
  for (DeviceType t : {DeviceType::kNbd, DeviceType::kUblk, DeviceType::kAuto}) {
    EXPECT_EQ(*ParseDeviceType(DeviceTypeName(t)), t);
  }
}

TEST(DeviceTypeTest, TheDevicePathTellsTheType) {
  EXPECT_EQ(DeviceTypeOfPath("/dev/ublkb0"), DeviceType::kUblk);
  EXPECT_EQ(DeviceTypeOfPath("/dev/ublkb12"), DeviceType::kUblk);
  EXPECT_EQ(DeviceTypeOfPath("/dev/nbd3"), DeviceType::kNbd);
  EXPECT_EQ(DeviceTypeOfPath("/dev/ublkc0"), DeviceType::kNbd);  // the char device is not a disk
  EXPECT_EQ(DeviceTypeOfPath(""), DeviceType::kNbd);
}

TEST(DeviceTypeTest, VolumeContextDeviceTypeIsParsedWithTheOtherKeys) {
  ClusterConfig clusters{{"dev", {"127.0.0.1:14200"}, ""}};
  StringMap ctx{{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "img"}};
  StringMap secrets{{"userID", "kube"}, {"userKey", "AQBKEY=="}};
  EXPECT_EQ(ParseVolumeParams("v", ctx, secrets, clusters)->device_type, DeviceType::kNbd);  // absent
  for (auto [text, type] : {std::pair{"nbd", DeviceType::kNbd}, std::pair{"ublk", DeviceType::kUblk},
                            std::pair{"auto", DeviceType::kAuto}, std::pair{"", DeviceType::kNbd}}) {
    ctx["deviceType"] = text;
    auto p = ParseVolumeParams("v", ctx, secrets, clusters);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->device_type, type) << text;
  }
  ctx["deviceType"] = "rbd";
  auto bad = ParseVolumeParams("v", ctx, secrets, clusters);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, kInvalidArgument);
  EXPECT_NE(bad.error().message.find("'deviceType' must be nbd, ublk or auto, not 'rbd'"), std::string::npos)
      << bad.error().message;
}

TEST(DeviceTypeTest, TheMapRequestCarriesTheChosenType) {
  VolumeParams p;
  p.spec = "kube/img";
  EXPECT_EQ(BuildMapRequest(p, false).device_type, "nbd");
  p.device_type = DeviceType::kUblk;
  EXPECT_EQ(BuildMapRequest(p, true).device_type, "ublk");
}

TEST(DeviceTypeTest, UblkShapeKeysAreCheckedAndReachOnlyAUblkMap) {
  ClusterConfig clusters{{"dev", {"127.0.0.1:14200"}, ""}};
  StringMap ctx{{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "img"}, {"deviceType", "ublk"},
                {"ublkQueueDepth", "64"}, {"ublkMaxIoSize", "256K"}};
  StringMap secrets{{"userID", "kube"}, {"userKey", "AQBKEY=="}};
  auto p = ParseVolumeParams("v", ctx, secrets, clusters);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->ublk_queue_depth, 64u);
  EXPECT_EQ(p->ublk_max_io_bytes, 256u << 10);
  api::MapRequest r = BuildMapRequest(*p, false);
  EXPECT_EQ(r.queue_depth, 64u);
  EXPECT_EQ(r.max_io_bytes, 256u << 10);
  // auto that resolved to nbd sends neither (the daemon would refuse them for nbd)
  p->device_type = DeviceType::kNbd;
  r = BuildMapRequest(*p, false);
  EXPECT_EQ(r.queue_depth, 0u);
  EXPECT_EQ(r.max_io_bytes, 0u);
  ctx["deviceType"] = "auto";
  EXPECT_TRUE(ParseVolumeParams("v", ctx, secrets, clusters));

  auto refused = [&](const StringMap& c, const std::string& needle) {
    auto bad = ParseVolumeParams("v", c, secrets, clusters);
    ASSERT_FALSE(bad) << needle;
    EXPECT_EQ(bad.error().code, kInvalidArgument);
    EXPECT_NE(bad.error().message.find(needle), std::string::npos) << bad.error().message;
  };
  StringMap c = ctx;
  c["deviceType"] = "nbd";
  refused(c, "'ublkQueueDepth' applies to deviceType ublk or auto, not nbd");
  c.erase("deviceType");  // nbd by default
  c.erase("ublkQueueDepth");
  refused(c, "'ublkMaxIoSize' applies to deviceType ublk or auto, not nbd");
  for (const char* depth : {"0", "4097", "x"}) {
    c = ctx;
    c["ublkQueueDepth"] = depth;
    refused(c, "'ublkQueueDepth' must be a whole number in 1..4096");
  }
  for (const char* size : {"6K", "64M", "0", "1.5M", "big"}) {
    c = ctx;
    c["ublkMaxIoSize"] = size;
    refused(c, "'ublkMaxIoSize' must be a multiple of 4K from 4K to 32M");
  }
}

TEST(DeviceTypeTest, TheRealClientRefusesAnUnresolvedAuto) {
  VolumeParams p;
  p.spec = "kube/img";
  p.device_type = DeviceType::kAuto;
  // Refused before any connection: the socket does not exist.
  auto r = MakeDaemonClient("/nonexistent/control.sock")->Map(p, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL) << r.error().message;
  EXPECT_NE(r.error().message.find("auto"), std::string::npos) << r.error().message;
}

TEST(DeviceTypeTest, NbdNeverAsksTheKernel) {
  FakeUblkProbe probe;
  auto r = ChooseDeviceType(DeviceType::kNbd, &probe);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, DeviceType::kNbd);
  EXPECT_EQ(probe.probes, 0);
}

TEST(DeviceTypeTest, UblkWithoutTheDriverIsAFailedPreconditionThatSaysWhatToDo) {
  FakeUblkProbe probe;
  ExpectError(ChooseDeviceType(DeviceType::kUblk, &probe), kFailedPrecondition,
              "the ublk driver is not loaded on this node: modprobe ublk_drv, or use deviceType nbd|auto");
  ExpectError(ChooseDeviceType(DeviceType::kUblk, nullptr), kFailedPrecondition, "modprobe ublk_drv");
}

TEST(DeviceTypeTest, UblkIsMappedEvenWithoutOnlineResizeButSaysSo) {
  FakeUblkProbe probe;
  probe.support = FakeUblkProbe::Features(kUserRecovery);
  auto r = ChooseDeviceType(DeviceType::kUblk, &probe);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, DeviceType::kUblk);
  EXPECT_TRUE(r->warn);
  EXPECT_NE(r->reason.find("NodeExpandVolume will fail"), std::string::npos) << r->reason;
  EXPECT_NE(r->reason.find("UBLK_F_UPDATE_SIZE"), std::string::npos) << r->reason;
  probe.support = FakeUblkProbe::Features(kUblkFeatureUpdateSize);
  EXPECT_FALSE(ChooseDeviceType(DeviceType::kUblk, &probe)->warn);
}

TEST(DeviceTypeTest, AutoPicksUblkOnlyWithTheDriverAndOnlineResize) {
  FakeUblkProbe probe;
  auto none = ChooseDeviceType(DeviceType::kAuto, &probe);  // no driver
  ASSERT_TRUE(none);
  EXPECT_EQ(none->type, DeviceType::kNbd);
  EXPECT_NE(none->reason.find("no ublk driver"), std::string::npos) << none->reason;

  probe.support = FakeUblkProbe::Features(kUserRecovery);  // a 6.12 kernel: no UPDATE_SIZE
  auto old = ChooseDeviceType(DeviceType::kAuto, &probe);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->type, DeviceType::kNbd);
  EXPECT_NE(old->reason.find("lacks UBLK_F_UPDATE_SIZE"), std::string::npos) << old->reason;

  probe.support = UblkSupport{true, false, 0, "UBLK_U_CMD_GET_FEATURES: Invalid argument"};  // before 6.5
  auto unknown = ChooseDeviceType(DeviceType::kAuto, &probe);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->type, DeviceType::kNbd);
  EXPECT_NE(unknown->reason.find("features are unknown"), std::string::npos) << unknown->reason;

  probe.support = FakeUblkProbe::Features(kUserRecovery | kUblkFeatureUpdateSize);
  auto now = ChooseDeviceType(DeviceType::kAuto, &probe);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->type, DeviceType::kUblk);
  EXPECT_EQ(probe.probes, 4);

  EXPECT_EQ(ChooseDeviceType(DeviceType::kAuto, nullptr)->type, DeviceType::kNbd);
}

TEST(DeviceTypeTest, GrowingAUblkDeviceNeedsUpdateSize) {
  FakeUblkProbe probe;
  probe.support = FakeUblkProbe::Features(kUserRecovery);
  auto r = CheckUblkCanGrow("/dev/ublkb2", &probe);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_NE(r.error().message.find("/dev/ublkb2 cannot grow online"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("UBLK_F_UPDATE_SIZE"), std::string::npos) << r.error().message;
  probe.support = FakeUblkProbe::NoDriver();
  EXPECT_EQ(CheckUblkCanGrow("/dev/ublkb2", &probe).error().code, kFailedPrecondition);
  probe.support = FakeUblkProbe::Features(kUblkFeatureUpdateSize);
  EXPECT_TRUE(CheckUblkCanGrow("/dev/ublkb2", &probe));
}

TEST(DeviceTypeTest, DescribeSaysWhatAutoWillDo) {
  EXPECT_NE(DescribeUblkSupport(FakeUblkProbe::NoDriver()).find("auto maps nbd"), std::string::npos);
  std::string yes = DescribeUblkSupport(FakeUblkProbe::Features(kUblkFeatureUpdateSize | kUserRecovery));
  EXPECT_NE(yes.find("features 0x408"), std::string::npos) << yes;
  EXPECT_NE(yes.find("auto maps ublk"), std::string::npos) << yes;
}

// The kernel probe, without a ublk driver: a missing control device is "no
// driver"; a file that is not one runs the whole ring (setup, SQE128, enter)
// and gets the command refused, so the features stay unknown.
TEST(KernelUblkProbeTest, NoControlDeviceMeansNoDriver) {
  UblkSupport s = MakeKernelUblkProbe("/nonexistent/ublk-control")->Probe();
  EXPECT_FALSE(s.driver);
  EXPECT_FALSE(s.update_size());
  EXPECT_NE(s.detail.find("ublk_drv is not loaded"), std::string::npos) << s.detail;
}

TEST(KernelUblkProbeTest, AFileThatIsNotTheControlDeviceAnswersNoFeatures) {
  std::string path = ::testing::TempDir() + "/not-ublk-control-" + std::to_string(::getpid());
  std::ofstream(path) << "x";
  UblkSupport s = MakeKernelUblkProbe(path)->Probe();
  std::filesystem::remove(path);
  EXPECT_TRUE(s.driver);
  EXPECT_FALSE(s.features_known) << "features " << s.features;
  EXPECT_FALSE(s.update_size());
  // io_uring may be disabled here (then the setup is what failed); otherwise
  // the kernel refuses the command on a regular file.
  bool refused = s.detail.find("UBLK_U_CMD_GET_FEATURES") != std::string::npos;
  bool no_uring = s.detail.find("io_uring_setup") != std::string::npos;
  EXPECT_TRUE(refused || no_uring) << s.detail;
  std::printf("probe of a regular file: %s\n", s.detail.c_str());
}

TEST(KernelUblkProbeTest, ThisHostsControlDeviceIfAny) {
  UblkSupport s = MakeKernelUblkProbe()->Probe();
  std::printf("%s\n", DescribeUblkSupport(s).c_str());
  EXPECT_EQ(s.driver, std::filesystem::exists(kUblkControlDevice)) << s.detail;
  EXPECT_TRUE(s.driver || !s.features_known);
}

}  // namespace
}  // namespace rbdnbd::csi
