// Images: create (features, object size, data pool, metadata), resize, LUKS,
// and the latency of a create.
#include <algorithm>
#include <chrono>

#include <sys/resource.h>

#include "csi/controller/librbd_cls.h"
#include "tests/ceph/ceph_test_env.h"

namespace rbdnbd::csi::test {
namespace {

using ImagesTest = StoreTest;

// What librbd itself says of an image (not through the store).
struct RawInfo {
  int r = 0;
  uint64_t features = 0;
  uint64_t size = 0;
  int order = 0;
  int64_t data_pool = -1;
};

RawInfo RawStat(rados_ioctx_t io, const std::string& name) {
  RawInfo out;
  rbd_image_t img = nullptr;
  if ((out.r = rbd_open_read_only(io, name.c_str(), &img, nullptr)) < 0) return out;
  rbd_get_features(img, &out.features);
  rbd_image_info_t st{};
  rbd_stat(img, &st, sizeof(st));
  out.size = st.size;
  out.order = st.order;
  out.data_pool = rbd_get_data_pool_id(img);
  rbd_close(img);
  return out;
}

TEST_F(ImagesTest, CreateSetsExactlyTheFeaturesGivenIncludingJournaling) {
  uint64_t all = kDefaultFeatures | RBD_FEATURE_JOURNALING;
  auto img = Image("vol-all", 256 * kMiB, all);
  ASSERT_TRUE(kube_->Create(img)) << "create";
  RawInfo raw = RawStat(raw_->io(), img.name);
  ASSERT_EQ(raw.r, 0);
  EXPECT_EQ(raw.features, all);
  EXPECT_EQ(raw.size, 256 * kMiB);
  auto st = kube_->Stat(img.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->features, all);
  EXPECT_EQ(st->size_bytes, 256 * kMiB);
  EXPECT_FALSE(st->id.empty());
  EXPECT_EQ(st->data_pool, "");
  EXPECT_EQ(st->clone_depth, 0u);

  auto plain = Image("vol-layering", 64 * kMiB, RBD_FEATURE_LAYERING);
  ASSERT_TRUE(kube_->Create(plain));
  EXPECT_EQ(RawStat(raw_->io(), plain.name).features, RBD_FEATURE_LAYERING);
}

TEST_F(ImagesTest, CreateOfAnExistingNameIsEexistAndLeavesItAlone) {
  auto img = Image("vol", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  auto again = Image("vol", 128 * kMiB);
  auto r = kube_->Create(again);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EEXIST);
  EXPECT_NE(r.error().message.find(img.name), std::string::npos) << r.error().message;
  EXPECT_EQ(RawStat(raw_->io(), img.name).size, 64 * kMiB);
}

TEST_F(ImagesTest, ObjectSizeBecomesTheOrderAndBadOnesAreEinval) {
  auto img = Image("vol-1m", 64 * kMiB);
  img.object_size = 1 * kMiB;
  ASSERT_TRUE(kube_->Create(img));
  EXPECT_EQ(RawStat(raw_->io(), img.name).order, 20);
  auto def = Image("vol-default", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(def));
  EXPECT_EQ(RawStat(raw_->io(), def.name).order, 22);  // Ceph's 4 MiB

  for (uint64_t bad : {uint64_t{3000}, uint64_t{2048}, uint64_t{64} * kMiB, uint64_t{5} * kMiB}) {
    auto b = Image("vol-bad", 64 * kMiB);
    b.object_size = bad;
    auto r = kube_->Create(b);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EINVAL) << r.error().message;
    EXPECT_EQ(RawStat(raw_->io(), b.name).r, -ENOENT) << "an image was left for object size " << bad;
  }
}

TEST_F(ImagesTest, InvalidFeatureSetsAreEinvalAndCreateNothing) {
  constexpr uint64_t kL = RBD_FEATURE_LAYERING;
  for (uint64_t bad : {
           kL | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_FAST_DIFF,  // fast-diff needs object-map (librbd drops it)
           kL | RBD_FEATURE_OBJECT_MAP,                               // object-map needs exclusive-lock
           kL | RBD_FEATURE_JOURNALING,                               // journaling needs exclusive-lock
       }) {
    auto img = Image("vol-badfeat", 64 * kMiB, bad);
    auto r = kube_->Create(img);
    ASSERT_FALSE(r) << fmt::format("features {:#x} accepted", bad);
    EXPECT_EQ(r.error().code, EINVAL) << r.error().message;
    EXPECT_NE(r.error().message.find(img.name), std::string::npos) << r.error().message;
    EXPECT_EQ(RawStat(raw_->io(), img.name).r, -ENOENT);
  }
}

// client.kube may not write to pool rbd, so a data pool is an admin-only case.
TEST_F(ImagesTest, DataPoolAsAdmin) {
  auto img = Image("vol-datapool", 64 * kMiB);
  img.data_pool = "rbd";
  auto r = admin_->Create(img);
  ASSERT_TRUE(r) << ErrText(r);
  int64_t rbd_id = rados_pool_lookup(raw_->cluster(), "rbd");
  ASSERT_GE(rbd_id, 0);
  EXPECT_EQ(RawStat(raw_->io(), img.name).data_pool, rbd_id);
  auto st = admin_->Stat(img.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->data_pool, "rbd");

  auto missing = Image("vol-nodatapool", 64 * kMiB);
  missing.data_pool = "no-such-pool-h1";
  auto m = admin_->Create(missing);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("no-such-pool-h1"), std::string::npos) << m.error().message;
}

