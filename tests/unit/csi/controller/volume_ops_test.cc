// ControllerOps' volume RPCs against the in-memory FakeCephStore.
#include <rbd/features.h>

#include <optional>
#include <thread>
#include <vector>

#include "csi/controller/controller_error.h"
#include "csi/controller/journal_record.h"
#include "ops_fixture.h"

namespace rbdnbd::csi::testing {
namespace {

TEST_F(OpsTest, CreateVolumeMakesTheImageWithFeaturesMetadataAndJournal) {
  auto args = Args("pvc-1", 256 * kMiBytes);
  args.parameters["csi.storage.k8s.io/pvc/name"] = "data";
  args.parameters["csi.storage.k8s.io/pvc/namespace"] = "apps";
  args.parameters["csi.storage.k8s.io/pv/name"] = "pvc-1";
  args.parameters["fsType"] = "xfs";
  VolumeInfo v = MustCreate(args);
  EXPECT_EQ(v.capacity_bytes, 256 * kMiBytes);
  auto ref = DecodeVolumeId(v.volume_id);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->pool, "kube");
  EXPECT_EQ(ImageOf(v), ref->ImageName());
  EXPECT_EQ(v.context, (StringMap{{"clusterID", "dev"}, {"pool", "kube"}, {"imageName", ref->ImageName()}, {"fsType", "xfs"}}));
  auto img = store_.GetImage("kube", "", ref->ImageName());
  ASSERT_TRUE(img);
  EXPECT_EQ(img->size, 256 * kMiBytes);
  EXPECT_EQ(img->features, DefaultFeatures());
  EXPECT_EQ(img->metadata, (std::map<std::string, std::string>{{"csi.name", "pvc-1"},
                                                               {"csi.pvc.name", "data"},
                                                               {"csi.pvc.namespace", "apps"},
                                                               {"csi.pv.name", "pvc-1"}}));
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.volumes");
  ASSERT_EQ(journal.size(), 1u);
  auto record = DecodeVolumeJournalRecord(journal.at("name/pvc-1"), "name/pvc-1");
  ASSERT_TRUE(record);
  EXPECT_TRUE(record->ready);
  EXPECT_EQ(record->uuid, ref->uuid);
  EXPECT_EQ(record->size, 256 * kMiBytes);
}

TEST_F(OpsTest, CreateVolumeIsIdempotentByName) {
  VolumeInfo a = MustCreate(Args("pvc-1", 100 * kMiBytes));
  VolumeInfo b = MustCreate(Args("pvc-1", 100 * kMiBytes));
  EXPECT_EQ(a.volume_id, b.volume_id);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  // ...across a restart too: the journal is in Ceph, not in the process.
  Restart();
  VolumeInfo c = MustCreate(Args("pvc-1", 100 * kMiBytes));
  EXPECT_EQ(a.volume_id, c.volume_id);
  EXPECT_EQ(store_.creates(), 1);
}

TEST_F(OpsTest, SameNameOtherSizeOrParametersIsAlreadyExists) {
  MustCreate(Args("pvc-1", 100 * kMiBytes));
  auto r = ops_->CreateVolume(Args("pvc-1", 200 * kMiBytes));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kAlreadyExists);
  auto other = Args("pvc-1", 100 * kMiBytes);
  other.parameters["imageFeatures"] = "layering";
  r = ops_->CreateVolume(other);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kAlreadyExists);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
}

