// In-memory stand-ins for the plugin's host helpers (mounts, filesystem
// tools, block device sizes, the rbd-nbdd daemon), so stage/publish/expand
// logic runs in unit tests without root, a kernel device or a cluster.
// Each records what it was asked to do; tests inject failures through the
// public fields. Thread-safe enough for the tests (one mutex each).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "csi/block_device.h"
#include "csi/daemon_client.h"
#include "csi/device_type.h"
#include "csi/fs_tools.h"
#include "csi/mounter.h"

namespace rbdnbd::csi::testing {

class FakeMounter : public Mounter {
 public:
  Result<std::optional<MountEntry>> MountAt(const std::string& path) override;
  Result<void> Mount(const std::string& source, const std::string& target, const std::string& fs_type,
                     const std::vector<std::string>& options) override;
  Result<void> BindMount(const std::string& source, const std::string& target, bool read_only) override;
  Result<void> Unmount(const std::string& target) override;

  std::vector<MountEntry> table;
  std::vector<std::vector<std::string>> mount_options;  // per Mount() call
  int mounts = 0, binds = 0, unmounts = 0;
  int fail_mount = 0;     // errno for Mount(), 0: succeed
  int fail_unmount = 0;   // errno for Unmount()
};

class FakeFsTools : public FsTools {
 public:
  Result<DeviceProbe> Probe(const std::string& device) override;
  Result<void> MakeFs(const std::string& device, const std::string& fs_type,
                      const std::vector<std::string>& options = {}) override;
  std::vector<std::string> mkfs_options;  // what the last MakeFs got
  Result<void> Check(const std::string& device) override;
  Result<void> Grow(const std::string& device, const std::string& mount_point, const std::string& fs_type) override;

  std::map<std::string, DeviceProbe> probes;  // device -> what blkid says; default blank
  std::vector<std::string> made;              // "dev:type"
  std::vector<std::string> checked;
  std::vector<std::string> grown;             // "dev:mount_point:type"
  int fail_mkfs = 0;
  int fail_check = 0;
};

class FakeBlockDevices : public BlockDevices {
 public:
  Result<uint64_t> Size(const std::string& device) override;

  std::map<std::string, uint64_t> sizes;
  // Called on each Size(): lets a test grow a device "in the kernel".
  std::function<void(FakeBlockDevices*)> on_size;
  int calls = 0;
};

class FakeDaemonClient : public DaemonClient {
 public:
  Result<DaemonStatus> Status() override;
  Result<MapResult> Map(const VolumeParams& params, bool read_only) override;
  Result<void> Unmap(const std::string& target) override;
  const std::string& socket_path() const override { return socket_; }

  std::mutex mu;
  std::vector<MappedDevice> devices;
  int maps = 0, unmaps = 0;
  bool last_read_only = false;
  std::string last_device_type;  // the request's device_type ("nbd" or "ublk"; /dev/ublkbN for ublk)
  std::string last_key;  // what Map() received (to check it arrived)
  int fail_map = 0;      // errno the "daemon" answers a map with
  int fail_unmap = 0;
  bool ignores_device_type = false;  // an old daemon: maps nbd whatever is asked
  bool unreachable = false;
  std::function<void()> on_map;  // runs inside Map(), before it succeeds
  std::string socket_ = "/fake/control.sock";
};

// The node's ublk support as a test sets it (no kernel): counts its probes.
class FakeUblkProbe : public UblkProbe {
 public:
  UblkSupport Probe() override {
    std::lock_guard lock(mu);
    ++probes;
    return support;
  }
  static UblkSupport NoDriver() { return {false, false, 0, "/dev/ublk-control does not exist"}; }
  static UblkSupport Features(uint64_t features) { return {true, true, features, ""}; }

  std::mutex mu;
  UblkSupport support = NoDriver();
  int probes = 0;
};

}  // namespace rbdnbd::csi::testing