TEST_F(ImagesTest, MetadataIsSetAndStatReturnsTheCsiKeysOnly) {
  auto img = Image("vol-meta", 64 * kMiB);
  img.metadata = {{"csi.name", "pvc-1234"}, {"csi.pvc.name", "data"}, {"csi.pvc.namespace", "default"}};
  ASSERT_TRUE(kube_->Create(img));
  // Keys of others, set through librbd: Stat leaves them out.
  for (const char* k : {"other.key", "csi", "csi-x", "zzz.after"}) {
    ASSERT_EQ(RawSetMeta(raw_->io(), img.name, k, "not ours"), 0) << k;
  }
  auto st = kube_->Stat(img.name);
  ASSERT_TRUE(st) << ErrText(st);
  std::map<std::string, std::string> want = {
      {"csi.name", "pvc-1234"}, {"csi.pvc.name", "data"}, {"csi.pvc.namespace", "default"}};
  EXPECT_EQ(st->metadata, want);
  // librbd itself reads what the cls write stored.
  EXPECT_EQ(RawMeta(raw_->io(), img.name, "csi.name"), "pvc-1234");
  EXPECT_EQ(RawMeta(raw_->io(), img.name, "csi.pvc.namespace"), "default");
  EXPECT_EQ(RawMeta(raw_->io(), img.name, "other.key"), "not ours");
}

TEST_F(ImagesTest, MetadataValuesComeBackByteForByteThroughLibrbd) {
  auto img = Image("vol-meta-bytes", 64 * kMiB);
  std::string long_value(4000, 'v');
  long_value[1234] = 'X';
  img.metadata = {{"csi.empty", ""},
                  {"csi.utf8", "pvc-\xc3\xa9t\xc3\xa9 / ns:default, 100%"},
                  {"csi.long", long_value},
                  {"csi.k-" + std::string(200, 'k'), "long key"}};
  ASSERT_TRUE(kube_->Create(img));
  for (const auto& [k, v] : img.metadata) EXPECT_EQ(RawMeta(raw_->io(), img.name, k), v) << k;
  auto st = kube_->Stat(img.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->metadata, img.metadata);
}

