// DeviceManager: the daemon's devices. Maps RBD images to /dev/nbdX, unmaps
// them, keeps the state file, reattaches after a restart or a dead link, and
// follows image resizes.
//
// Contract
// --------
// * Every public method is thread-safe (one mutex): control-API client
//   threads and the daemon's main thread call in. None runs on a loop.
// * Map() is all-or-nothing: on any failure nothing stays mapped, locked or
//   recorded. On success the state file already lists the device.
// * Unmap() refuses a device that is in use (mounted, or opened O_EXCL by
//   anyone) unless `force`.
// * Keys never reach the state file: it stores keyring/keyfile paths; a key
//   given in memory is parked in the kernel keyring (see kernel_keyring.h).
// * NotifyResize() may be called from any thread (librbd's update callback
//   through the daemon); the resize itself runs in CheckResizes() on the
//   daemon's main thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/map_request.h"
#include "control/state_store.h"
#include "device/kernel_device.h"
#include "netlink/nbd_netlink.h"
#include "rbd/cluster.h"
#include "rbd/rbd_backend.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

struct MappedInfo {
  DeviceRecord record;
  std::string device;  // /dev/nbdN
  size_t live_connections = 0;
  uint64_t size = 0;
  bool kernel_connected = true;  // netlink STATUS: the kernel still has the device
  // "mapped": served. "reattaching": the kernel holds the device and its I/O,
  // and the daemon keeps trying to serve it again (restore or dead link);
  // last_error says why the last try failed.
  std::string state = "mapped";
  std::string last_error;
  uint64_t last_error_unix = 0;  // seconds since the epoch; 0: none
  uint32_t reattach_attempts = 0;
};

class DeviceManager {
 public:
  // `nl` null: the ioctl fallback (kernel without the nbd netlink family).
  DeviceManager(std::unique_ptr<NbdNetlink> nl, LoopPool& loops, StateStore store,
                std::function<void()> on_image_update);
  ~DeviceManager();

  Result<MappedInfo> Map(MapRequest request);
  Result<void> Unmap(const std::string& target, bool force);
  Result<MappedInfo> Attach(const DeviceRecord& record);  // a device the kernel still holds
  Result<void> Detach(const std::string& target);        // leave it in the kernel
  std::vector<MappedInfo> List();
  // False: the ioctl fallback, whose devices do not survive a daemon restart.
  bool uses_netlink() const { return nl_ != nullptr; }

  // Daemon start: reattach everything in the state file. Returns how many.
  size_t Restore();
  // SIGTERM: detach every device, keep the state file for the next daemon.
  void DetachAll();
  // Kernel reported every connection of this device dead.
  void OnLinkDead(uint32_t index);
  // Follows resizes and reattaches devices that lost connections. Main thread.
  void CheckDevices();

 private:
  struct Entry {
    DeviceRecord record;
    std::shared_ptr<RbdBackend> backend;
    std::unique_ptr<KernelDevice> device;
  };
  Result<std::shared_ptr<RbdBackend>> OpenBackend(const DeviceRecord& r, ClusterOptions cluster,
                                                  RbdOpenOptions image);
  Result<MappedInfo> AttachLocked(const DeviceRecord& record);
  Entry* Find(const std::string& target);
  Result<void> SaveLocked();
  MappedInfo InfoOf(const Entry& e);

  std::mutex mu_;
  std::unique_ptr<NbdNetlink> nl_;
  LoopPool& loops_;
  StateStore store_;
  std::function<void()> on_image_update_;
  ClusterPool clusters_;
  std::map<uint32_t, Entry> devices_;  // by index
};

std::string NewCookie();

}  // namespace rbdnbd
