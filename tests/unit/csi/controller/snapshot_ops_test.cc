// ControllerOps' snapshot RPCs against the in-memory FakeCephStore.
#include <algorithm>
#include <optional>

#include "csi/controller/controller_error.h"
#include "csi/controller/journal_record.h"
#include "ops_fixture.h"

namespace rbdnbd::csi::testing {
namespace {

TEST_F(OpsTest, CreateSnapshotMakesItsOwnImageAndDropsTheTemporarySnapshot) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  SnapshotInfo s = MustSnapshot(v.volume_id, "snap-1");
  EXPECT_EQ(s.source_volume_id, v.volume_id);
  EXPECT_EQ(s.size_bytes, 64 * kMiBytes);
  EXPECT_GT(s.created_s, 0);
  auto ref = DecodeSnapshotId(s.snapshot_id);
  ASSERT_TRUE(ref);
  EXPECT_EQ(EncodeVolumeId(ref->source), v.volume_id);
  auto img = store_.GetImage("kube", "", ref->ImageName());
  ASSERT_TRUE(img);
  ASSERT_EQ(img->snaps.count(ref->ImageName()), 1u);
  EXPECT_EQ(img->metadata.at("csi.name"), "snap-1");
  auto src_img = store_.GetImage("kube", "", ImageOf(v));
  ASSERT_TRUE(src_img);
  for (const auto& [name, snap] : src_img->snaps) EXPECT_TRUE(snap.trashed) << name;
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.snapshots");
  ASSERT_EQ(journal.size(), 1u);
  auto record = DecodeSnapshotJournalRecord(journal.at("name/snap-1"), "k");
  ASSERT_TRUE(record);
  EXPECT_TRUE(record->ready);
  EXPECT_EQ(record->source_uuid, DecodeVolumeId(v.volume_id)->uuid);
}

TEST_F(OpsTest, ASnapshotTakenOverMidwayLeavesTheOtherControllersSnapshot) {
  // Another controller (no shared lock) takes the name over while this one
  // clones, and finishes first: this one answers ABORTED and removes nothing.
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  ControllerOps other(&store_, options_);
  std::optional<SnapshotInfo> theirs;
  store_.BeforeOnce("Clone", [&] {
    auto s = other.CreateSnapshot(v.volume_id, "snap-r", {}, Secrets());
    ASSERT_TRUE(s) << s.error().message;
    theirs = *s;
  });
  auto mine = ops_->CreateSnapshot(v.volume_id, "snap-r", {}, Secrets());
  ASSERT_FALSE(mine);
  EXPECT_EQ(mine.error().code, kAborted) << mine.error().message;
  ASSERT_TRUE(theirs);
  auto ref = DecodeSnapshotId(theirs->snapshot_id);
  ASSERT_TRUE(ref);
  auto img = store_.GetImage("kube", "", ref->ImageName());
  ASSERT_TRUE(img) << "a rollback removed the other controller's snapshot image";
  EXPECT_EQ(img->snaps.count(ref->ImageName()), 1u);
  auto journal = store_.Journal("kube", "", "rbd-nbdd-csi.snapshots");
  ASSERT_EQ(journal.size(), 1u);
  auto record = DecodeSnapshotJournalRecord(journal.at("name/snap-r"), "k");
  ASSERT_TRUE(record);
  EXPECT_TRUE(record->ready);
  EXPECT_EQ(MustSnapshot(v.volume_id, "snap-r").snapshot_id, theirs->snapshot_id);
  // No temporary snapshot of either attempt is left on the source (the one
  // clone v2 keeps for the snapshot image is in the trash namespace).
  auto src_img = store_.GetImage("kube", "", ImageOf(v));
  ASSERT_TRUE(src_img);
  for (const auto& [snap_name, snap] : src_img->snaps) EXPECT_TRUE(snap.trashed) << snap_name;
  EXPECT_EQ(store_.TrashCount("kube"), 0);
}

TEST_F(OpsTest, CreateSnapshotIsIdempotentByNameAndSourceBound) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  VolumeInfo w = MustCreate(Args("pvc-2", 64 * kMiBytes));
  SnapshotInfo a = MustSnapshot(v.volume_id, "snap-1");
  SnapshotInfo b = MustSnapshot(v.volume_id, "snap-1");
  EXPECT_EQ(a.snapshot_id, b.snapshot_id);
  EXPECT_EQ(a.created_s, b.created_s);
  auto r = ops_->CreateSnapshot(w.volume_id, "snap-1", {}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kAlreadyExists);
}

