// DeviceManager: the daemon's devices. Maps RBD images to /dev/nbdX (the NBD
// socket frontend) or /dev/ublkbN (the ublk frontend, `map -t ublk`), both
// served on the same loops and backends; unmaps them, keeps the state file
// (one list, both kinds), reattaches after a restart or a dead link, and
// follows image resizes.
//
// Contract
// --------
// * Every public method is thread-safe: control-API client threads, the
//   reattach workers and the daemon's main thread call in. None runs on a loop.
// * mu_ is never held across a network wait or a slow kernel step. Map,
//   Attach and Unmap reserve their entry under mu_, do the slow work (the
//   cluster connect, up to connect_timeout; the netlink CONNECT and its sysfs
//   wait; an unmap's drain) without it, and commit under mu_. So one slow map
//   delays no status call, no other device's reattach and no SIGTERM.
// * Map() is all-or-nothing: on any failure nothing stays mapped, locked or
//   recorded. On success the state file already lists the device. Map() of a
//   spec that is already mapped with the same options returns that device
//   (idempotent); with other options it is EEXIST, naming the difference.
// * Unmap() refuses a device that is in use (mounted, or opened O_EXCL by
//   anyone) unless `force`.
// * ublk devices: one queue per loop, depth 128 and largest request 512 KiB
//   unless the map says otherwise (queue_depth, max_io_bytes: checked before
//   anything is opened against the kernel's limits and the buffer memory of
//   loops x depth x max I/O, see ublk_params.h; kept in the record, so a
//   restart recovers the same shape), 512-byte blocks (4096 with
//   LUKS), read-only for snapshots and read-only maps, and always added with
//   UBLK_F_USER_RECOVERY|UBLK_F_USER_RECOVERY_REISSUE, so that while no
//   daemon runs the kernel keeps /dev/ublkbN quiesced with its I/O held, and
//   the next daemon's Restore() takes it over (UblkDevice::Recover). "The
//   kernel holds it" means GET_DEV_INFO finds it. Their ids are a space of
//   their own: /dev/nbd0 and /dev/ublkb0 are two devices. A ublk device
//   cannot be detach()ed while the daemon runs (its queues' commands live on
//   the daemon's rings): DetachAll() on the way out leaves it to the kernel.
// * Keys never reach the state file: it stores keyring/keyfile paths; a key
//   given in memory is parked in the kernel keyring (see kernel_keyring.h).
// * A record is forgotten in three cases only: an explicit unmap; the kernel
//   no longer holds the device (netlink STATUS); the image itself is gone
//   (the device is then disconnected, so its held I/O fails now, not at the
//   end of the reattach window). Anything else (monitors down, hung or
//   refusing, OSDs away) is retried with backoff for as long as the kernel
//   holds the device, and List() shows it as "reattaching" with its last error.
// * Quiesce: every writable device it serves (map, attach, reattach) has
//   librbd's quiesce watch (quiesce_watch.h): a snapshot with quiesce
//   freezes the filesystems mounted from it, or runs --quiesce-hook. Unmap,
//   Detach and DetachAll end the watch, which thaws, before the device goes.
// * The daemon's main thread calls CheckDevices() (once a second, and when
//   librbd reports an image header change or a device loses a connection,
//   through `on_image_update`, which may run on any thread and only wakes).
//
// Device lifecycle (one entry per /dev/nbdN or /dev/ublkbN; for ublk "attach"
// is UblkDevice::Recover and "dead link" does not occur):
//
//   Map() ──reserve──► connect, CONNECT ──commit──► mapped ◄──────────┐
//                                                    │  │  │          │ attach worked
//   Restore() / state file ──► reattaching ◄─────────┘  │  │   (worker thread, backoff
//        │     │  ▲ retry with backoff    dead link       │  │    1 s .. 5 s)
//        │     │  └───────────┘        (CheckDevices)     │  └── Unmap() ──► unmapping ──► gone
//        │     └── image gone / kernel dropped it ──► gone│
//        └── Unmap(): DISCONNECT ──► gone                 └── Detach(): kernel keeps it,
//                                                             the state file keeps the record
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/messages.h"
#include "common/result.h"
#include "control/daemon_metrics.h"
#include "control/device_health.h"
#include "control/map_request.h"
#include "control/quiesce_watch.h"
#include "control/state_store.h"
#include "device/kernel_device.h"
#include "ublk/ublk_control.h"
#include "ublk/ublk_device.h"
#include "netlink/nbd_netlink.h"
#include "rbd/cluster.h"
#include "rbd/rbd_backend.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

