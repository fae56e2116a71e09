// NbdNetlink: configures kernel /dev/nbdX devices over generic netlink (the
// "nbd" family, include/uapi/linux/nbd-netlink.h), through libnl-genl.
//
// Contract
// --------
// * Control path only: every call is synchronous (send, then wait for the
//   kernel's reply or ack) and runs on a control thread, never on a loop.
//   One NbdNetlink is not thread-safe; callers serialise (the device manager
//   owns one).
// * Open() fails with ENOENT when the family is missing (nbd module not
//   loaded, or too old); callers may then load the module or use the ioctl
//   fallback.
// * Connect(): the kernel takes its own reference on each socket, so the
//   caller may close its copy of the kernel's end after the call returns.
//   More than one socket requires kFlagCanMultiConn in server_flags.
// * Reconfigure() with sockets only replaces *dead* connections: that is how a
//   restarted daemon reattaches within dead_conn_timeout while the kernel holds
//   the I/O. backend_id must match the one given at Connect().
// * Errors carry the kernel's errno where libnl exposes it, and one line of
//   context ("nbd netlink CONNECT /dev/nbd3: Device or resource busy").
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

struct nl_sock;

namespace rbdnbd {

struct NbdConnectParams {
  std::optional<uint32_t> index;  // nullopt: the kernel picks a free device
  std::vector<int> sockets;       // the kernel's ends
  uint64_t size_bytes = 0;
  uint64_t block_size = 512;      // power of two, 512..PAGE_SIZE
  uint64_t server_flags = 0;      // NBD transmission flags
  uint64_t client_flags = 0;      // NBD_CFLAG_*
  uint64_t timeout_s = 0;         // 0: requests never time out
  uint64_t dead_conn_timeout_s = 0;
  std::string backend_id;         // visible at /sys/block/nbdN/backend
};

struct NbdReconfigureParams {
  uint32_t index = 0;
  std::vector<int> sockets;  // replace dead connections (may be empty)
  std::optional<uint64_t> size_bytes;
  std::optional<uint64_t> timeout_s;
  std::optional<uint64_t> dead_conn_timeout_s;
  std::optional<uint64_t> client_flags;
  std::string backend_id;  // required when one was set at Connect()
};

struct NbdDeviceStatus {
  uint32_t index = 0;
  bool connected = false;
};

inline constexpr uint64_t kNbdClientFlagDestroyOnDisconnect = 1 << 0;
inline constexpr uint64_t kNbdClientFlagDisconnectOnClose = 1 << 1;

class NbdNetlink {
 public:
  static Result<std::unique_ptr<NbdNetlink>> Open();
  ~NbdNetlink();
  NbdNetlink(const NbdNetlink&) = delete;
  NbdNetlink& operator=(const NbdNetlink&) = delete;

  // Returns the device index the kernel used.
  Result<uint32_t> Connect(const NbdConnectParams& p);
  Result<void> Disconnect(uint32_t index);
  Result<void> Reconfigure(const NbdReconfigureParams& p);
  // All devices, or one.
  Result<std::vector<NbdDeviceStatus>> Status(std::optional<uint32_t> index = std::nullopt);

 private:
  NbdNetlink(nl_sock* sock, int family) : sock_(sock), family_(family) {}
  std::mutex mu_;
  nl_sock* sock_;
  int family_;
};

// Subscribes to the family's multicast group and reports LINK_DEAD events
// (a device whose connections all died). Poll fd() for readability, then call
// Drain(). Control thread only.
class NbdLinkWatcher {
 public:
  static Result<std::unique_ptr<NbdLinkWatcher>> Open();
  ~NbdLinkWatcher();
  int fd() const;
  // Appends the index of every device reported dead since the last call.
  void Drain(std::vector<uint32_t>* dead);

 private:
  explicit NbdLinkWatcher(nl_sock* sock) : sock_(sock) {}
  nl_sock* sock_;
};

}  // namespace rbdnbd
