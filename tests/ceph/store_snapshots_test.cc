// Snapshots, clones, the trash and the purge chain of the controller's design
// (csi/controller/README.md), and quiesce.
#include <atomic>
#include <ctime>

#include "tests/ceph/ceph_test_env.h"

namespace rbdnbd::csi::test {
namespace {

using SnapshotsTest = StoreTest;

TEST_F(SnapshotsTest, SnapshotHasItsSizeIdAndCreationTime) {
  auto img = Image("vol", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  int64_t before = time(nullptr);
  auto s = kube_->CreateSnapshot(img.name, "snap1", QuiesceMode::kSkip);
  int64_t after = time(nullptr);
  ASSERT_TRUE(s) << ErrText(s);
  EXPECT_EQ(s->image, img.name);
  EXPECT_EQ(s->name, "snap1");
  EXPECT_EQ(s->size_bytes, 64 * kMiB);
  EXPECT_GT(s->id, 0u);
  EXPECT_GE(s->created_unix_s, before - 2);  // the OSD's clock; same host here
  EXPECT_LE(s->created_unix_s, after + 2);
  EXPECT_FALSE(s->quiesce_failed);

  ASSERT_TRUE(kube_->Resize(img.name, 128 * kMiB));
  auto st = kube_->StatSnapshot(img.name, "snap1");
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->size_bytes, 64 * kMiB) << "the size at the snapshot, not the image's now";
  EXPECT_EQ(st->id, s->id);
  EXPECT_EQ(st->created_unix_s, s->created_unix_s);
  EXPECT_EQ(st->created_nanos, s->created_nanos);

  auto dup = kube_->CreateSnapshot(img.name, "snap1", QuiesceMode::kSkip);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, EEXIST);
  auto missing = kube_->StatSnapshot(img.name, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find(img.name + "@nope"), std::string::npos) << missing.error().message;
  ASSERT_TRUE(kube_->RemoveSnapshot(img.name, "snap1"));
  auto gone = kube_->RemoveSnapshot(img.name, "snap1");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ENOENT);
}

TEST_F(SnapshotsTest, CloneGrowsCarriesMetadataAndCountsItsDepth) {
  auto src = Image("vol-src", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(src));
  ASSERT_TRUE(kube_->CreateSnapshot(src.name, "s", QuiesceMode::kSkip));
  auto c1 = Image("vol-c1", 128 * kMiB);
  c1.metadata = {{"csi.name", "pvc-clone"}};
  auto r = kube_->Clone(*kube_, src.name, "s", c1);
  ASSERT_TRUE(r) << ErrText(r);
  auto st = kube_->Stat(c1.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->size_bytes, 128 * kMiB);
  EXPECT_EQ(st->features, kDefaultFeatures);
  EXPECT_EQ(st->clone_depth, 1u);
  EXPECT_EQ(st->metadata.at("csi.name"), "pvc-clone");
  EXPECT_EQ(kube_->Stat(src.name)->features, kDefaultFeatures) << "the parent's internal clone bit is not shown";

  // A clone of the clone: depth 2; the same size as the snapshot: not resized.
  ASSERT_TRUE(kube_->CreateSnapshot(c1.name, "s", QuiesceMode::kSkip));
  auto c2 = Image("vol-c2", 0);
  ASSERT_TRUE(kube_->Clone(*kube_, c1.name, "s", c2));
  auto st2 = kube_->Stat(c2.name);
  ASSERT_TRUE(st2) << ErrText(st2);
  EXPECT_EQ(st2->clone_depth, 2u);
  EXPECT_EQ(st2->size_bytes, 128 * kMiB);
  // Flatten cuts it loose from both.
  ASSERT_TRUE(kube_->Flatten(c2.name));
  ASSERT_TRUE(kube_->Flatten(c2.name)) << "a flat image flattens as a no-op";
  EXPECT_EQ(kube_->Stat(c2.name)->clone_depth, 0u);

  // Smaller than the snapshot: refused, and nothing left behind.
  auto small = Image("vol-small", 32 * kMiB);
  auto s = kube_->Clone(*kube_, src.name, "s", small);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EINVAL);
  EXPECT_TRUE(raw_->Images(small.name).empty());
  // A failed metadata write removes the clone too (grown or not: the
  // grown one was opened and closed before the write).
  for (uint64_t size : {uint64_t{0}, 96 * kMiB}) {
    auto badmeta = Image("vol-badmeta", size);
    badmeta.metadata = {{"csi.name", "x"}, {"conf_rbd_cache", "not-a-bool"}};
    auto b = kube_->Clone(*kube_, src.name, "s", badmeta);
    ASSERT_FALSE(b) << size;
    EXPECT_EQ(b.error().code, EINVAL) << b.error().message;
    EXPECT_NE(b.error().message.find("conf_rbd_cache"), std::string::npos) << b.error().message;
    EXPECT_TRUE(raw_->Images(badmeta.name).empty()) << size;
  }
  // Not grown (no open at all) and with journaling (through librbd): both
  // read back by librbd itself.
  for (uint64_t features : {kDefaultFeatures, kDefaultFeatures | uint64_t{RBD_FEATURE_JOURNALING}}) {
    auto c = Image(fmt::format("vol-c-{:x}", features), 0, features);
    c.metadata = {{"csi.name", fmt::format("pvc-{:x}", features)}, {"csi.source", "src"}};
    auto cr = kube_->Clone(*kube_, src.name, "s", c);
    ASSERT_TRUE(cr) << ErrText(cr);
    EXPECT_EQ(RawMeta(raw_->io(), c.name, "csi.name"), fmt::format("pvc-{:x}", features));
    EXPECT_EQ(RawMeta(raw_->io(), c.name, "csi.source"), "src");
    EXPECT_EQ(kube_->Stat(c.name)->size_bytes, 64 * kMiB);
  }
  // No such snapshot: ENOENT.
  auto nosnap = kube_->Clone(*kube_, src.name, "nope", Image("vol-x", 0));
  ASSERT_FALSE(nosnap);
  EXPECT_EQ(nosnap.error().code, ENOENT);
}