TEST_F(OpsTest, ConcurrentCreatesOfOneNameMakeOneImage) {
  // Every reservation waits a little, so that the threads overlap there.
  store_.OnReserve([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  constexpr int kThreads = 8;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto v = ops_->CreateVolume(Args("pvc-race", 64 * kMiBytes));
      if (v) ids[i] = v->volume_id;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_FALSE(ids[0].empty());
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  EXPECT_EQ(store_.creates(), 1);
}

TEST_F(OpsTest, TwoControllersRacingOnOneNameNeverMakeTwoImages) {
  // Two replicas (two ControllerOps, no shared lock; normally the sidecars'
  // leader election keeps one of them idle): the journal's atomic
  // reservation gives both the same uuid, so there is never a second image.
  // One of them may fail (the CO retries); a retry converges on one volume.
  store_.OnReserve([] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
  ControllerOps other(&store_, options_);
  std::string a, b;
  std::thread t1([&] { if (auto v = ops_->CreateVolume(Args("pvc-2", 64 * kMiBytes))) a = v->volume_id; });
  std::thread t2([&] { if (auto v = other.CreateVolume(Args("pvc-2", 64 * kMiBytes))) b = v->volume_id; });
  t1.join();
  t2.join();
  EXPECT_LE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);
  EXPECT_LE(store_.Images("kube").size(), 1u);
  if (!a.empty() && !b.empty()) {
    EXPECT_EQ(a, b);
  }
  VolumeInfo v = MustCreate(Args("pvc-2", 64 * kMiBytes));
  if (!a.empty()) {
    EXPECT_EQ(v.volume_id, a);
  }
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);
}

// The two interleavings that lost a volume before the journal's guarded
// swaps: another controller takes the name over while this one is in
// CreateVolume, and finishes first. This one must then leave that volume be.
TEST_F(OpsTest, ACreateTakenOverBeforeItsImageLeavesTheOtherControllersVolume) {
  ControllerOps other(&store_, options_);
  std::optional<VolumeInfo> theirs;
  store_.BeforeOnce("Create", [&] {
    auto v = other.CreateVolume(Args("pvc-3", 64 * kMiBytes));
    ASSERT_TRUE(v) << v.error().message;
    theirs = *v;
  });
  auto mine = ops_->CreateVolume(Args("pvc-3", 64 * kMiBytes));
  ASSERT_FALSE(mine);  // its image name is taken (EEXIST): the other create's now
  EXPECT_EQ(mine.error().code, kAborted) << mine.error().message;
  ASSERT_TRUE(theirs);
  EXPECT_TRUE(store_.GetImage("kube", "", ImageOf(*theirs))) << "a rollback removed the other controller's image";
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.volumes");
  ASSERT_EQ(journal.size(), 1u);
  auto record = DecodeVolumeJournalRecord(journal.at("name/pvc-3"), "k");
  ASSERT_TRUE(record);
  EXPECT_TRUE(record->ready);
  EXPECT_EQ(record->uuid, DecodeVolumeId(theirs->volume_id)->uuid);
  // The CO's retry gets the same volume.
  EXPECT_EQ(MustCreate(Args("pvc-3", 64 * kMiBytes)).volume_id, theirs->volume_id);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
}

// An attempt that holds the record finds its image made (EEXIST) by an
// attempt it took over, which is still running and may be in the middle of
// librbd's (non-atomic) create. Undoing now would race that create and leave
// an image nothing refers to (seen in csi_controller_concurrency): the record
// stays "creating", and the retry takes it over and removes that image.
TEST_F(OpsTest, ACreateThatFindsItsImageMadeByAnAttemptItTookOverKeepsTheRecordForTheRetry) {
  store_.BeforeOnce("Create", [&] {
    auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.volumes");
    ASSERT_EQ(journal.size(), 1u);
    auto record = DecodeVolumeJournalRecord(journal.begin()->second, "k");
    ASSERT_TRUE(record);
    auto s = store_.Open(CephTarget{kMonitors, "kube", ""}, CephUser{"client.kube", Secret(kKubeKey)});
    ASSERT_TRUE(s);
    NewImage zombie;
    zombie.name = "csi-vol-" + record->uuid;
    zombie.size_bytes = 64 * kMiBytes;
    ASSERT_TRUE((*s)->Create(zombie));
  });
  auto mine = ops_->CreateVolume(Args("pvc-z", 64 * kMiBytes));
  ASSERT_FALSE(mine);
  EXPECT_EQ(mine.error().code, kAborted) << mine.error().message;
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.volumes");
  ASSERT_EQ(journal.size(), 1u) << "the record went: the image made meanwhile would be reachable from nothing";
  EXPECT_FALSE(DecodeVolumeJournalRecord(journal.at("name/pvc-z"), "k")->ready);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  // The CO's retry takes the record over, removes that image and makes its own.
  VolumeInfo v = MustCreate(Args("pvc-z", 64 * kMiBytes));
  EXPECT_EQ(store_.Images("kube"), std::vector<std::string>{ImageOf(v)});
  EXPECT_TRUE(DecodeVolumeJournalRecord(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").at("name/pvc-z"), "k")->ready);
}

TEST_F(OpsTest, ACreateTakenOverBeforeItsRecordIsReadyAnswersAbortedAndKeepsTheVolume) {
  ControllerOps other(&store_, options_);
  std::optional<VolumeInfo> theirs;
  // This create's image is made; before it swaps its record to "ready", the
  // other controller takes the record over, removes that image and makes it
  // again (the first JournalSwap is this create's, the hook runs before it).
  store_.BeforeOnce("JournalSwap", [&] {
    auto v = other.CreateVolume(Args("pvc-4", 64 * kMiBytes));
    ASSERT_TRUE(v) << v.error().message;
    theirs = *v;
  });
  auto mine = ops_->CreateVolume(Args("pvc-4", 64 * kMiBytes));
  ASSERT_FALSE(mine);
  EXPECT_EQ(mine.error().code, kAborted) << mine.error().message;
  ASSERT_TRUE(theirs);
  EXPECT_TRUE(store_.GetImage("kube", "", ImageOf(*theirs)));
  EXPECT_EQ(MustCreate(Args("pvc-4", 64 * kMiBytes)).volume_id, theirs->volume_id);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);
}

TEST_F(OpsTest, AFailedCreateWhoseNameWentToAnotherUuidRemovesItsOwnImage) {
  // This create fails after its image is made; meanwhile its record was
  // replaced by another volume's (a delete and a new create of the name).
  // Its image can no longer be reached: the rollback removes it, leaves the
  // new record, and answers ABORTED (the retry meets the new record).
  VolumeJournalRecord other;
  other.uuid = "00112233445566778899aabbccddeeff";
  other.size = 64 * kMiBytes;
  other.fingerprint = "other";
  other.ready = true;
  store_.Fail("JournalSwap", EIO);
  store_.BeforeOnce("JournalSwap",
                    [&] { store_.PutJournal("kube", "", "rbd-nbdd-csi.volumes", "name/pvc-5", EncodeRecord(other)); });
  auto mine = ops_->CreateVolume(Args("pvc-5", 64 * kMiBytes));
  store_.Fail("JournalSwap", 0);
  ASSERT_FALSE(mine);
  EXPECT_EQ(mine.error().code, kAborted) << mine.error().message;
  EXPECT_TRUE(store_.Images("kube").empty());
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.volumes");
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal.at("name/pvc-5"), EncodeRecord(other));
}

TEST_F(OpsTest, ARecordWithoutItsImageIsFinished) {
  // A crash between the reservation and the image: the record is there, the
  // image is not. The retry makes the image on the recorded uuid.
  store_.Fail("Create", EIO);
  EXPECT_FALSE(ops_->CreateVolume(Args("pvc-1", 64 * kMiBytes)));
  store_.Fail("Create", 0);
  VolumeJournalRecord r;
  r.uuid = "00112233445566778899aabbccddeeff";
  r.size = 64 * kMiBytes;
  auto params = ParseCreateParams({{"clusterID", "dev"}, {"pool", "kube"}}, {ClusterEntry{"dev", {kMonitors}, ""}});
  ASSERT_TRUE(params);
  r.fingerprint = Fingerprint(*params, "");
  r.context = VolumeContext(*params, "csi-vol-" + r.uuid);
  store_.PutJournal("kube", "", "rbd-nbdd-csi.volumes", "name/pvc-1", EncodeRecord(r));
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  EXPECT_EQ(ImageOf(v), "csi-vol-" + r.uuid);
  EXPECT_TRUE(store_.GetImage("kube", "", "csi-vol-" + r.uuid));
  auto stored = DecodeVolumeJournalRecord(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").at("name/pvc-1"), "k");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->ready);
}

TEST_F(OpsTest, AnInterruptedCreateWhoseImageIsStillWatchedAnswersAborted) {
  // A controller killed mid-create leaves a "creating" record and an image
  // its dead client still watches (until the OSD times the watch out).
  VolumeJournalRecord r;
  r.uuid = "00112233445566778899aabbccddeeff";
  r.size = 64 * kMiBytes;
  auto params = ParseCreateParams({{"clusterID", "dev"}, {"pool", "kube"}}, {ClusterEntry{"dev", {kMonitors}, ""}});
  ASSERT_TRUE(params);
  r.fingerprint = Fingerprint(*params, "");
  r.context = VolumeContext(*params, "csi-vol-" + r.uuid);
  store_.PutJournal("kube", "", "rbd-nbdd-csi.volumes", "name/pvc-1", EncodeRecord(r));
  auto s = store_.Open(CephTarget{kMonitors, "kube", ""}, CephUser{"client.kube", Secret(kKubeKey)});
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->Create(NewImage{"csi-vol-" + r.uuid, 64 * kMiBytes, DefaultFeatures(), "", 0, {}}));
  store_.SetWatchers("kube", "", "csi-vol-" + r.uuid, 1);
  auto v = ops_->CreateVolume(Args("pvc-1", 64 * kMiBytes));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, kAborted);  // "retry", never a final code
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);  // the reservation stays
  store_.SetWatchers("kube", "", "csi-vol-" + r.uuid, 0);  // the watch timed out
  VolumeInfo done = MustCreate(Args("pvc-1", 64 * kMiBytes));
  EXPECT_EQ(ImageOf(done), "csi-vol-" + r.uuid);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
}

