// Stage, unstage, publish, unpublish, stats and expand against in-memory
// host helpers (fakes.h): the node logic without root or a kernel device.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "csi/csi_error.h"
#include "csi/expander.h"
#include "csi/publisher.h"
#include "csi/stager.h"
#include "csi/volume_stats.h"
#include "fakes.h"
#include "node_fixture.h"

namespace rbdnbd::csi {
namespace {

namespace fs = std::filesystem;
using testing::FakeBlockDevices;
using testing::FakeDaemonClient;
using testing::FakeFsTools;
using testing::FakeMounter;

constexpr const char* kStagerKey = "AQDUMMYKEYDUMMYKEYDUMMYKEY0123456789==";
constexpr const char* kPassphrase = "luks passphrase never on disk";

class NodeOpsTest : public testing::NodeFixture {
 protected:
  void SetUp() override {
    SetUpNode("node-ops");
    ctx_.resize_wait = std::chrono::milliseconds(2000);
  }

  StageRequest Stage(VolumeMode mode = VolumeMode::kMount, int access_mode = 1) {
    StageRequest r;
    r.volume_id = "vol-1";
    r.staging_path = (root_ / "staging" / "globalmount").string();
    r.capability.mode = mode;
    r.capability.access_mode = access_mode;
    r.context = {{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", "img-1"}};
    r.secrets = {{"userID", "kube"}, {"userKey", kStagerKey}};
    return r;
  }

  StageRequest EncryptedStage(VolumeMode mode) {
    StageRequest r = Stage(mode);
    r.context["encryption"] = "luks2";
    r.secrets["encryptionPassphrase"] = kPassphrase;
    return r;
  }

  PublishRequest Publish(const StageRequest& staged, bool readonly = false) {
    PublishRequest p;
    p.volume_id = staged.volume_id;
    p.staging_path = staged.staging_path;
    p.target_path = (root_ / "pods" / "u1" / "mount").string();
    p.capability = staged.capability;
    p.readonly = readonly;
    return p;
  }

  std::optional<VolumeRecord> Record(const std::string& id = "vol-1") {
    auto r = store_->Load(id);
    EXPECT_TRUE(r);
    return r ? *r : std::nullopt;
  }

  std::string AllStateText() {
    std::string all;
    for (const auto& e : fs::directory_iterator(store_->dir())) {
      std::ifstream in(e.path());
      std::stringstream ss;
      ss << in.rdbuf();
      all += ss.str();
    }
    return all;
  }
};

TEST_F(NodeOpsTest, StageBlankMountVolumeFormatsMountsAndRecords) {
  Stager stager(ctx_);
  StageRequest req = Stage();
  req.capability.mount_flags = {"noatime"};
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_EQ(daemon_.maps, 1);
  EXPECT_EQ(daemon_.last_key, kStagerKey);
  EXPECT_FALSE(daemon_.last_read_only);
  EXPECT_EQ(fs_.made, std::vector<std::string>{"/dev/nbd0:ext4"});
  EXPECT_TRUE(fs_.checked.empty());  // a fresh filesystem needs no fsck
  EXPECT_TRUE(fs_.grown.empty());    // nor a grow
  auto m = mounter_.MountAt(req.staging_path);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->source, "/dev/nbd0");
  EXPECT_EQ(mounter_.mount_options.back(), std::vector<std::string>{"noatime"});
  auto rec = Record();
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->staged);
  EXPECT_EQ(rec->spec, "kube/img-1");
  EXPECT_EQ(rec->device, "/dev/nbd0");
  EXPECT_EQ(rec->cookie, "cookie-1");
  EXPECT_EQ(rec->fs_type, "ext4");
  EXPECT_EQ(AllStateText().find(kStagerKey), std::string::npos) << "the cephx key reached the state dir";
}

TEST_F(NodeOpsTest, StageTakesFsTypeAndMkfsOptionsFromTheVolumeContext) {
  Stager stager(ctx_);
  StageRequest req = Stage();
  req.context["fsType"] = "xfs";  // a StorageClass's fsType, the capability names none
  req.context["mkfsOptions"] = "-m reflink=0";
  auto r = stager.Stage(req);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(fs_.made.size(), 1u);
  EXPECT_EQ(fs_.made[0], "/dev/nbd0:xfs");
  EXPECT_EQ(fs_.mkfs_options, (std::vector<std::string>{"-m", "reflink=0"}));

  StageRequest other = Stage();
  other.volume_id = "vol-2";
  other.staging_path = (root_ / "staging2" / "globalmount").string();
  other.context["imageName"] = "img-2";
  other.context["fsType"] = "btrfs";
  auto bad = stager.Stage(other);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, kInvalidArgument);
  EXPECT_NE(bad.error().message.find("fsType"), std::string::npos) << bad.error().message;
  other.capability.fs_type = "ext4";  // the capability wins over the context
  auto ok = stager.Stage(other);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(fs_.made.back(), "/dev/nbd1:ext4");
}

TEST_F(NodeOpsTest, StageIsIdempotentAndOtherOptionsAreAlreadyExists) {
  Stager stager(ctx_);
  StageRequest req = Stage();
  ASSERT_TRUE(stager.Stage(req));
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_EQ(daemon_.maps, 1);
  EXPECT_EQ(mounter_.mounts, 1);
  EXPECT_EQ(fs_.made.size(), 1u);

  StageRequest ro = req;
  ro.capability.access_mode = kMultiNodeReaderOnly;
  auto r = stager.Stage(ro);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kAlreadyExists);
  StageRequest flags = req;
  flags.capability.mount_flags = {"discard"};
  EXPECT_EQ(stager.Stage(flags).error().code, kAlreadyExists);
}

