// KernelDevice: one /dev/nbdX backed by one Export, served over N socketpairs
// (one Connection per socket, spread over the worker loops).
//
// Contract
// --------
// * Control thread only (the DeviceManager's). Connections live on their
//   loops; this class reaches them only through EventLoop::Post.
// * Our ends of the socketpairs are already being served before the kernel
//   gets its ends, because the kernel starts I/O (partition scan) at once.
// * Lifecycle:
//
//     Map() ──CONNECT──► mapped ──Unmap(): DISCONNECT──► kernel sends DISC,
//       │                  │  ▲                           connections drain ──► gone
//       │                  │  └── Reattach(): new sockets, RECONFIGURE
//       │                  │       (after LINK_DEAD, or by a new daemon)
//       │                  └── Detach(): connections drain and close; the kernel
//       │                       keeps the device and holds I/O for dead_conn_timeout
//     Attach() (new daemon, device already in the kernel) ──RECONFIGURE──► mapped
//
// * WaitReady() polls /sys/block/nbdN/size (never udev).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "device/connection.h"
#include "device/export.h"
#include "netlink/nbd_ioctl.h"
#include "netlink/nbd_netlink.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

struct KernelDeviceParams {
  std::optional<uint32_t> index;   // --device
  uint32_t connections = 1;
  uint64_t io_timeout_s = 0;
  uint64_t reattach_timeout_s = 0;  // DEAD_CONN_TIMEOUT
  std::string cookie;               // BACKEND_IDENTIFIER
  // Loop thread: a connection closed although nobody asked (the kernel shut
  // it after a timeout, or it failed). Must only post or wake.
  std::function<void()> on_lost;
};

class KernelDevice {
 public:
  // `nl` null: the old ioctl interface (no reattach, no resize, no cookie).
  static Result<std::unique_ptr<KernelDevice>> Map(NbdNetlink* nl, LoopPool& loops, Export exp,
                                                   const KernelDeviceParams& params);
  // Takes over a device the kernel still holds (a previous daemon died).
  static Result<std::unique_ptr<KernelDevice>> Attach(NbdNetlink& nl, LoopPool& loops, Export exp,
                                                      uint32_t index, const KernelDeviceParams& params);
  ~KernelDevice();

  Result<void> Unmap(NbdNetlink* nl);
  // Closes our side; the device stays in the kernel.
  void Detach();
  // Replaces dead connections with fresh ones.
  Result<void> Reattach(NbdNetlink& nl);
  // Pushes a new size to the kernel and to every connection.
  Result<void> Resize(NbdNetlink& nl, uint64_t size);

  uint32_t index() const { return index_; }
  std::string path() const { return "/dev/nbd" + std::to_string(index_); }
  const Export& exp() const { return export_; }
  const KernelDeviceParams& params() const { return params_; }
  uint64_t size() const { return size_; }
  size_t live_connections();

 private:
  // Connection objects, each owned here but touched only on its loop.
  struct Slot {
    size_t loop = 0;
    std::unique_ptr<Connection> conn;
    bool closed = false;
  };
  KernelDevice(LoopPool& loops, Export exp, KernelDeviceParams params);
  // Makes the socketpairs, serves our ends; returns the kernel's ends.
  Result<std::vector<UniqueFd>> StartConnections(uint32_t count,
                                                 std::vector<std::shared_ptr<Slot>>* created = nullptr);
  void CloseSlots(const std::vector<std::shared_ptr<Slot>>& slots);
  void CloseConnections(bool force);
  bool WaitConnectionsClosed(std::chrono::milliseconds timeout);
  Result<void> WaitReady();
  void TuneQueue();

  LoopPool& loops_;
  Export export_;
  KernelDeviceParams params_;
  uint32_t index_ = 0;
  uint64_t size_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Slot>> slots_;
  std::atomic<bool> closing_{false};  // unmap, detach or destruction in progress
  std::unique_ptr<NbdIoctlDevice> ioctl_;  // set on the ioctl fallback path
};

// Flags the kernel should see for these capabilities.
uint64_t KernelServerFlags(const BackendCaps& caps);
uint32_t KernelBlockSize(const BackendCaps& caps);

}  // namespace rbdnbd