TEST_F(ImagesTest, MetadataWithJournalingGoesThroughLibrbdAndReadsBack) {
  auto img = Image("vol-meta-journal", 64 * kMiB, kDefaultFeatures | RBD_FEATURE_JOURNALING);
  img.metadata = {{"csi.name", "pvc-j"}};
  auto r = kube_->Create(img);
  ASSERT_TRUE(r) << ErrText(r);
  EXPECT_EQ(RawMeta(raw_->io(), img.name, "csi.name"), "pvc-j");
  EXPECT_EQ(RawStat(raw_->io(), img.name).features, kDefaultFeatures | RBD_FEATURE_JOURNALING);
}

TEST_F(ImagesTest, ManyMetadataKeysAreAllListed) {
  auto img = Image("vol-meta-many", 64 * kMiB);
  for (int i = 0; i < 150; ++i) img.metadata[fmt::format("csi.k{:03}", i)] = std::string(100, 'a' + i % 26);
  ASSERT_TRUE(kube_->Create(img));
  ASSERT_EQ(RawSetMeta(raw_->io(), img.name, "zzz.after", "x"), 0);
  auto st = kube_->Stat(img.name);
  ASSERT_TRUE(st) << ErrText(st);
  EXPECT_EQ(st->metadata.size(), 150u);
  EXPECT_EQ(st->metadata["csi.k149"], std::string(100, 'a' + 149 % 26));
  EXPECT_EQ(RawMeta(raw_->io(), img.name, "csi.k077"), std::string(100, 'a' + 77 % 26));
}

// The metadata write comes after rbd_create4: a refused key is EINVAL naming
// it, and the image made already is removed again (nothing of it left, not
// even its id object), with either write path.
TEST_F(ImagesTest, FailedMetadataRemovesTheImageAgain) {
  struct Case {
    std::string what;
    std::map<std::string, std::string> metadata;
    uint64_t features;
    std::string named;
  };
  std::vector<Case> cases = {
      // librbd would check a conf_ override's value; we refuse every non-csi key.
      {"conf", {{"csi.name", "x"}, {"conf_rbd_cache", "not-a-bool"}}, kDefaultFeatures, "conf_rbd_cache"},
      {"other", {{"csi.name", "x"}, {"other.key", "y"}}, kDefaultFeatures, "other.key"},
      {"bare", {{"csi.", "y"}}, kDefaultFeatures, "'csi.'"},
      {"nul", {{"csi.name", std::string("a\0b", 3)}}, kDefaultFeatures, "NUL"},
      {"journal", {{"csi.name", "x"}, {"other.key", "y"}}, kDefaultFeatures | RBD_FEATURE_JOURNALING, "other.key"},
  };
  for (const auto& c : cases) {
    auto img = Image("vol-badmeta-" + c.what, 64 * kMiB, c.features);
    img.metadata = c.metadata;
    auto r = kube_->Create(img);
    ASSERT_FALSE(r) << c.what << ": accepted";
    EXPECT_EQ(r.error().code, EINVAL) << c.what << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.named), std::string::npos) << c.what << ": " << r.error().message;
    EXPECT_EQ(RawStat(raw_->io(), img.name).r, -ENOENT) << c.what << ": the half-made image is still there";
    uint64_t size = 0;
    time_t mtime = 0;
    EXPECT_EQ(rados_stat(raw_->io(), ("rbd_id." + img.name).c_str(), &size, &mtime), -ENOENT) << c.what;
    EXPECT_TRUE(raw_->Images(img.name).empty()) << c.what;
  }
}

