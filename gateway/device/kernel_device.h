// KernelDevice: one /dev/nbdX backed by one Export, served over N socketpairs
// (one Connection per socket, spread over the worker loops by a
// ConnectionGroup).
//
// Contract
// --------
// * Control thread only: the DeviceManager's, which serialises every call.
//   Connections live on their loops; this class reaches them only through the
//   ConnectionGroup, which posts to those loops.
// * Our end of each socketpair is handed to its loop before the kernel gets
//   the other end, because the kernel starts I/O (the partition scan) at once;
//   whatever it sends before the loop picks the socket up waits in the socket
//   buffer.
// * Lifecycle:
//
//     Map() ──CONNECT (or the ioctls)──► mapped ──Unmap(): DISCONNECT──► kernel sends DISC,
//       │                                 │  ▲                    connections drain ──► gone
//       │                                 │  └── Reattach(): new sockets for the dead ones,
//       │                                 │       RECONFIGURE (after LINK_DEAD, on_lost, the
//       │                                 │       periodic check, or by a new daemon)
//       │                                 └── Detach(): connections drain and close; the kernel
//       │                                      keeps the device and holds I/O for dead_conn_timeout
//     Attach() (new daemon, device already in the kernel) ──RECONFIGURE──► mapped
//
// * Resize(): growing, every connection takes the new size (and says so)
//   before RECONFIGURE tells the kernel, so no request past the old end is
//   ever refused; shrinking, the kernel goes first. Netlink only.
// * Map() and Resize() return once /sys/block/nbdN/size shows the size
//   (polled, never udev).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "device/connection_group.h"
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
  // `nl` null: the ioctl interface (no reattach, no resize, no cookie).
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
  // The new size to every connection and to the kernel, in the order above.
  // ETIMEDOUT (nothing sent to the kernel) if a loop did not take a grown
  // size within 10 s.
  Result<void> Resize(NbdNetlink& nl, uint64_t size);

  uint32_t index() const { return index_; }
  std::string path() const { return "/dev/nbd" + std::to_string(index_); }
  const Export& exp() const { return export_; }
  const KernelDeviceParams& params() const { return params_; }
  uint64_t size() const { return size_; }
  size_t live_connections();
  // Reattaches done (RECONFIGURE with fresh sockets: Attach() and every
  // Reattach() that replaced a connection). Read under the caller's
  // serialisation, as every other call.
  uint64_t reattaches() const { return reattaches_; }

 private:
  KernelDevice(LoopPool& loops, Export exp, KernelDeviceParams params);
  // Makes the socketpairs, serves our ends; returns the kernel's ends and,
  // in `created`, the ids of the new connections.
  Result<std::vector<UniqueFd>> StartConnections(uint32_t count,
                                                 std::vector<ConnectionGroup::Id>* created = nullptr);
  Result<void> WaitReady();
  void TuneQueue();

  Export export_;
  KernelDeviceParams params_;
  uint32_t index_ = 0;
  uint64_t size_ = 0;
  uint64_t reattaches_ = 0;
  std::unique_ptr<NbdIoctlDevice> ioctl_;  // set on the ioctl fallback path
  // Last: destroyed first, so its connections close while the rest is alive.
  ConnectionGroup group_;
};

// Flags the kernel should see for these capabilities.
uint64_t KernelServerFlags(const BackendCaps& caps);
uint32_t KernelBlockSize(const BackendCaps& caps);

}  // namespace rbdnbd