TEST_F(SnapshotsTest, RemovingASnapshotThatClonesUseMovesItToTheTrashNamespace) {
  auto src = Image("vol-src", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(src));
  ASSERT_TRUE(kube_->CreateSnapshot(src.name, "tmp", QuiesceMode::kSkip));
  ASSERT_TRUE(kube_->CreateSnapshot(src.name, "other", QuiesceMode::kSkip));
  auto clone = Image("snap-c", 64 * kMiB);
  ASSERT_TRUE(kube_->Clone(*kube_, src.name, "tmp", clone));
  auto names = kube_->SnapshotNames(src.name);
  ASSERT_TRUE(names) << ErrText(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"tmp", "other"}));
  ASSERT_TRUE(kube_->RemoveSnapshot(src.name, "other"));
  auto r = kube_->RemoveSnapshot(src.name, "tmp");
  ASSERT_TRUE(r) << ErrText(r);
  auto snaps = raw_->Snaps(src.name);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].second, RBD_SNAP_NAMESPACE_TYPE_TRASH);
  names = kube_->SnapshotNames(src.name);
  ASSERT_TRUE(names) << ErrText(names);
  EXPECT_TRUE(names->empty()) << "a trash-namespace snapshot is not the image's own";
  auto no_image = kube_->SnapshotNames(Name("no-such-image"));
  ASSERT_FALSE(no_image);
  EXPECT_EQ(no_image.error().code, ENOENT);
  auto st = kube_->StatSnapshot(src.name, "tmp");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ENOENT);
  EXPECT_EQ(kube_->Stat(clone.name)->clone_depth, 1u) << "the clone still reads through it";

  // The source has a (trashed) snapshot: its delete goes to the trash.
  auto rm = kube_->Remove(src.name);
  ASSERT_TRUE(rm) << ErrText(rm);
  EXPECT_EQ(*rm, RemoveOutcome::kTrashed);
  EXPECT_TRUE(raw_->Images(src.name).empty());
  EXPECT_EQ(*kube_->CountTrash(prefix_), 1);
  EXPECT_EQ(*kube_->PurgeTrash(prefix_), 0) << "the clone still needs it";
  // The last clone goes: librbd drops the trashed snapshot, the purge the image.
  EXPECT_EQ(*kube_->Remove(clone.name), RemoveOutcome::kRemoved);
  EXPECT_EQ(*kube_->PurgeTrash(prefix_), 1);
  EXPECT_EQ(*kube_->CountTrash(prefix_), 0);
}