TEST_F(OpsTest, AFailureAfterTheReservationLeavesNothing) {
  for (const char* method : {"Create", "JournalSwap", "FormatLuks"}) {
    SCOPED_TRACE(method);
    store_.Fail(method, EIO);
    auto args = Args("pvc-fail", 64 * kMiBytes);
    args.parameters["encrypted"] = "true";
    args.secrets["encryptionPassphrase"] = "s3cret-pass";
    auto r = ops_->CreateVolume(args);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EIO);
    EXPECT_TRUE(store_.Images("kube").empty());
    EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").empty());
    store_.Fail(method, 0);
  }
}

TEST_F(OpsTest, EncryptedVolumesAreFormattedAndSayWhichLuks) {
  auto args = Args("pvc-enc", 64 * kMiBytes);
  args.parameters["encrypted"] = "true";
  args.parameters["encryptionFormat"] = "luks1";
  auto r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("'encryptionPassphrase'"), std::string::npos);
  EXPECT_TRUE(store_.Images("kube").empty());
  args.secrets["encryptionPassphrase"] = "s3cret-pass";
  VolumeInfo v = MustCreate(args);
  EXPECT_EQ(v.context.at("encryption"), "luks1");
  EXPECT_EQ(store_.GetImage("kube", "", ImageOf(v))->luks, "luks1");
}