TEST_F(OpsTest, CreateSnapshotParameters) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  auto r = ops_->CreateSnapshot(v.volume_id, "s", {{"quiesce", "maybe"}}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_NE(r.error().message.find("'quiesce'"), std::string::npos);
  r = ops_->CreateSnapshot(v.volume_id, "s", {{"pool", "kube"}}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'pool'"), std::string::npos);
  r = ops_->CreateSnapshot(v.volume_id, "s", {{"clusterID", "far"}}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_TRUE(ops_->CreateSnapshot(v.volume_id, "s",
                                   {{"clusterID", "dev"}, {"quiesce", "skip"},
                                    {"csi.storage.k8s.io/volumesnapshot/name", "x"}},
                                   Secrets()));
  auto secrets = Secrets();
  secrets.erase("userID");
  r = ops_->CreateSnapshot(v.volume_id, "s2", {}, secrets);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("snapshotter secret's 'userID'"), std::string::npos);
}

TEST_F(OpsTest, CreateSnapshotOfMissingSourceIsNotFound) {
  auto r = ops_->CreateSnapshot("garbage", "s", {}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  r = ops_->CreateSnapshot("rnv1.cdev.kube..0123456789abcdef0123456789abcdef", "s", {}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kNotFound);
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.snapshots").empty());
}

TEST_F(OpsTest, RequiredQuiesceThatFailsIsAbortedAndLeavesNothing) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  store_.SetWatchers("kube", "", ImageOf(v), 1);
  store_.SetQuiesceFails(true);
  auto r = ops_->CreateSnapshot(v.volume_id, "snap-q", {{"quiesce", "required"}}, Secrets());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kAborted);
  EXPECT_NE(r.error().message.find("quiesce"), std::string::npos);
  EXPECT_EQ(store_.Images("kube").size(), 1u);
  EXPECT_TRUE(store_.GetImage("kube", "", ImageOf(v))->snaps.empty());
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.snapshots").empty());
  // best-effort takes it anyway (crash-consistent).
  auto s = ops_->CreateSnapshot(v.volume_id, "snap-q", {{"quiesce", "best-effort"}}, Secrets());
  EXPECT_TRUE(s) << s.error().message;
}

TEST_F(OpsTest, ASnapshotFailureAfterTheReservationLeavesNothing) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  for (const char* method : {"Clone", "JournalSwap"}) {
    SCOPED_TRACE(method);
    store_.Fail(method, EIO);
    auto r = ops_->CreateSnapshot(v.volume_id, "snap-f", {}, Secrets());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EIO);
    store_.Fail(method, 0);
    EXPECT_EQ(store_.Images("kube"), std::vector<std::string>{ImageOf(v)});
    EXPECT_TRUE(store_.GetImage("kube", "", ImageOf(v))->snaps.empty());
    EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.snapshots").empty());
  }
}

TEST_F(OpsTest, RestoreFromSnapshotClonesTheSnapshotImage) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  SnapshotInfo s = MustSnapshot(v.volume_id, "snap-1");
  auto args = Args("pvc-restore", 96 * kMiBytes);
  args.source_snapshot_id = s.snapshot_id;
  VolumeInfo r = MustCreate(args);
  EXPECT_EQ(r.capacity_bytes, 96 * kMiBytes);
  auto img = store_.GetImage("kube", "", ImageOf(r));
  ASSERT_TRUE(img && img->parent);
  EXPECT_EQ(img->parent->image, DecodeSnapshotId(s.snapshot_id)->ImageName());
  // The same again is the same volume; another snapshot under that name is not.
  EXPECT_EQ(MustCreate(args).volume_id, r.volume_id);
  SnapshotInfo s2 = MustSnapshot(v.volume_id, "snap-2");
  args.source_snapshot_id = s2.snapshot_id;
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kAlreadyExists);
  args = Args("pvc-small", 32 * kMiBytes);
  args.source_snapshot_id = s.snapshot_id;
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kOutOfRange);
  args.source_snapshot_id = "rns1.cdev.kube..0123456789abcdef0123456789abcdef.00000000000000000000000000000000";
  args.required_bytes = 64 * kMiBytes;
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kNotFound);
  args.source_snapshot_id = "nope";
  EXPECT_EQ(ops_->CreateVolume(args).error().code, kNotFound);
}

