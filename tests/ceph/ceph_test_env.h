// What csi_ceph_store_test needs of the dev cluster: its monitors and two
// users (client.admin and client.kube: mon 'profile rbd', osd 'profile rbd
// pool=kube'), read from the environment that deploy/dev-cluster.sh env and
// tests/lib/ceph.sh export:
//   CEPH_MON_HOST       the monitors
//   CEPH_KEYRING        a keyring file holding client.admin's key
//   CEPH_KUBE_KEYRING   a keyring file holding client.kube's key
// Keys come from files only (never argv, never printed).
//
// StoreTest, the fixture of every test: a store, sessions for both users on
// pool kube, a raw librados/librbd connection as client.admin for checks the
// store does not offer, and a name prefix of its own; at the end it removes
// every image and trash entry with that prefix and fails if one is left.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "csi/controller/ceph_store.h"
#include "csi/controller/librbd_store.h"

namespace rbdnbd::csi::test {

struct Cluster {
  std::string mon_host;
  Secret admin_key;
  Secret kube_key;
};

// The cluster from the environment; a fatal test failure when it is missing.
const Cluster& TheCluster();

constexpr const char* kPool = "kube";
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
// Pacific's default features (what a StorageClass gets by default).
constexpr uint64_t kDefaultFeatures = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
                                      RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;

CephUser Kube();
CephUser Admin();
CephTarget Target(const std::string& pool = kPool, const std::string& ns = "");

// A raw connection as client.admin (for checks, and to play a mapping client).
class RawAdmin {
 public:
  RawAdmin();
  ~RawAdmin();
  rados_t cluster() const { return cluster_; }
  rados_ioctx_t io() const { return io_; }  // pool kube
  bool ok() const { return io_ != nullptr; }
  // Head images of pool kube whose name starts with `prefix`.
  std::vector<std::string> Images(const std::string& prefix) const;
  // Snapshots of every namespace: (name, namespace type).
  std::vector<std::pair<std::string, rbd_snap_namespace_type_t>> Snaps(const std::string& image) const;
  // Omap keys of an object in pool kube; -1 if the object does not exist.
  int OmapKeys(const std::string& object) const;
  // A monitor command's JSON answer; "" on failure.
  std::string MonCommand(const std::string& json) const;

 private:
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A name unique to this test: "<prefix><what>".
  std::string Name(const std::string& what) const { return prefix_ + what; }
  NewImage Image(const std::string& what, uint64_t size, uint64_t features = kDefaultFeatures) const;
  // Removes every image and trash entry of ours (snapshots first); returns
  // what is left, as a message ("" when nothing is).
  std::string Sweep();

  std::unique_ptr<CephStore> store_;
  std::unique_ptr<CephSession> kube_;
  std::unique_ptr<CephSession> admin_;
  std::unique_ptr<RawAdmin> raw_;
  std::string prefix_;
};

// An image's metadata value read through librbd itself (an open image and
// rbd_metadata_get, as rbd image-meta get does): "<no image>" or "<none>".
std::string RawMeta(rados_ioctx_t io, const std::string& name, const std::string& key);
// Sets a metadata key through librbd itself; librbd's return code.
int RawSetMeta(rados_ioctx_t io, const std::string& name, const std::string& key, const std::string& value);

// Gtest helpers: the Result's error as text, for failure messages.
template <typename T>
std::string ErrText(const Result<T>& r) {
  return r ? std::string("ok") : fmt::format("[{}] {}", r.error().code, r.error().message);
}

}  // namespace rbdnbd::csi::test