TEST_F(OpsTest, CapacityRules) {
  VolumeInfo v = MustCreate(Args("pvc-default"));
  EXPECT_EQ(v.capacity_bytes, 1ULL << 30);
  v = MustCreate(Args("pvc-odd", 10 * kMiBytes + 1));
  EXPECT_EQ(v.capacity_bytes, 11 * kMiBytes);
  auto args = Args("pvc-limit", 1000);
  args.limit_bytes = 1000;
  auto r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
  r = ops_->CreateVolume(Args("pvc-huge", int64_t{1} << 51));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
  EXPECT_EQ(store_.Images("kube").size(), 2u);
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 2u);
}

TEST_F(OpsTest, UnknownPoolIsInvalidArgumentNamingIt) {
  auto args = Args("pvc-1");
  args.parameters["pool"] = "nopool";
  auto r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("pool 'nopool' does not exist"), std::string::npos) << r.error().message;
}

TEST_F(OpsTest, CredentialErrorsPassThroughAsCephErrnos) {
  auto args = Args("pvc-1");
  args.secrets["userKey"] = "AQCwrongKEY==";
  auto r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EACCES);
  EXPECT_EQ(r.error().message.find("AQCwrongKEY"), std::string::npos);
  args = Args("pvc-1");
  args.parameters["clusterID"] = "far";  // monitors nobody answers on
  r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  args = Args("pvc-1");
  args.secrets.erase("userID");
  r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("provisioner secret's 'userID'"), std::string::npos);
}