// The bytes of cls rbd.metadata_set's input, as Ceph's encode(map<string,
// bufferlist>) makes them (little-endian u32 count; u32 length + bytes each).
TEST(ClsEncodingTest, MetadataMapAndStringAreCephsEncoding) {
  std::string got = cls::EncodeMetadata({{"csi.a", "xy"}, {"csi.b", ""}});
  std::string want("\x02\0\0\0"
                   "\x05\0\0\0csi.a\x02\0\0\0xy"
                   "\x05\0\0\0csi.b\0\0\0\0",
                   4 + 4 + 5 + 4 + 2 + 4 + 5 + 4);
  EXPECT_EQ(got, want);
  std::string big;
  cls::PutU32(&big, 0x01020304);
  EXPECT_EQ(big, std::string("\x04\x03\x02\x01", 4));
  EXPECT_EQ(cls::DecodeString(std::string("\x03\0\0\0abc", 7)), "abc");
  EXPECT_EQ(cls::DecodeString(std::string("\x04\0\0\0abc", 7)), std::nullopt) << "short";
  EXPECT_EQ(cls::DecodeString(std::string("\x02\0\0\0abc", 7)), std::nullopt) << "trailing bytes";
  EXPECT_EQ(cls::DecodeString(std::string("\x02\0", 2)), std::nullopt);
}

TEST_F(ImagesTest, ResizeGrowsAndRefusesToShrink) {
  auto img = Image("vol-resize", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  ASSERT_TRUE(kube_->Resize(img.name, 256 * kMiB));
  EXPECT_EQ(RawStat(raw_->io(), img.name).size, 256 * kMiB);
  ASSERT_TRUE(kube_->Resize(img.name, 256 * kMiB)) << "same size is a no-op";
  auto s = kube_->Resize(img.name, 128 * kMiB);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EINVAL);
  EXPECT_EQ(RawStat(raw_->io(), img.name).size, 256 * kMiB);
  auto m = kube_->Resize(Name("missing"), kGiB);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ENOENT);
  EXPECT_NE(m.error().message.find(Name("missing")), std::string::npos) << m.error().message;
}

TEST_F(ImagesTest, FormatLuksWritesAHeaderThePassphraseOpens) {
  auto img = Image("vol-luks", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  auto t0 = std::chrono::steady_clock::now();
  auto f = kube_->FormatLuks(img.name, LuksFormat::kLuks2, Secret("correct horse battery"));
  ASSERT_TRUE(f) << ErrText(f);
  printf("[ measure  ] FormatLuks(LUKS2) took %.1f s\n",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // (A wrong passphrase's refusal is libcryptsetup's business, and costs
  // seconds of key derivation: not checked here.)
  rbd_image_t h = nullptr;
  ASSERT_EQ(rbd_open(raw_->io(), img.name.c_str(), &h, nullptr), 0);
  std::string right = "correct horse battery";
  rbd_encryption_luks2_format_options_t good{RBD_ENCRYPTION_ALGORITHM_AES256, right.data(), right.size()};
  EXPECT_EQ(rbd_encryption_load(h, RBD_ENCRYPTION_FORMAT_LUKS2, &good, sizeof(good)), 0);
  rbd_close(h);
}

TEST_F(ImagesTest, RemoveOfAPlainImageRemovesItAndThenIsNotFound) {
  auto img = Image("vol-rm", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  auto r = kube_->Remove(img.name);
  ASSERT_TRUE(r) << ErrText(r);
  EXPECT_EQ(*r, RemoveOutcome::kRemoved) << "our own read-only handle must not count as a watcher";
  EXPECT_EQ(RawStat(raw_->io(), img.name).r, -ENOENT);
  auto again = kube_->Remove(img.name);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, RemoveOutcome::kNotFound);
  auto st = kube_->Stat(img.name);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ENOENT);
}

TEST_F(ImagesTest, RemoveOfAWatchedImageIsEbusyNamingItAndTheWatchers) {
  auto img = Image("vol-watched", 64 * kMiB);
  ASSERT_TRUE(kube_->Create(img));
  rbd_image_t h = nullptr;  // a read-write open watches the header, as a mapping does
  ASSERT_EQ(rbd_open(raw_->io(), img.name.c_str(), &h, nullptr), 0);
  auto r = kube_->Remove(img.name);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EBUSY);
  EXPECT_NE(r.error().message.find(img.name), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("1 watcher"), std::string::npos) << r.error().message;
  EXPECT_EQ(RawStat(raw_->io(), img.name).r, 0);
  rbd_close(h);
  auto ok = kube_->Remove(img.name);
  ASSERT_TRUE(ok) << ErrText(ok);
  EXPECT_EQ(*ok, RemoveOutcome::kRemoved);
}

double CpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);  // every thread: librados' messengers work for the call too
  auto tv = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

// The number the controller's CreateVolume latency starts from: a bare
// create, and one with a metadata key (what CreateVolume does), with this
// process's CPU per create (the controller is CPU-bound at 8 concurrent);
// and a Stat (what DeleteVolume does first). The third row is librbd's own way
// to set the key (open read-write, rbd_metadata_set with the exclusive lock,
// close), which Create used before the cls write, for comparison.
TEST_F(ImagesTest, CreateLatencyOf10GiBWithDefaultFeatures) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  constexpr int kRuns = 11;
  for (int mode : {0, 1, 2}) {
    bool with_meta = mode == 1;
    std::vector<double> create_ms, remove_ms, stat_ms;
    double create_cpu = 0, stat_cpu = 0;
    for (int i = 0; i < kRuns; ++i) {
      auto img = Image(fmt::format("vol-10g-{}-{}", with_meta, i), 10 * kGiB);
      if (with_meta) img.metadata = {{"csi.name", fmt::format("pvc-{}", i)}};
      double c0 = CpuMs();
      auto t0 = Clock::now();
      ASSERT_TRUE(kube_->Create(img));
      if (mode == 2) {
        ASSERT_EQ(RawSetMeta(raw_->io(), img.name, "csi.name", fmt::format("pvc-{}", i)), 0);
      }
      auto t1 = Clock::now();
      double c1 = CpuMs();
      auto st = kube_->Stat(img.name);
      auto t2 = Clock::now();
      double c2 = CpuMs();
      ASSERT_TRUE(st) << ErrText(st);
      if (mode != 0) {
        EXPECT_EQ(st->metadata.at("csi.name"), fmt::format("pvc-{}", i));
      }
      auto r = kube_->Remove(img.name);
      auto t3 = Clock::now();
      ASSERT_TRUE(r) << ErrText(r);
      ASSERT_EQ(*r, RemoveOutcome::kRemoved);
      create_ms.push_back(ms(t1 - t0));
      stat_ms.push_back(ms(t2 - t1));
      remove_ms.push_back(ms(t3 - t2));
      create_cpu += c1 - c0;
      stat_cpu += c2 - c1;
    }
    std::sort(create_ms.begin(), create_ms.end());
    std::sort(remove_ms.begin(), remove_ms.end());
    std::sort(stat_ms.begin(), stat_ms.end());
    auto line = fmt::format(
        "Create 10 GiB, default features{}: min {:.1f} / median {:.1f} / max {:.1f} ms, CPU {:.1f} ms per create; "
        "Stat: median {:.1f} ms, CPU {:.1f} ms; Remove: median {:.1f} ms ({} runs)",
        mode == 0 ? "" : mode == 1 ? " + 1 metadata key" : " + 1 key through librbd's open/set/close", create_ms.front(), create_ms[kRuns / 2], create_ms.back(),
        create_cpu / kRuns, stat_ms[kRuns / 2], stat_cpu / kRuns, remove_ms[kRuns / 2], kRuns);
    printf("[ measure  ] %s\n", line.c_str());
    RecordProperty(mode == 0 ? "create_10g_median_ms" : mode == 1 ? "create_10g_meta_median_ms" : "create_10g_librbd_meta_median_ms",
                   fmt::format("{:.1f}", create_ms[kRuns / 2]));
    EXPECT_LT(create_ms[kRuns / 2], 10000.0) << line;
  }
}

}  // namespace
}  // namespace rbdnbd::csi::test
