#include "csi/volume_store.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace rbdnbd::csi {
namespace {

namespace fs = std::filesystem;

class VolumeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("volume-store-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = VolumeStore::Create((dir_ / "state").string());
    ASSERT_TRUE(s) << s.error().message;
    store_.emplace(std::move(s).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  static VolumeRecord Sample() {
    VolumeRecord r;
    r.volume_id = "0001-0009-rook-ceph-0000000000000002-8b2d7c1e";
    r.spec = "kube/ns/csi-vol-1";
    r.mode = VolumeMode::kMount;
    r.fs_type = "xfs";
    r.mount_flags = {"noatime", "discard"};
    r.read_only = true;
    r.access_mode = 3;
    r.staging_path = "/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount";
    r.device = "/dev/nbd3";
    r.cookie = "rbd-nbdd-abc";
    r.staged = true;
    r.published = {{"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv/mount", true, VolumeMode::kMount, 3},
                   {"/var/lib/kubelet/pods/v/volumeDevices/kubernetes.io~csi/pv", false, VolumeMode::kBlock, 1}};
    return r;
  }

  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(store_->dir())) out.push_back(e.path().filename().string());
    return out;
  }

  fs::path dir_;
  std::optional<VolumeStore> store_;
};

TEST_F(VolumeStoreTest, RoundTrip) {
  VolumeRecord r = Sample();
  ASSERT_TRUE(store_->Save(r));
  auto loaded = store_->Load(r.volume_id);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, r);

  VolumeRecord block;
  block.volume_id = "blk";
  block.mode = VolumeMode::kBlock;
  ASSERT_TRUE(store_->Save(block));
  auto b = store_->Load("blk");
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->mode, VolumeMode::kBlock);
}

TEST_F(VolumeStoreTest, TheDeviceTypeRoundTripsAndOldRecordsAreNbd) {
  VolumeRecord r = Sample();
  r.device = "/dev/ublkb3";
  r.device_type = DeviceType::kUblk;
  ASSERT_TRUE(store_->Save(r));
  auto loaded = store_->Load(r.volume_id);
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ((*loaded)->device_type, DeviceType::kUblk);
  EXPECT_EQ(**loaded, r);

  // A record written before the field existed: nbd.
  nlohmann::json old = nlohmann::json::parse(std::ifstream(store_->PathFor(r.volume_id)));
  ASSERT_EQ(old["device_type"], "ublk");
  old.erase("device_type");
  old["device"] = "/dev/nbd3";
  std::ofstream(store_->PathFor(r.volume_id)) << old.dump();
  loaded = store_->Load(r.volume_id);
  ASSERT_TRUE(loaded && loaded->has_value()) << (loaded ? "" : loaded.error().message);
  EXPECT_EQ((*loaded)->device_type, DeviceType::kNbd);

  old["device_type"] = "auto";  // never written: stage resolves auto first
  std::ofstream(store_->PathFor(r.volume_id)) << old.dump();
  loaded = store_->Load(r.volume_id);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("device_type"), std::string::npos) << loaded.error().message;
}

TEST_F(VolumeStoreTest, UnknownVolumeIsNotAnError) {
  auto loaded = store_->Load("never-staged");
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->has_value());
  EXPECT_TRUE(store_->Remove("never-staged"));
}

TEST_F(VolumeStoreTest, FilesAreHashedNamesMode0600AndNoTemporariesRemain) {
  VolumeRecord r = Sample();
  r.volume_id = "../../etc/passwd\nwith/slashes";
  for (int i = 0; i < 5; ++i) {
    r.device = "/dev/nbd" + std::to_string(i);
    ASSERT_TRUE(store_->Save(r));
  }
  auto files = Files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], Sha256Hex(r.volume_id) + ".json");
  EXPECT_EQ(files[0].size(), 64u + 5u);
  struct stat st{};
  ASSERT_EQ(::stat(store_->PathFor(r.volume_id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  struct stat dst{};
  ASSERT_EQ(::stat(store_->dir().c_str(), &dst), 0);
  EXPECT_EQ(dst.st_mode & 0777, 0700u);
  auto loaded = store_->Load(r.volume_id);
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ((*loaded)->device, "/dev/nbd4");
  EXPECT_EQ((*loaded)->volume_id, r.volume_id);
}

TEST_F(VolumeStoreTest, ReplacementIsAtomicUnderConcurrentReaders) {
  // A reader never sees a torn file while a writer keeps replacing it.
  VolumeRecord r = Sample();
  ASSERT_TRUE(store_->Save(r));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop) {
      auto l = store_->Load(r.volume_id);
      if (!l || !l->has_value()) bad++;
    }
  });
  for (int i = 0; i < 200; ++i) {
    r.mount_flags.assign(static_cast<size_t>(i % 7), std::string(100, 'x'));
    ASSERT_TRUE(store_->Save(r));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(Files().size(), 1u);
}

TEST_F(VolumeStoreTest, RemoveDeletesTheFile) {
  VolumeRecord r = Sample();
  ASSERT_TRUE(store_->Save(r));
  ASSERT_TRUE(store_->Remove(r.volume_id));
  EXPECT_TRUE(Files().empty());
  auto loaded = store_->Load(r.volume_id);
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(VolumeStoreTest, CorruptOrForeignFilesAreErrors) {
  std::ofstream(store_->PathFor("a")) << "{not json";
  auto corrupt = store_->Load("a");
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().code, EBADMSG);

  VolumeRecord other = Sample();
  other.volume_id = "b";
  ASSERT_TRUE(store_->Save(other));
  fs::rename(store_->PathFor("b"), store_->PathFor("c"));
  auto foreign = store_->Load("c");
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("another volume"), std::string::npos);
}

TEST_F(VolumeStoreTest, CreateRemovesTemporariesOfAnInterruptedSave) {
  VolumeRecord r = Sample();
  ASSERT_TRUE(store_->Save(r));
  std::string tmp = store_->PathFor(r.volume_id) + ".tmp.123.0";
  std::ofstream(tmp) << "{\"volume_id\": \"half";
  auto again = VolumeStore::Create(store_->dir());
  ASSERT_TRUE(again);
  EXPECT_FALSE(fs::exists(tmp));
  auto loaded = again->Load(r.volume_id);
  ASSERT_TRUE(loaded && loaded->has_value());
}

TEST(VolumeRecordJsonTest, RejectsBadRecords) {
  EXPECT_FALSE(RecordFromJson(nlohmann::json::array()));
  EXPECT_FALSE(RecordFromJson(nlohmann::json{{"spec", "p/i"}}));
  EXPECT_FALSE(RecordFromJson(nlohmann::json{{"volume_id", "v"}, {"mode", "tape"}}));
  EXPECT_FALSE(RecordFromJson(nlohmann::json{{"volume_id", "v"}, {"published", {{{"read_only", true}}}}}));
}

TEST(Sha256Test, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace rbdnbd::csi