TEST_F(NodeOpsTest, StageAgainAfterTheMountWentAwayRemounts) {
  Stager stager(ctx_);
  StageRequest req = Stage();
  ASSERT_TRUE(stager.Stage(req));
  mounter_.table.clear();  // e.g. the node rebooted; the daemon reattached the device
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_EQ(daemon_.maps, 1);  // the mapped device was reused
  EXPECT_EQ(mounter_.mounts, 2);
  EXPECT_EQ(fs_.made.size(), 1u);  // never formatted twice
  EXPECT_EQ(fs_.checked.size(), 1u);
}

TEST_F(NodeOpsTest, RecordIsWrittenBeforeMapping) {
  Stager stager(ctx_);
  bool recorded_before_map = false;
  daemon_.on_map = [&] {
    auto r = store_->Load("vol-1");
    recorded_before_map = r && r->has_value() && !(*r)->staged && (*r)->spec == "kube/img-1";
  };
  ASSERT_TRUE(stager.Stage(Stage()));
  EXPECT_TRUE(recorded_before_map);
}

TEST_F(NodeOpsTest, ExistingFilesystemIsCheckedMountedAndGrown) {
  fs_.probes["/dev/nbd0"] = DeviceProbe{false, "xfs", ""};
  Stager stager(ctx_);
  StageRequest req = Stage();
  req.capability.fs_type = "xfs";
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_TRUE(fs_.made.empty());
  EXPECT_EQ(fs_.checked, std::vector<std::string>{"/dev/nbd0"});
  ASSERT_EQ(fs_.grown.size(), 1u);
  EXPECT_EQ(fs_.grown[0], "/dev/nbd0:" + req.staging_path + ":xfs");
  EXPECT_EQ(mounter_.mount_options.back(), std::vector<std::string>{"nouuid"});
}

TEST_F(NodeOpsTest, PartitionTableIsRefusedAndRolledBack) {
  fs_.probes["/dev/nbd0"] = DeviceProbe{false, "", "gpt"};
  Stager stager(ctx_);
  auto r = stager.Stage(Stage());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_NE(r.error().message.find("partition table"), std::string::npos);
  EXPECT_TRUE(fs_.made.empty());
  EXPECT_TRUE(daemon_.devices.empty());  // unmapped again
  EXPECT_FALSE(Record().has_value());
}

TEST_F(NodeOpsTest, BlankReadOnlyVolumeIsFailedPrecondition) {
  Stager stager(ctx_);
  auto r = stager.Stage(Stage(VolumeMode::kMount, kSingleNodeReaderOnly));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_TRUE(daemon_.last_read_only);
  EXPECT_TRUE(fs_.made.empty());
  EXPECT_TRUE(daemon_.devices.empty());
}

