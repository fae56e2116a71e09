// A RADOS namespace (StorageClass radosNamespace): everything stays inside it.
#include "tests/ceph/ceph_test_env.h"

namespace rbdnbd::csi::test {
namespace {

class NamespaceTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    ns_ = Name("ns");
    ASSERT_EQ(rbd_namespace_create(raw_->io(), ns_.c_str()), 0);
    auto s = store_->Open(Target(kPool, ns_), Kube());
    ASSERT_TRUE(s) << ErrText(s);
    ns_session_ = std::move(*s);
  }
  void TearDown() override {
    if (ns_session_ != nullptr) {
      if (auto v = ns_session_->JournalGet("rbd-nbdd-csi.volumes", "name/pvc"); v && *v) {
        (void)ns_session_->JournalRemove("rbd-nbdd-csi.volumes", "name/pvc", **v);
      }
      rados_ioctx_t io = nullptr;
      if (rados_ioctx_create(raw_->cluster(), kPool, &io) == 0) {
        rados_ioctx_set_namespace(io, ns_.c_str());
        rados_remove(io, "rbd-nbdd-csi.volumes");
        rados_ioctx_destroy(io);
      }
      ns_session_.reset();
    }
    if (!ns_.empty()) {
      EXPECT_EQ(rbd_namespace_remove(raw_->io(), ns_.c_str()), 0) << "namespace not empty";
    }
    StoreTest::TearDown();
  }
  std::string ns_;
  std::unique_ptr<CephSession> ns_session_;
};

TEST_F(NamespaceTest, ImagesSnapshotsClonesAndTheJournalLiveInTheNamespace) {
  CephSession& s = *ns_session_;
  auto vol = Image("vol", 64 * kMiB);
  vol.metadata = {{"csi.name", "pvc-in-ns"}};
  ASSERT_TRUE(s.Create(vol));
  EXPECT_TRUE(raw_->Images(prefix_).empty()) << "the image must not be in the default namespace";
  auto outside = kube_->Stat(vol.name);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ENOENT);
  auto st = s.Stat(vol.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->size_bytes, 64 * kMiB);
  EXPECT_EQ(st->metadata, (std::map<std::string, std::string>{{"csi.name", "pvc-in-ns"}}));

  ASSERT_TRUE(s.CreateSnapshot(vol.name, "tmp", QuiesceMode::kBestEffort));
  auto clone = Image("vol-clone", 128 * kMiB);
  clone.metadata = {{"csi.name", "clone-in-ns"}};
  auto c = s.Clone(s, vol.name, "tmp", clone);
  ASSERT_TRUE(c) << ErrText(c);
  auto cst = s.Stat(clone.name);
  ASSERT_TRUE(cst) << ErrText(cst);
  EXPECT_EQ(cst->clone_depth, 1u);
  EXPECT_EQ(cst->size_bytes, 128 * kMiB);
  // librbd's clone copies the parent's metadata; ours overwrites csi.name.
  EXPECT_EQ(cst->metadata, (std::map<std::string, std::string>{{"csi.name", "clone-in-ns"}}));
  ASSERT_TRUE(s.RemoveSnapshot(vol.name, "tmp"));
  auto rm = s.Remove(vol.name);
  ASSERT_TRUE(rm) << ErrText(rm);
  EXPECT_EQ(*rm, RemoveOutcome::kTrashed);
  EXPECT_EQ(*s.CountTrash(prefix_), 1);
  EXPECT_EQ(*kube_->CountTrash(prefix_), 0) << "the default namespace's trash is another";

  EXPECT_EQ(*s.JournalReserve("rbd-nbdd-csi.volumes", "name/pvc", "v"), "v");
  EXPECT_FALSE(*kube_->JournalGet("rbd-nbdd-csi.volumes", "name/pvc")) << "journals are per namespace";

  EXPECT_EQ(*s.Remove(clone.name), RemoveOutcome::kRemoved);
  EXPECT_EQ(*s.PurgeTrash(prefix_), 1);
  EXPECT_EQ(*s.CountTrash(prefix_), 0);
}

TEST_F(NamespaceTest, AnUnknownNamespaceIsEnoentNamingIt) {
  auto s = store_->Open(Target(kPool, Name("no-such-ns")), Kube());
  ASSERT_TRUE(s) << ErrText(s);
  auto r = (*s)->Create(Image("vol", 64 * kMiB));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT) << ErrText(r);
  EXPECT_NE(r.error().message.find(Name("no-such-ns")), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace rbdnbd::csi::test