TEST_F(OpsTest, RestoreIntoAnotherPool) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  SnapshotInfo s = MustSnapshot(v.volume_id, "snap-1");
  auto args = Args("pvc-restore", 64 * kMiBytes);
  args.parameters["pool"] = "rbd";
  args.source_snapshot_id = s.snapshot_id;
  VolumeInfo r = MustCreate(args);
  EXPECT_EQ(r.context.at("pool"), "rbd");
  auto img = store_.GetImage("rbd", "", ImageOf(r));
  ASSERT_TRUE(img && img->parent);
  EXPECT_EQ(img->parent->pool_key, FakeCephStore::PoolKey("kube", ""));
}

TEST_F(OpsTest, DeleteSnapshotIsIdempotentAndTheSnapshotOutlivesItsSource) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  SnapshotInfo s = MustSnapshot(v.volume_id, "snap-1");
  EXPECT_TRUE(ops_->DeleteVolume(v.volume_id, Secrets()));  // the snapshot's image still needs it: trash
  auto listed = ops_->ListSnapshots(s.snapshot_id, "", 0, "", Secrets());
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->entries.size(), 1u);
  auto args = Args("pvc-restore", 64 * kMiBytes);
  args.source_snapshot_id = s.snapshot_id;
  VolumeInfo r = MustCreate(args);
  EXPECT_TRUE(ops_->DeleteSnapshot(s.snapshot_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteSnapshot(s.snapshot_id, Secrets()));
  EXPECT_TRUE(ops_->DeleteSnapshot("not-a-snapshot", Secrets()));
  EXPECT_TRUE(store_.Journal("kube", "", "rbd-nbdd-csi.snapshots").empty());
  EXPECT_TRUE(ops_->DeleteVolume(r.volume_id, Secrets()));
  EXPECT_TRUE(store_.Images("kube").empty());
  EXPECT_EQ(store_.TrashCount("kube"), 0);
}

TEST_F(OpsTest, ListSnapshotsByIdBySourceAndAllWithPagination) {
  VolumeInfo v = MustCreate(Args("pvc-1", 64 * kMiBytes));
  VolumeInfo w = MustCreate(Args("pvc-2", 64 * kMiBytes));
  std::vector<std::string> of_v, all;
  for (int i = 0; i < 3; ++i) of_v.push_back(MustSnapshot(v.volume_id, "v-snap-" + std::to_string(i)).snapshot_id);
  all = of_v;
  all.push_back(MustSnapshot(w.volume_id, "w-snap").snapshot_id);
  std::sort(of_v.begin(), of_v.end());
  std::sort(all.begin(), all.end());

  auto one = ops_->ListSnapshots(of_v[1], "", 0, "", {});
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->entries.size(), 1u);
  EXPECT_EQ(one->entries[0].snapshot_id, of_v[1]);
  EXPECT_EQ(one->entries[0].source_volume_id, v.volume_id);
  EXPECT_EQ(one->entries[0].size_bytes, 64 * kMiBytes);
  auto none = ops_->ListSnapshots("rns1.cdev.kube..0123456789abcdef0123456789abcdef.00000000000000000000000000000000",
                                  "", 0, "", {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->entries.empty());
  none = ops_->ListSnapshots("garbage", "", 0, "", {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->entries.empty());

  auto by_source = ops_->ListSnapshots("", v.volume_id, 0, "", {});
  ASSERT_TRUE(by_source);
  std::vector<std::string> got;
  for (const auto& e : by_source->entries) got.push_back(e.snapshot_id);
  EXPECT_EQ(got, of_v);

  got.clear();
  std::string token;
  int pages = 0;
  do {
    auto page = ops_->ListSnapshots("", "", 3, token, {});
    ASSERT_TRUE(page) << page.error().message;
    for (const auto& e : page->entries) got.push_back(e.snapshot_id);
    token = page->next_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(got, all);
  EXPECT_EQ(ops_->ListSnapshots("", "", 3, "garbage", {}).error().code, kAborted);
  EXPECT_EQ(ops_->ListSnapshots("", "", -2, "", {}).error().code, kInvalidArgument);
}

}  // namespace
}  // namespace rbdnbd::csi::testing