TEST_F(NodeOpsTest, ReadOnlyStageMapsAndMountsReadOnlyWithoutFsck) {
  fs_.probes["/dev/nbd0"] = DeviceProbe{false, "ext4", ""};
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage(VolumeMode::kMount, kMultiNodeReaderOnly)));
  EXPECT_TRUE(daemon_.last_read_only);
  EXPECT_TRUE(fs_.checked.empty());
  EXPECT_TRUE(fs_.grown.empty());
  EXPECT_EQ(mounter_.mount_options.back(), (std::vector<std::string>{"ro", "noload"}));
}

TEST_F(NodeOpsTest, MkfsFailureRollsEverythingBack) {
  fs_.fail_mkfs = EIO;
  Stager stager(ctx_);
  auto r = stager.Stage(Stage());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_EQ(daemon_.unmaps, 1);
  EXPECT_TRUE(mounter_.table.empty());
  EXPECT_FALSE(Record().has_value());
}

TEST_F(NodeOpsTest, MountFailureAfterFsckRollsBack) {
  fs_.probes["/dev/nbd0"] = DeviceProbe{false, "ext4", ""};
  mounter_.fail_mount = EINVAL;
  Stager stager(ctx_);
  ASSERT_FALSE(stager.Stage(Stage()));
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_FALSE(Record().has_value());
}

TEST_F(NodeOpsTest, FailedRetryOfACrashedStageUnmapsWhatTheCrashLeft) {
  // A crash after the map, before the record got the device: record (staged=false) + mapping.
  VolumeRecord crashed;
  crashed.volume_id = "vol-1";
  crashed.spec = "kube/img-1";
  crashed.staging_path = Stage().staging_path;
  ASSERT_TRUE(store_->Save(crashed));
  daemon_.devices.push_back({"/dev/nbd5", "kube/img-1", "c5", 1 << 30, false});
  fs_.fail_mkfs = EIO;
  Stager stager(ctx_);
  ASSERT_FALSE(stager.Stage(Stage()));
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_FALSE(Record().has_value());
}

TEST_F(NodeOpsTest, FailedRestageOfAStagedVolumeKeepsItsDeviceAndRecord) {
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage()));
  mounter_.table.clear();  // the mount went away
  mounter_.fail_mount = EIO;
  ASSERT_FALSE(stager.Stage(Stage()));
  ASSERT_EQ(daemon_.devices.size(), 1u);  // still mapped: unstage will unmap it
  auto rec = Record();
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->staged);
  EXPECT_EQ(rec->device, "/dev/nbd0");
  mounter_.fail_mount = 0;
  ASSERT_TRUE(stager.Unstage("vol-1", rec->staging_path));
  EXPECT_TRUE(daemon_.devices.empty());
}

TEST_F(NodeOpsTest, DaemonErrorsKeepTheirMeaning) {
  Stager stager(ctx_);
  daemon_.fail_map = ENOENT;  // the image does not exist
  auto r = stager.Stage(Stage());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  EXPECT_FALSE(Record().has_value());
  daemon_.fail_map = 0;
  daemon_.unreachable = true;
  r = stager.Stage(Stage());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kUnavailable);
}

TEST_F(NodeOpsTest, WrongKeyOrUnknownUserIsPermissionDeniedNamingTheCephxSecret) {
  Stager stager(ctx_);
  for (int e : {EACCES, EPERM}) {  // what the daemon answers when cephx refuses the user
    daemon_.fail_map = e;
    auto r = stager.Stage(Stage());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, kPermissionDenied) << "errno " << e;
    EXPECT_NE(r.error().code, kFailedPrecondition);
    EXPECT_NE(r.error().message.find("userKey"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find(kStagerKey), std::string::npos) << "the key itself is never in a message";
    EXPECT_FALSE(Record().has_value());  // rolled back
    EXPECT_TRUE(daemon_.devices.empty());
    EXPECT_TRUE(mounter_.table.empty());
  }
}