struct MappedInfo {
  DeviceRecord record;
  std::string device;  // /dev/nbdN or /dev/ublkbN
  size_t live_connections = 0;  // ublk: its queues while served
  uint64_t size = 0;        // the kernel device's size
  uint64_t image_size = 0;  // the image's size as the backend sees it now (0: not open)
  bool kernel_connected = true;  // netlink STATUS: the kernel still has the device
  // kMapped: served. kReattaching: the kernel holds the device and its I/O,
  // and the daemon keeps trying to serve it again (restore or dead link);
  // last_error says why the last try failed. kUnmapping: an unmap is running.
  api::DeviceState state = api::DeviceState::kMapped;
  std::string last_error;
  uint64_t last_error_unix = 0;  // seconds since the epoch; 0: none
  uint32_t reattach_attempts = 0;
  bool already_mapped = false;  // Map(): the spec was mapped already with these options
  api::DeviceHealth health;     // see api::DeviceHealth and device_health.h
};

class DeviceManager {
 public:
  // `nl` null: the ioctl fallback (kernel without the nbd netlink family).
  DeviceManager(std::unique_ptr<NbdNetlink> nl, LoopPool& loops, StateStore store,
                std::function<void()> on_image_update);
  ~DeviceManager();  // stops the reattach workers (see DetachAll)

  // How devices answer librbd's quiesce requests. Main thread, before
  // Restore() and before the control socket opens (read without mu_ later).
  void SetQuiesceOptions(QuiesceOptions options) { quiesce_options_ = std::move(options); }

  Result<MappedInfo> Map(MapRequest request);
  Result<void> Unmap(const std::string& target, bool force);
  Result<MappedInfo> Attach(const DeviceRecord& record);  // a device the kernel still holds
  Result<void> Detach(const std::string& target);        // leave it in the kernel
  // Every device, with its health (a fresh look at its I/O).
  std::vector<MappedInfo> List();
  // A scrape: per-device I/O and daemon values, devices by state, cluster
  // connections. Holds mu_ only to copy (no kernel or network round trip).
  ManagerMetrics Metrics();
  // Main thread, about once a second: a look at every device's I/O, for the
  // 60 s error window and the stall clocks (health needs no scrape).
  void SampleHealth();
  // False: the ioctl fallback, whose devices do not survive a daemon restart.
  bool uses_netlink() const { return nl_ != nullptr; }

  // Daemon start: takes every record of the state file that the kernel still
  // holds and reattaches each on a worker of its own. Waits up to
  // `first_try` for the first attempts (so that a healthy cluster finds every
  // device served when the control socket opens), then returns how many
  // devices it took; the rest keep retrying in the background.
  size_t Restore(std::chrono::milliseconds first_try = std::chrono::seconds(10));
  // SIGTERM: stop the reattach workers (an attempt in flight finishes first,
  // bounded by its connect timeout), detach every device, keep the state file
  // for the next daemon.
  void DetachAll();
  // Kernel reported every connection of /dev/nbd<index> dead.
  void OnLinkDead(uint32_t index);
  // Follows resizes, replaces dead connections, forgets devices the kernel
  // dropped. Main thread.
  void CheckDevices();

