#include "netlink/nbd_ioctl.h"

#include <fcntl.h>
#include <linux/nbd.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {

Result<std::unique_ptr<NbdIoctlDevice>> NbdIoctlDevice::Connect(uint32_t index, const NbdConnectParams& p) {
  std::string path = fmt::format("/dev/nbd{}", index);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return Err(errno, "cannot open {}: {}", path, strerror(errno));
  auto fail = [&](const char* what) {
    int e = errno;
    ioctl(fd.get(), NBD_CLEAR_SOCK);
    return Err(e, "{} on {}: {}", what, path, strerror(e));
  };
  if (ioctl(fd.get(), NBD_SET_BLKSIZE, static_cast<unsigned long>(p.block_size)) < 0) return fail("NBD_SET_BLKSIZE");
  if (ioctl(fd.get(), NBD_SET_SIZE_BLOCKS, static_cast<unsigned long>(p.size_bytes / p.block_size)) < 0) {
    return fail("NBD_SET_SIZE_BLOCKS");
  }
  if (ioctl(fd.get(), NBD_SET_FLAGS, static_cast<unsigned long>(p.server_flags)) < 0) return fail("NBD_SET_FLAGS");
  if (ioctl(fd.get(), NBD_SET_TIMEOUT, static_cast<unsigned long>(p.timeout_s)) < 0) return fail("NBD_SET_TIMEOUT");
  for (int s : p.sockets) {
    if (ioctl(fd.get(), NBD_SET_SOCK, static_cast<unsigned long>(s)) < 0) return fail("NBD_SET_SOCK");
  }
  std::unique_ptr<NbdIoctlDevice> d(new NbdIoctlDevice(index, std::move(fd)));
  int raw = d->fd_.get();
  d->doit_ = std::thread([raw, index] {
    if (ioctl(raw, NBD_DO_IT) < 0 && errno != EPIPE) {
      spdlog::warn("/dev/nbd{}: NBD_DO_IT ended: {}", index, strerror(errno));
    }
    ioctl(raw, NBD_CLEAR_QUE);
    ioctl(raw, NBD_CLEAR_SOCK);
  });
  return d;
}

Result<void> NbdIoctlDevice::Disconnect() {
  if (!doit_.joinable()) return {};
  if (ioctl(fd_.get(), NBD_DISCONNECT) < 0) {
    return Err(errno, "NBD_DISCONNECT on /dev/nbd{}: {}", index_, strerror(errno));
  }
  doit_.join();
  return {};
}

NbdIoctlDevice::~NbdIoctlDevice() {
  if (doit_.joinable()) {
    if (auto r = Disconnect(); !r) {
      spdlog::error("{}", r.error().message);
      doit_.detach();
    }
  }
}

}  // namespace rbdnbd