TEST_F(OpsTest, VolumeIdOver128BytesIsInvalidArgumentBeforeAnythingIsMade) {
  auto args = Args("pvc-1");
  args.parameters.erase("clusterID");
  args.parameters["monitors"] = std::string(40, '1') + ":6789," + std::string(40, '2') + ":6789";
  auto r = ops_->CreateVolume(args);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("shorter clusterID"), std::string::npos);
  EXPECT_EQ(store_.opens(), 0);
}

TEST_F(OpsTest, VolumesInANamespace) {
  auto args = Args("pvc-ns", 64 * kMiBytes);
  args.parameters["radosNamespace"] = "team";
  VolumeInfo v = MustCreate(args);
  EXPECT_EQ(v.context.at("radosNamespace"), "team");
  EXPECT_TRUE(store_.GetImage("kube", "team", ImageOf(v)));
  EXPECT_EQ(store_.Journal("kube", "team", "rbd-nbdd-csi.volumes").size(), 1u);
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube", "team").empty());
  EXPECT_TRUE(store_.Journal("kube", "team", "rbd-nbdd-csi.volumes").empty());
}

TEST_F(OpsTest, DeleteVolumeRemovesImageAndJournalAndIsIdempotent) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube").empty());
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").empty());
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteVolume("not-an-id", Secrets()));
  EXPECT_TRUE(ops_->DeleteVolume("rnv1.cdev.nopool..0123456789abcdef0123456789abcdef", Secrets()));
  // And the name is free again: a new create makes a new volume.
  VolumeInfo w = MustCreate(Args("pvc-1", 64 * kMiBytes));
  EXPECT_NE(w.volume_id, v.volume_id);
}

TEST_F(OpsTest, DeleteVolumeOfAnImageAlreadyGoneDropsItsJournalKey) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  // Someone removed the image (or a delete crashed after it): the key goes by uuid.
  auto s = store_.Open(CephTarget{kMonitors, "kube", ""}, CephUser{"client.kube", Secret(kKubeKey)});
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->Remove(ImageOf(v)));
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").empty());
}

TEST_F(OpsTest, DeleteVolumeRemovesATemporarySnapshotACreateLeftInsteadOfTrashingTheImage) {
  // A create attempt killed (or racing another controller) between its clone
  // and the removal of its temporary snapshot leaves csi-tmp-A on the source.
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  auto s = store_.Open(CephTarget{kMonitors, "kube", ""}, CephUser{"client.kube", Secret(kKubeKey)});
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->CreateSnapshot(ImageOf(v), TmpSnapshotName("0123abcd"), QuiesceMode::kSkip));
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube").empty());
  EXPECT_EQ(store_.TrashCount("kube"), 0) << "the volume went to the trash, held there by a leftover snapshot";
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").empty());
}

TEST_F(OpsTest, DeleteVolumeKeepsASnapshotThatIsNotTheDriversOwn) {
  // An admin's snapshot is not the driver's to remove: the image goes to the
  // trash with it (as rbd_trash_move would), and nothing of it is lost.
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  auto s = store_.Open(CephTarget{kMonitors, "kube", ""}, CephUser{"client.kube", Secret(kKubeKey)});
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->CreateSnapshot(ImageOf(v), "backup-1", QuiesceMode::kSkip));
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube").empty());
  EXPECT_EQ(store_.TrashCount("kube"), 1);
}

