// NbdIoctlDevice: the fallback for kernels without the nbd netlink family.
//
// Contract: control thread. Connect() configures /dev/nbdN with the old
// ioctls (SET_BLKSIZE, SET_SIZE_BLOCKS, SET_FLAGS, SET_TIMEOUT, SET_SOCK per
// socket) and starts one thread blocked in NBD_DO_IT, which is how that
// interface serves a device. Disconnect() sends NBD_DISCONNECT and joins the
// thread. There is no reattach on this path: devices do not survive a daemon
// restart without netlink, and the daemon says so when it falls back.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "netlink/nbd_netlink.h"

namespace rbdnbd {

class NbdIoctlDevice {
 public:
  static Result<std::unique_ptr<NbdIoctlDevice>> Connect(uint32_t index, const NbdConnectParams& p);
  ~NbdIoctlDevice();
  Result<void> Disconnect();
  uint32_t index() const { return index_; }

 private:
  NbdIoctlDevice(uint32_t index, UniqueFd fd) : index_(index), fd_(std::move(fd)) {}
  uint32_t index_;
  UniqueFd fd_;
  std::thread doit_;
};

}  // namespace rbdnbd