TEST_F(NodeOpsTest, WrongPassphraseIsUnauthenticatedNamingThePassphraseSecret) {
  Stager stager(ctx_);
  StageRequest req = EncryptedStage(VolumeMode::kMount);
  daemon_.fail_map = EKEYREJECTED;  // rbd_backend.cc's answer to a passphrase LUKS refuses
  auto r = stager.Stage(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kUnauthenticated);
  EXPECT_NE(r.error().message.find("'encryptionPassphrase'"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(kPassphrase), std::string::npos) << "the passphrase is never in a message";
  EXPECT_FALSE(Record().has_value());
  EXPECT_TRUE(fs_.made.empty()) << "nothing formatted";
  EXPECT_TRUE(mounter_.table.empty());
}

TEST_F(NodeOpsTest, UnsupportedFsTypeAndBadContextAreInvalidArgument) {
  Stager stager(ctx_);
  StageRequest req = Stage();
  req.capability.fs_type = "btrfs";
  EXPECT_EQ(stager.Stage(req).error().code, kInvalidArgument);
  req = Stage();
  req.context["connections"] = "abc";
  EXPECT_EQ(stager.Stage(req).error().code, kInvalidArgument);
  req = Stage();
  req.secrets.erase("userKey");
  EXPECT_EQ(stager.Stage(req).error().code, kInvalidArgument);
  EXPECT_EQ(daemon_.maps, 0);
}

TEST_F(NodeOpsTest, AlreadyMappedSpecIsReused) {
  daemon_.devices.push_back({"/dev/nbd7", "kube/img-1", "c7", 1 << 20, false});
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage(VolumeMode::kBlock)));
  EXPECT_EQ(daemon_.maps, 0);
  EXPECT_EQ(Record()->device, "/dev/nbd7");
  EXPECT_EQ(Record()->cookie, "c7");
}

TEST_F(NodeOpsTest, BusyVolumeIsAborted) {
  Stager stager(ctx_);
  auto held = locks_.TryLock("vol-1");
  ASSERT_TRUE(held);
  EXPECT_EQ(stager.Stage(Stage()).error().code, kAborted);
  EXPECT_EQ(stager.Unstage("vol-1", "/x").error().code, kAborted);
  Publisher publisher(ctx_);
  EXPECT_EQ(publisher.Unpublish("vol-1", "/x").error().code, kAborted);
}

TEST_F(NodeOpsTest, UnstageAfterRestartUnmountsUnmapsAndForgets) {
  StageRequest req = Stage();
  {
    Stager first(ctx_);
    ASSERT_TRUE(first.Stage(req));
  }
  Stager restarted(ctx_);  // a new plugin process: only the state dir survives
  ASSERT_TRUE(restarted.Unstage("vol-1", req.staging_path));
  EXPECT_TRUE(mounter_.table.empty());
  EXPECT_TRUE(daemon_.devices.empty());
  EXPECT_FALSE(Record().has_value());
  EXPECT_TRUE(fs::exists(req.staging_path));  // kubelet's directory stays
  ASSERT_TRUE(restarted.Unstage("vol-1", req.staging_path));  // already gone: OK
}

TEST_F(NodeOpsTest, UnstageToleratesAnAlreadyUnmappedDeviceButNotABusyOne) {
  Stager stager(ctx_);
  StageRequest req = Stage(VolumeMode::kBlock);
  ASSERT_TRUE(stager.Stage(req));
  daemon_.fail_unmap = EBUSY;
  auto busy = stager.Unstage("vol-1", req.staging_path);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, kFailedPrecondition);  // the daemon's EBUSY
  EXPECT_TRUE(Record().has_value());  // kept, so a retry can finish
  daemon_.fail_unmap = 0;
  daemon_.devices.clear();  // unmapped behind our back
  ASSERT_TRUE(stager.Unstage("vol-1", req.staging_path));
  EXPECT_FALSE(Record().has_value());
}

TEST_F(NodeOpsTest, PublishNeedsAFinishedStage) {
  Publisher publisher(ctx_);
  StageRequest req = Stage();
  auto r = publisher.Publish(Publish(req));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);

  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(req));
  PublishRequest other = Publish(req);
  other.staging_path = (root_ / "elsewhere").string();
  EXPECT_EQ(publisher.Publish(other).error().code, kFailedPrecondition);
  PublishRequest block = Publish(req);
  block.capability.mode = VolumeMode::kBlock;
  EXPECT_EQ(publisher.Publish(block).error().code, kFailedPrecondition);
}