 private:
  enum class State { kMapped, kReattaching, kUnmapping };
  // A device's key: its type and index (nbd indexes and ublk ids are apart).
  using Key = uint64_t;
  static Key KeyOf(DeviceType type, uint32_t index) { return (uint64_t{static_cast<uint8_t>(type)} << 32) | index; }
  static Key KeyOf(const DeviceRecord& r) { return KeyOf(r.type, r.index); }
  struct Entry {
    DeviceRecord record;
    State state = State::kMapped;
    std::shared_ptr<RbdBackend> backend;  // null while reattaching
    std::unique_ptr<KernelDevice> device;  // nbd; null while reattaching
    std::unique_ptr<UblkDevice> ublk;      // ublk; null while reattaching
    // After `device`, so that it goes first: nothing stays frozen under a
    // device that is going away. Null while reattaching and for read-only maps.
    std::unique_ptr<RbdQuiesceWatch> quiesce;
    std::string last_error;
    uint64_t last_error_unix = 0;
    uint32_t attempts = 0;
    // The device's I/O statistics, kept for the whole life of the entry (every
    // KernelDevice that serves it feeds them), and what health remembers.
    std::shared_ptr<DeviceIoStats> io_stats = DeviceIoStats::Create();
    DeviceVitals vitals{MonotonicNowNs()};
    bool first_try_done = false;
    bool worker_active = false;  // a ReattachWorker owns this entry's attempts
    uint64_t resize_refused = 0;  // ublk: the size the kernel could not take (logged once)
  };
  // A device served again: what an attach attempt hands to the commit.
  struct Served {
    std::shared_ptr<RbdBackend> backend;
    std::unique_ptr<KernelDevice> device;
    std::unique_ptr<UblkDevice> ublk;
    std::unique_ptr<RbdQuiesceWatch> quiesce;  // after device: destroyed first
    std::string client_addr;
  };

  Result<std::shared_ptr<RbdBackend>> OpenBackend(const DeviceRecord& r, ClusterOptions cluster,
                                                  RbdOpenOptions image, bool* image_gone = nullptr);
  // The slow part of taking over a device the kernel holds: no lock held.
  // On failure *image_gone says whether the image itself is gone (no retry).
  Result<Served> AttachWork(const DeviceRecord& record, std::shared_ptr<DeviceIoStats> io_stats, bool* image_gone);
  void ReattachWorker(std::shared_ptr<Entry> entry);
  void StartWorkerLocked(const std::shared_ptr<Entry>& entry);
  void StopWorkers();
  // True if the kernel still has the device configured; nullopt: unknown.
  std::optional<bool> KernelHolds(const DeviceRecord& r);
  // Takes away a device the kernel holds and nothing of ours serves, failing its held I/O.
  Result<void> DropHeld(const DeviceRecord& r);
  void ForgetLocked(Key key, const char* why);
  // /dev/ublk-control, opened on first use (a node without ublk_drv maps nbd only).
  Result<UblkControl*> UblkCtl();
  // The ublk frontend's Add/Recover parameters for `record`.
  static UblkDeviceParams UblkParamsFor(const DeviceRecord& record);
  std::shared_ptr<Entry> Find(const std::string& target);
  Result<void> SaveLocked();
  MappedInfo InfoOf(const Entry& e);
  // The state status reports: kMapped with every connection dead is reattaching.
  static api::DeviceState StateOf(const Entry& e);
  // A served ublk device whose image changed size: UPDATE_SIZE, or a clear
  // error (once per size) where the kernel lacks it.
  void CheckUblkSizeLocked(Entry& e);
  // A failure of the control path (a reattach try) on this device.
  static void SetErrorLocked(Entry& e, std::string message);
  bool IndexTakenLocked(Key key) const;

  std::mutex mu_;
  std::condition_variable cv_;  // worker wake-ups, first tries, stop
  std::unique_ptr<NbdNetlink> nl_;
  LoopPool& loops_;
  StateStore store_;
  std::function<void()> on_image_update_;
  QuiesceOptions quiesce_options_;
  ClusterPool clusters_;
  std::mutex ublk_ctl_mu_;                   // guards opening ublk_ctl_ (its calls lock themselves)
  std::unique_ptr<UblkControl> ublk_ctl_;    // before devices_: outlives every UblkDevice
  std::map<Key, std::shared_ptr<Entry>> devices_;
  std::map<Key, DeviceRecord> detached_;     // Detach()ed: kept in the state file
  std::set<std::string> mapping_specs_;      // maps in flight (reserved specs)
  std::set<Key> reserved_indexes_;           // devices of maps/attaches in flight
  std::mutex ioctl_map_mu_;  // the ioctl path picks a free device itself: one map at a time
  std::vector<std::thread> workers_;
  size_t running_workers_ = 0;
  bool stopping_ = false;
};

std::string NewCookie();

}  // namespace rbdnbd