// The controller's whole life of a volume, its snapshot and a restore, deleted
// source first: the pool and the trash end empty.
TEST_F(SnapshotsTest, PurgeChainEndsWithAnEmptyPoolAndTrash) {
  auto vol = Image("vol-a", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(vol));
  // CreateSnapshot: temporary snapshot, clone it, snapshot the clone, drop the temporary one.
  ASSERT_TRUE(kube_->CreateSnapshot(vol.name, "tmp", QuiesceMode::kBestEffort));
  std::string snap_img = Name("snap-b");
  ASSERT_TRUE(kube_->Clone(*kube_, vol.name, "tmp", Image("snap-b", 0)));
  ASSERT_TRUE(kube_->CreateSnapshot(snap_img, snap_img, QuiesceMode::kSkip));
  ASSERT_TRUE(kube_->RemoveSnapshot(vol.name, "tmp"));
  // CreateVolume from the snapshot, bigger.
  auto restored = Image("vol-c", 96 * kMiB);
  ASSERT_TRUE(kube_->Clone(*kube_, snap_img, snap_img, restored));
  EXPECT_EQ(kube_->Stat(restored.name)->clone_depth, 2u);

  // DeleteVolume(a): trashed (its trashed snapshot backs snap-b).
  EXPECT_EQ(*kube_->Remove(vol.name), RemoveOutcome::kTrashed);
  // DeleteSnapshot(b): its snapshot backs vol-c: trash namespace, then trashed.
  ASSERT_TRUE(kube_->RemoveSnapshot(snap_img, snap_img));
  EXPECT_EQ(*kube_->Remove(snap_img), RemoveOutcome::kTrashed);
  EXPECT_EQ(*kube_->PurgeTrash(prefix_), 0);
  EXPECT_EQ(*kube_->CountTrash(prefix_), 2);
  // DeleteVolume(c): removed; the purge then takes snap-b, which frees vol-a.
  EXPECT_EQ(*kube_->Remove(restored.name), RemoveOutcome::kRemoved);
  auto purged = kube_->PurgeTrash(prefix_);
  ASSERT_TRUE(purged) << ErrText(purged);
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(*kube_->CountTrash(prefix_), 0);
  EXPECT_TRUE(raw_->Images(prefix_).empty());
}

// A client that maps the image and answers librbd's quiesce notification.
class QuiesceWatcher {
 public:
  QuiesceWatcher(rados_ioctx_t io, const std::string& image, int answer) : answer_(answer) {
    ok_ = rbd_open(io, image.c_str(), &img_, nullptr) == 0 &&
          rbd_quiesce_watch(img_, &QuiesceWatcher::OnQuiesce, &QuiesceWatcher::OnUnquiesce, this, &handle_) == 0;
  }
  ~QuiesceWatcher() {
    if (img_ != nullptr) {
      rbd_quiesce_unwatch(img_, handle_);
      rbd_close(img_);
    }
  }
  bool ok() const { return ok_; }
  int quiesced() const { return quiesced_; }

 private:
  static void OnQuiesce(void* arg) {
    auto* w = static_cast<QuiesceWatcher*>(arg);
    ++w->quiesced_;
    rbd_quiesce_complete(w->img_, w->handle_, w->answer_);
  }
  static void OnUnquiesce(void*) {}
  rbd_image_t img_ = nullptr;
  uint64_t handle_ = 0;
  int answer_;
  bool ok_ = false;
  std::atomic<int> quiesced_{0};
};

TEST_F(SnapshotsTest, QuiesceModesAgainstAWatcherThatFailsToFreeze) {
  auto img = Image("vol-q", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  {
    QuiesceWatcher good(raw_->io(), img.name, 0);
    ASSERT_TRUE(good.ok());
    auto s = kube_->CreateSnapshot(img.name, "ok", QuiesceMode::kRequired);
    ASSERT_TRUE(s) << ErrText(s);
    EXPECT_EQ(good.quiesced(), 1);
  }
  QuiesceWatcher bad(raw_->io(), img.name, -EIO);
  ASSERT_TRUE(bad.ok());
  auto req = kube_->CreateSnapshot(img.name, "required", QuiesceMode::kRequired);
  ASSERT_FALSE(req) << "a failed quiesce must fail kRequired";
  EXPECT_NE(req.error().message.find(img.name + "@required"), std::string::npos) << req.error().message;
  printf("[ note     ] kRequired with a failing watcher: %s\n", ErrText(req).c_str());
  EXPECT_EQ(bad.quiesced(), 1);
  EXPECT_FALSE(kube_->StatSnapshot(img.name, "required")) << "no snapshot after a failed kRequired";

  auto best = kube_->CreateSnapshot(img.name, "best", QuiesceMode::kBestEffort);
  ASSERT_TRUE(best) << ErrText(best);
  EXPECT_EQ(bad.quiesced(), 2) << "best effort still asks";
  // librbd does not tell its caller that the quiesce failed (librbd_store.h).
  EXPECT_FALSE(best->quiesce_failed);

  auto skip = kube_->CreateSnapshot(img.name, "skip", QuiesceMode::kSkip);
  ASSERT_TRUE(skip) << ErrText(skip);
  EXPECT_EQ(bad.quiesced(), 2) << "kSkip sends no quiesce notification";
}

}  // namespace
}  // namespace rbdnbd::csi::test
