// NodeFixture: the node plugin's logic wired to the fakes of fakes.h, as
// PluginServer wires the real parts: a VolumeStore and a cluster config (clusterID
// "dev") in a temp dir of the test's own, the fake mounter, filesystem tools and
// block devices, and the fake daemon client behind WithCsiCodes() (the node logic
// sees the daemon's errors as plugin codes; `daemon_` scripts the fake).
// Test thread only.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "csi/csi_error.h"
#include "csi/daemon_client.h"
#include "csi/node_context.h"
#include "csi/volume_locks.h"
#include "csi/volume_store.h"
#include "fakes.h"

namespace rbdnbd::csi::testing {

class NodeFixture : public ::testing::Test {
 protected:
  // The temp dir ("PREFIX-PID-TESTNAME", made anew), the store and ctx_.
  void SetUpNode(const std::string& prefix) {
    root_ = std::filesystem::path(::testing::TempDir()) /
            (prefix + "-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    auto s = VolumeStore::Create((root_ / "state").string());
    ASSERT_TRUE(s);
    store_.emplace(std::move(s).value());
    ctx_.store = &*store_;
    ctx_.locks = &locks_;
    ctx_.mounter = &mounter_;
    ctx_.fs = &fs_;
    ctx_.devices = &devices_;
    ctx_.daemon = coded_daemon_.get();
    ctx_.cluster_config_path = (root_ / "config.json").string();
    std::ofstream(ctx_.cluster_config_path) << R"([{"clusterID": "dev", "monitors": ["127.0.0.1:14200"]}])";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
  std::optional<VolumeStore> store_;
  VolumeLocks locks_;
  FakeMounter mounter_;
  FakeFsTools fs_;
  FakeBlockDevices devices_;
  std::unique_ptr<FakeDaemonClient> owned_daemon_ = std::make_unique<FakeDaemonClient>();
  FakeDaemonClient& daemon_ = *owned_daemon_;
  std::unique_ptr<DaemonClient> coded_daemon_ = WithCsiCodes(std::move(owned_daemon_));
  NodeContext ctx_;
};

}  // namespace rbdnbd::csi::testing