TEST_F(NodeOpsTest, PublishMountIsIdempotentAndConflictsAreAlreadyExists) {
  Stager stager(ctx_);
  Publisher publisher(ctx_);
  StageRequest req = Stage();
  ASSERT_TRUE(stager.Stage(req));
  PublishRequest pub = Publish(req);
  ASSERT_TRUE(publisher.Publish(pub));
  EXPECT_TRUE(fs::is_directory(pub.target_path));
  auto m = mounter_.MountAt(pub.target_path);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->source, "/dev/nbd0");
  EXPECT_FALSE((*m)->read_only());
  ASSERT_TRUE(publisher.Publish(pub));
  EXPECT_EQ(mounter_.binds, 1);
  PublishRequest ro = pub;
  ro.readonly = true;
  EXPECT_EQ(publisher.Publish(ro).error().code, kAlreadyExists);
  PublishRequest block = pub;
  block.capability.mode = VolumeMode::kBlock;
  EXPECT_EQ(publisher.Publish(block).error().code, kAlreadyExists);
  PublishRequest reader = pub;
  reader.capability.access_mode = kSingleNodeReaderOnly;
  EXPECT_EQ(publisher.Publish(reader).error().code, kAlreadyExists);
  ASSERT_EQ(Record()->published.size(), 1u);
  EXPECT_EQ(Record()->published[0].target_path, pub.target_path);

  ASSERT_TRUE(publisher.Unpublish("vol-1", pub.target_path));
  EXPECT_FALSE(fs::exists(pub.target_path));
  EXPECT_TRUE(Record()->published.empty());
  ASSERT_TRUE(publisher.Unpublish("vol-1", pub.target_path));  // already gone
  ASSERT_TRUE(publisher.Unpublish("unknown-volume", (root_ / "never").string()));
}

TEST_F(NodeOpsTest, ReaderOnlyAccessModePublishesReadOnly) {
  fs_.probes["/dev/nbd0"] = DeviceProbe{false, "ext4", ""};
  Stager stager(ctx_);
  Publisher publisher(ctx_);
  StageRequest req = Stage(VolumeMode::kMount, kSingleNodeReaderOnly);
  ASSERT_TRUE(stager.Stage(req));
  PublishRequest pub = Publish(req);
  ASSERT_TRUE(publisher.Publish(pub));
  auto m = mounter_.MountAt(pub.target_path);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_TRUE((*m)->read_only());
  EXPECT_TRUE(Record()->published.at(0).read_only);
}

TEST_F(NodeOpsTest, PublishBlockBindsTheDeviceOnAFile) {
  Stager stager(ctx_);
  Publisher publisher(ctx_);
  StageRequest req = Stage(VolumeMode::kBlock);
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_EQ(mounter_.mounts, 0);  // block volumes are only mapped
  PublishRequest pub = Publish(req, /*readonly=*/true);
  pub.target_path = (root_ / "pods" / "u2" / "volumeDevices" / "pv2").string();
  ASSERT_TRUE(publisher.Publish(pub));
  EXPECT_TRUE(fs::is_regular_file(pub.target_path));
  auto m = mounter_.MountAt(pub.target_path);
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->root, "/nbd0");
  EXPECT_TRUE((*m)->read_only());
  ASSERT_TRUE(publisher.Publish(pub));  // idempotent
  EXPECT_EQ(mounter_.binds, 1);
  ASSERT_TRUE(publisher.Unpublish("vol-1", pub.target_path));
  EXPECT_FALSE(fs::exists(pub.target_path));
}

TEST_F(NodeOpsTest, StatsForMountAndBlockVolumes) {
  VolumeStats stats(ctx_);
  auto unknown = stats.Get("vol-1", root_.string());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, kNotFound);

  Stager stager(ctx_);
  StageRequest req = Stage();
  ASSERT_TRUE(stager.Stage(req));
  auto missing = stats.Get("vol-1", (root_ / "no-such-path").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, kNotFound);
  auto s = stats.Get("vol-1", root_.string());  // statvfs of whatever backs the temp dir
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_GT(s->bytes_total, 0);
  EXPECT_LE(s->bytes_used + s->bytes_available, s->bytes_total);
  EXPECT_TRUE(s->has_inodes);

  StageRequest blk = Stage(VolumeMode::kBlock);
  blk.volume_id = "vol-2";
  blk.context["imageName"] = "img-2";
  ASSERT_TRUE(stager.Stage(blk));
  devices_.sizes["/dev/nbd1"] = 5ull << 30;
  auto b = stats.Get("vol-2", root_.string());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->bytes_total, static_cast<int64_t>(5ull << 30));
  EXPECT_FALSE(b->has_inodes);
}