TEST_F(OpsTest, DeleteOfAMappedVolumeIsFailedPreconditionNamingTheImage) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  store_.SetWatchers("kube", "", ImageOf(v), 1);
  auto r = ops_->DeleteVolume(v.volume_id, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  EXPECT_NE(r.error().message.find("kube/" + ImageOf(v) + " is still mapped"), std::string::npos) << r.error().message;
  EXPECT_EQ(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").size(), 1u);
}

TEST_F(OpsTest, AnIdOfAClusterNoLongerConfiguredIsInvalidArgumentNamingIt) {
  auto r = ops_->DeleteVolume("rnv1.cgone.kube..0123456789abcdef0123456789abcdef", Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("'gone'"), std::string::npos);
}

TEST_F(OpsTest, CheckCreateParameters) {
  EXPECT_TRUE(ops_->CheckCreateParameters({{"clusterID", "dev"}, {"pool", "kube"}}));
  auto r = ops_->CheckCreateParameters({{"clusterID", "dev"}, {"pool", "kube"}, {"color", "blue"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'color'"), std::string::npos);
}

TEST_F(OpsTest, ExpandGrowsRoundsAndRefusesShrink) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  auto r = ops_->ExpandVolume(v.volume_id, 100 * kMiBytes + 1, 0, Secrets());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, 101 * kMiBytes);
  EXPECT_EQ(store_.GetImage("kube", "", ImageOf(v))->size, 101 * kMiBytes);
  r = ops_->ExpandVolume(v.volume_id, 101 * kMiBytes, 0, Secrets());  // the same size again: OK
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 101 * kMiBytes);
  auto listed = ops_->ListVolumes(0, "");  // ListVolumes says the size now
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->entries.size(), 1u);
  EXPECT_EQ(listed->entries[0].capacity_bytes, 101 * kMiBytes);
  EXPECT_EQ(MustCreate(Args("pvc-1", 64 * kMiBytes)).volume_id, v.volume_id);  // still the same create
  r = ops_->ExpandVolume(v.volume_id, 32 * kMiBytes, 0, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
  r = ops_->ExpandVolume(v.volume_id, 200 * kMiBytes, 150 * kMiBytes, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kOutOfRange);
}

TEST_F(OpsTest, ExpandOfMalformedOrUnknownVolumeIsNotFound) {
  auto r = ops_->ExpandVolume("bogus", kMiBytes, 0, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  r = ops_->ExpandVolume("rnv1.cdev.kube..0123456789abcdef0123456789abcdef", kMiBytes, 0, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  auto secrets = Secrets();
  secrets.erase("userKey");
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  r = ops_->ExpandVolume(v.volume_id, 128 * kMiBytes, 0, secrets);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("controller-expand secret's 'userKey'"), std::string::npos);
}

TEST_F(OpsTest, CheckVolumeExists) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  EXPECT_TRUE(ops_->CheckVolumeExists(v.volume_id, {}));  // remembered credentials
  auto r = ops_->CheckVolumeExists("rnv1.cdev.kube..0123456789abcdef0123456789abcdef", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  EXPECT_EQ(ops_->CheckVolumeExists("x", {}).error().code, kNotFound);
}

TEST_F(OpsTest, ListVolumesNeedsRememberedCredentials) {
  auto r = ops_->ListVolumes(0, "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kFailedPrecondition);
  auto c = ops_->GetCapacity({{"clusterID", "dev"}, {"pool", "kube"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, kFailedPrecondition);
}

TEST_F(OpsTest, ListVolumesIsSortedAndPaginated) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustCreate(Args("pvc-" + std::to_string(i), kMiBytes)).volume_id);
  auto in_rbd = Args("pvc-rbd", kMiBytes);
  in_rbd.parameters["pool"] = "rbd";
  ids.push_back(MustCreate(in_rbd).volume_id);
  std::sort(ids.begin(), ids.end());
  auto all = ops_->ListVolumes(0, "");
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->entries.size(), 6u);
  EXPECT_TRUE(all->next_token.empty());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(all->entries[i].volume_id, ids[i]);
  EXPECT_EQ(all->entries[0].capacity_bytes, kMiBytes);
  EXPECT_EQ(all->entries[0].context.at("clusterID"), "dev");

  std::vector<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    auto page = ops_->ListVolumes(4, token);
    ASSERT_TRUE(page) << page.error().message;
    for (const auto& e : page->entries) paged.push_back(e.volume_id);
    token = page->next_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(paged, ids);

  auto bad = ops_->ListVolumes(2, "garbage");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, kAborted);
  EXPECT_EQ(ops_->ListVolumes(-1, "").error().code, kInvalidArgument);
}

TEST_F(OpsTest, GetCapacityUsesRememberedCredentials) {
  MustCreate(Args("pvc-1", kMiBytes));
  store_.SetAvailable(42 * kMiBytes);
  auto c = ops_->GetCapacity({{"clusterID", "dev"}, {"pool", "kube"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(*c, 42 * kMiBytes);
  c = ops_->GetCapacity({{"clusterID", "dev"}, {"pool", "nopool"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, kInvalidArgument);
  EXPECT_NE(c.error().message.find("'nopool'"), std::string::npos);
}

TEST_F(OpsTest, GetCapacityWithoutPoolStatisticsIsUnavailable) {
  // A cluster whose monitors have no usage figures yet (no ceph-mgr): a passing state, not a
  // bug, so the CO may ask again.
  MustCreate(Args("pvc-1", kMiBytes));
  store_.Fail("AvailableBytes", ENODATA);
  auto c = ops_->GetCapacity({{"clusterID", "dev"}, {"pool", "kube"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, kUnavailable);
}

TEST_F(OpsTest, CloneOfAVolumeUsesATemporarySnapshotAndRemovesIt) {
  VolumeInfo src = MustCreate(Args("pvc-src", 64 * kMiBytes));
  auto args = Args("pvc-clone", 128 * kMiBytes);
  args.source_volume_id = src.volume_id;
  VolumeInfo clone = MustCreate(args);
  EXPECT_EQ(clone.capacity_bytes, 128 * kMiBytes);
  auto img = store_.GetImage("kube", "", ImageOf(clone));
  ASSERT_TRUE(img);
  EXPECT_TRUE(img->parent.has_value());
  EXPECT_EQ(img->depth, 1u);
  EXPECT_TRUE(img->features & RBD_FEATURE_LAYERING);
  // The temporary snapshot is gone from the source's visible snapshots.
  auto src_img = store_.GetImage("kube", "", ImageOf(src));
  ASSERT_TRUE(src_img);
  for (const auto& [name, snap] : src_img->snaps) EXPECT_TRUE(snap.trashed) << name;
  // Smaller than its source: OUT_OF_RANGE. Unknown source: NOT_FOUND.
  args = Args("pvc-small", 32 * kMiBytes);
  args.source_volume_id = src.volume_id;
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kOutOfRange);
  args = Args("pvc-nosrc", 64 * kMiBytes);
  args.source_volume_id = "rnv1.cdev.kube..0123456789abcdef0123456789abcdef";
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kNotFound);
  args.source_volume_id = "malformed";
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kNotFound);
  // No size asked for: the source's.
  args = Args("pvc-same");
  args.source_volume_id = src.volume_id;
  EXPECT_EQ(MustCreate(args).capacity_bytes, 64 * kMiBytes);
}

TEST_F(OpsTest, ADeepCloneChainIsFlattened) {
  options_.max_clone_depth = 2;
  Restart();
  VolumeInfo v = MustCreate(Args("gen-0", kMiBytes));
  for (int i = 1; i <= 3; ++i) {
    auto args = Args("gen-" + std::to_string(i), kMiBytes);
    args.source_volume_id = v.volume_id;
    v = MustCreate(args);
    auto img = store_.GetImage("kube", "", ImageOf(v));
    ASSERT_TRUE(img);
    EXPECT_LE(img->depth, 2u) << "generation " << i;
  }
  EXPECT_EQ(store_.GetImage("kube", "", ImageOf(v))->depth, 0u);  // gen-3 was depth 3: flattened
}

TEST_F(OpsTest, DeletingEverythingInAnyOrderLeavesThePoolEmpty) {
  VolumeInfo src = MustCreate(Args("pvc-src", 64 * kMiBytes));
  SnapshotInfo snap = MustSnapshot(src.volume_id, "snap-1");
  auto args = Args("pvc-restore", 64 * kMiBytes);
  args.source_snapshot_id = snap.snapshot_id;
  VolumeInfo restore = MustCreate(args);
  args = Args("pvc-clone", 64 * kMiBytes);
  args.source_volume_id = src.volume_id;
  VolumeInfo clone = MustCreate(args);
  // The source first (its snapshot's image and the clone still need it), then the rest.
  EXPECT_TRUE(ops_->DeleteVolume(src.volume_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteSnapshot(snap.snapshot_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteVolume(restore.volume_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteVolume(clone.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube").empty());
  EXPECT_EQ(store_.TrashCount("kube"), 0);
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.volumes").empty());
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.snapshots").empty());
}

}  // namespace
}  // namespace rbdnbd::csi::testing
