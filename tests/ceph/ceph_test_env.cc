#include "tests/ceph/ceph_test_env.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace rbdnbd::csi::test {
namespace {

// The key of [client.NAME] in a keyring file ("" when absent).
std::string KeyringKey(const std::string& path, const std::string& entity) {
  std::ifstream in(path);
  std::string line, section;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    line = line.substr(b);
    if (line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    if (section != entity || !line.starts_with("key")) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string v = line.substr(eq + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t\r") + 1);
    return v;
  }
  return "";
}

Cluster* LoadCluster() {
  auto* c = new Cluster;
  const char* mon = getenv("CEPH_MON_HOST");
  const char* admin = getenv("CEPH_KEYRING");
  const char* kube = getenv("CEPH_KUBE_KEYRING");
  if (mon != nullptr) c->mon_host = mon;
  if (admin != nullptr) c->admin_key = Secret(KeyringKey(admin, "client.admin"));
  if (kube != nullptr) c->kube_key = Secret(KeyringKey(kube, "client.kube"));
  return c;
}

}  // namespace

const Cluster& TheCluster() {
  static const Cluster* c = LoadCluster();
  return *c;
}

CephUser Kube() {
  CephUser u;
  u.client_name = "client.kube";
  u.key = TheCluster().kube_key;
  u.connect_timeout = std::chrono::seconds(20);
  return u;
}

CephUser Admin() {
  CephUser u;
  u.client_name = "client.admin";
  u.key = TheCluster().admin_key;
  u.connect_timeout = std::chrono::seconds(20);
  return u;
}

CephTarget Target(const std::string& pool, const std::string& ns) { return {TheCluster().mon_host, pool, ns}; }

RawAdmin::RawAdmin() {
  if (rados_create2(&cluster_, "ceph", "client.admin", 0) < 0) return;
  rados_conf_read_file(cluster_, "/dev/null");
  rados_conf_set(cluster_, "mon_host", TheCluster().mon_host.c_str());
  rados_conf_set(cluster_, "key", TheCluster().admin_key.reveal().c_str());
  rados_conf_set(cluster_, "client_mount_timeout", "20");
  rados_conf_set(cluster_, "rados_mon_op_timeout", "20");
  rados_conf_set(cluster_, "log_to_stderr", "false");
  rados_conf_set(cluster_, "err_to_stderr", "false");
  if (rados_connect(cluster_) < 0) return;
  if (rados_ioctx_create(cluster_, kPool, &io_) < 0) io_ = nullptr;
}

RawAdmin::~RawAdmin() {
  if (io_ != nullptr) rados_ioctx_destroy(io_);
  if (cluster_ != nullptr) rados_shutdown(cluster_);
}

std::vector<std::string> RawAdmin::Images(const std::string& prefix) const {
  std::vector<rbd_image_spec_t> specs(64);
  size_t n = specs.size();
  int r = rbd_list2(io_, specs.data(), &n);
  if (r == -ERANGE) {
    specs.resize(n);
    r = rbd_list2(io_, specs.data(), &n);
  }
  std::vector<std::string> out;
  if (r < 0) return out;
  for (size_t i = 0; i < n; ++i) {
    std::string name = specs[i].name;
    if (name.starts_with(prefix)) out.push_back(name);
  }
  rbd_image_spec_list_cleanup(specs.data(), n);
  return out;
}

std::vector<std::pair<std::string, rbd_snap_namespace_type_t>> RawAdmin::Snaps(const std::string& image) const {
  std::vector<std::pair<std::string, rbd_snap_namespace_type_t>> out;
  rbd_image_t img = nullptr;
  if (rbd_open_read_only(io_, image.c_str(), &img, nullptr) < 0) return out;
  std::vector<rbd_snap_info_t> snaps(64);
  int max = static_cast<int>(snaps.size());
  int n = rbd_snap_list(img, snaps.data(), &max);
  for (int i = 0; i < n; ++i) {
    rbd_snap_namespace_type_t t = RBD_SNAP_NAMESPACE_TYPE_USER;
    rbd_snap_get_namespace_type(img, snaps[i].id, &t);
    out.emplace_back(snaps[i].name, t);
  }
  if (n >= 0) rbd_snap_list_end(snaps.data());
  rbd_close(img);
  return out;
}

int RawAdmin::OmapKeys(const std::string& object) const {
  rados_read_op_t op = rados_create_read_op();
  rados_omap_iter_t it = nullptr;
  unsigned char more = 0;
  int prval = 0;
  rados_read_op_omap_get_keys2(op, "", 100000, &it, &more, &prval);
  int r = rados_read_op_operate(op, io_, object.c_str(), 0);
  rados_release_read_op(op);
  if (r == -ENOENT) return -1;
  if (r < 0 || prval < 0) return -2;
  int n = static_cast<int>(rados_omap_iter_size(it));
  rados_omap_get_end(it);
  return n;
}

std::string RawAdmin::MonCommand(const std::string& json) const {
  const char* cmd[] = {json.c_str()};
  char *out = nullptr, *status = nullptr;
  size_t out_len = 0, status_len = 0;
  int r = rados_mon_command(cluster_, cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  std::string answer = r < 0 || out == nullptr ? "" : std::string(out, out_len);
  rados_buffer_free(out);
  rados_buffer_free(status);
  return answer;
}

void StoreTest::SetUp() {
  const Cluster& c = TheCluster();
  ASSERT_FALSE(c.mon_host.empty()) << "set CEPH_MON_HOST (deploy/dev-cluster.sh env)";
  ASSERT_FALSE(c.admin_key.empty()) << "set CEPH_KEYRING to a keyring holding client.admin";
  ASSERT_FALSE(c.kube_key.empty()) << "set CEPH_KUBE_KEYRING to a keyring holding client.kube";
  static std::mt19937_64 rng(std::random_device{}());
  prefix_ = fmt::format("csi-t{:06x}-", rng() & 0xffffff);
  store_ = MakeLibrbdStore({});
  auto k = store_->Open(Target(), Kube());
  ASSERT_TRUE(k) << ErrText(k);
  kube_ = std::move(*k);
  auto a = store_->Open(Target(), Admin());
  ASSERT_TRUE(a) << ErrText(a);
  admin_ = std::move(*a);
  raw_ = std::make_unique<RawAdmin>();
  ASSERT_TRUE(raw_->ok()) << "raw admin connection failed";
}

NewImage StoreTest::Image(const std::string& what, uint64_t size, uint64_t features) const {
  NewImage i;
  i.name = Name(what);
  i.size_bytes = size;
  i.features = features;
  return i;
}

std::string StoreTest::Sweep() {
  if (admin_ == nullptr || raw_ == nullptr || !raw_->ok()) return "";
  for (int round = 0; round < 8; ++round) {
    auto images = raw_->Images(prefix_);
    auto trash = admin_->CountTrash(prefix_);
    if (images.empty() && trash && *trash == 0) return "";
    for (const auto& name : images) {
      // User snapshots first (those with clones go to the trash namespace).
      for (const auto& [snap, type] : raw_->Snaps(name)) {
        if (type == RBD_SNAP_NAMESPACE_TYPE_USER) (void)admin_->RemoveSnapshot(name, snap);
      }
      (void)admin_->Remove(name);
    }
    (void)admin_->PurgeTrash(prefix_);
  }
  auto images = raw_->Images(prefix_);
  auto trash = admin_->CountTrash(prefix_);
  return fmt::format("left behind: {} image(s) ({}), {} trash entr(ies)", images.size(),
                     images.empty() ? "" : images.front(), trash ? *trash : -1);
}

void StoreTest::TearDown() {
  std::string left = Sweep();
  EXPECT_EQ(left, "");
  kube_.reset();
  admin_.reset();
  store_.reset();
  raw_.reset();
}

std::string RawMeta(rados_ioctx_t io, const std::string& name, const std::string& key) {
  rbd_image_t img = nullptr;
  if (rbd_open_read_only(io, name.c_str(), &img, nullptr) < 0) return "<no image>";
  std::vector<char> v(256);
  size_t len = v.size();
  int r = rbd_metadata_get(img, key.c_str(), v.data(), &len);
  if (r == -ERANGE) {
    v.resize(len);
    r = rbd_metadata_get(img, key.c_str(), v.data(), &len);
  }
  rbd_close(img);
  return r < 0 ? "<none>" : std::string(v.data());
}

int RawSetMeta(rados_ioctx_t io, const std::string& name, const std::string& key, const std::string& value) {
  rbd_image_t img = nullptr;
  if (int r = rbd_open(io, name.c_str(), &img, nullptr); r < 0) return r;
  int r = rbd_metadata_set(img, key.c_str(), value.c_str());
  rbd_close(img);
  return r;
}

}  // namespace rbdnbd::csi::test