TEST_F(NodeOpsTest, ExpandWaitsForTheKernelSizeThenGrowsTheFilesystem) {
  Expander expander(ctx_);
  EXPECT_EQ(expander.Expand("vol-1", root_.string(), 0).error().code, kNotFound);
  Stager stager(ctx_);
  StageRequest req = Stage();
  ASSERT_TRUE(stager.Stage(req));
  EXPECT_EQ(expander.Expand("vol-1", (root_ / "gone").string(), 0).error().code, kNotFound);

  devices_.sizes["/dev/nbd0"] = 1ull << 30;
  devices_.on_size = [](FakeBlockDevices* d) {
    if (d->calls == 3) d->sizes["/dev/nbd0"] = 2ull << 30;  // RECONFIGURE arrives
  };
  auto size = expander.Expand("vol-1", root_.string(), 2ull << 30);
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, 2ull << 30);
  EXPECT_GE(devices_.calls, 3);
  ASSERT_EQ(fs_.grown.size(), 1u);
  EXPECT_EQ(fs_.grown[0], "/dev/nbd0:" + req.staging_path + ":ext4");
}

TEST_F(NodeOpsTest, ExpandAnswersOutOfRangeWhenTheImageIsSmallerThanAsked) {
  ctx_.resize_wait = std::chrono::milliseconds(30000);
  ctx_.image_grace = std::chrono::milliseconds(200);
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage(VolumeMode::kBlock)));
  devices_.sizes["/dev/nbd0"] = 1ull << 30;
  {
    std::lock_guard lock(daemon_.mu);
    ASSERT_EQ(daemon_.devices.size(), 1u);
    daemon_.devices[0].image_size = 1ull << 30;  // the image was never grown
  }
  Expander expander(ctx_);
  auto t0 = std::chrono::steady_clock::now();
  auto r = expander.Expand("vol-1", root_.string(), 4ull << 30);
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CsiCode(grpc::StatusCode::OUT_OF_RANGE)) << r.error().message;
  EXPECT_NE(r.error().message.find("1073741824 bytes"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("4294967296"), std::string::npos) << r.error().message;
  EXPECT_LT(waited, std::chrono::seconds(10)) << "answered only after the whole resize wait";

  // The image grows meanwhile (ControllerExpandVolume): the wait goes on to the kernel's size.
  devices_.on_size = [this](FakeBlockDevices* d) {
    if (d->calls == 1) {
      std::lock_guard lock(daemon_.mu);
      daemon_.devices[0].image_size = 4ull << 30;
    }
    if (d->calls == 5) d->sizes["/dev/nbd0"] = 4ull << 30;
  };
  devices_.calls = 0;
  auto ok = expander.Expand("vol-1", root_.string(), 4ull << 30);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, 4ull << 30);
}

TEST_F(NodeOpsTest, ExpandGivesUpWhenTheDeviceNeverGrows) {
  ctx_.resize_wait = std::chrono::milliseconds(300);
  Stager stager(ctx_);
  ASSERT_TRUE(stager.Stage(Stage(VolumeMode::kBlock)));
  devices_.sizes["/dev/nbd0"] = 1ull << 30;
  Expander expander(ctx_);
  auto r = expander.Expand("vol-1", root_.string(), 4ull << 30);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  auto ok = expander.Expand("vol-1", root_.string(), 0);  // block: nothing to grow
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 1ull << 30);
  EXPECT_TRUE(fs_.grown.empty());
}

TEST_F(NodeOpsTest, EncryptedStageSendsThePassphraseOnlyToTheDaemon) {
  Stager stager(ctx_);
  StageRequest req = EncryptedStage(VolumeMode::kBlock);
  ASSERT_TRUE(stager.Stage(req));
  std::string state = AllStateText();
  EXPECT_EQ(state.find(kPassphrase), std::string::npos);
  EXPECT_EQ(state.find(kStagerKey), std::string::npos);
}

}  // namespace
}  // namespace rbdnbd::csi
