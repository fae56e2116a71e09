// The fixture of the ControllerOps tests: a FakeCephStore with pools "kube"
// and "rbd" (and namespace "kube/team"), user client.kube, a cluster config
// naming the cluster "dev", and helpers to create volumes and snapshots.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "csi/controller/controller_ops.h"
#include "csi/csi_error.h"
#include "fake_ceph_store.h"

namespace rbdnbd::csi::testing {

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = std::filesystem::path("/tmp") /
           ("rbd-nbdd-csi-ctl-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "config.json") << R"([{"clusterID": "dev", "monitors": ["127.0.0.1:14200"]},
                                               {"clusterID": "far", "monitors": ["192.0.2.1:6789"]}])";
    store_.AddPool("kube");
    store_.AddPool("rbd");
    store_.AddPool("kube", "team");
    store_.AddUser("client.kube", kKubeKey);
    options_.cluster_config = (dir_ / "config.json").string();
    options_.max_clone_depth = 8;
    ops_ = std::make_unique<ControllerOps>(&store_, options_);
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Restart() { ops_ = std::make_unique<ControllerOps>(&store_, options_); }

  static StringMap Secrets() { return {{"userID", "kube"}, {"userKey", kKubeKey}}; }

  static CreateVolumeArgs Args(const std::string& name, int64_t bytes = 0) {
    CreateVolumeArgs a;
    a.name = name;
    a.required_bytes = bytes;
    a.parameters = {{"clusterID", "dev"}, {"pool", "kube"}};
    a.secrets = Secrets();
    return a;
  }

  VolumeInfo MustCreate(const CreateVolumeArgs& args) {
    auto v = ops_->CreateVolume(args);
    EXPECT_TRUE(v) << v.error().message;
    return v ? *v : VolumeInfo{};
  }

  SnapshotInfo MustSnapshot(const std::string& volume_id, const std::string& name) {
    auto s = ops_->CreateSnapshot(volume_id, name, {}, Secrets());
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : SnapshotInfo{};
  }

  static std::string ImageOf(const VolumeInfo& v) { return v.context.at("imageName"); }

  std::filesystem::path dir_;
  FakeCephStore store_;
  ControllerOptions options_;
  std::unique_ptr<ControllerOps> ops_;
};

inline constexpr uint64_t kMiBytes = 1ULL << 20;

}  // namespace rbdnbd::csi::testing
