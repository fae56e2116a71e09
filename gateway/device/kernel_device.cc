#include "device/kernel_device.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace rbdnbd {
namespace {

// How long a connection may take to close after DISCONNECT or a detach.
constexpr std::chrono::seconds kCloseTimeout{30};
// How long every loop may take to apply a new size. A loop only falls this
// far behind when it is stuck; the resize is then retried later.
constexpr std::chrono::seconds kResizeTimeout{10};

}  // namespace

uint64_t KernelServerFlags(const BackendCaps& caps) { return TransmissionFlags(caps); }

uint32_t KernelBlockSize(const BackendCaps& caps) {
  return std::clamp<uint32_t>(caps.min_block, 512, 4096);
}

KernelDevice::KernelDevice(LoopPool& loops, Export exp, KernelDeviceParams params)
    : export_(std::move(exp)), params_(std::move(params)), group_(loops, params_.on_lost) {}

// ~ConnectionGroup force-closes whatever is left and waits for it.
KernelDevice::~KernelDevice() = default;

Result<std::vector<UniqueFd>> KernelDevice::StartConnections(uint32_t count,
                                                             std::vector<ConnectionGroup::Id>* created) {
  std::vector<UniqueFd> kernel_ends;
  std::vector<ConnectionGroup::Id> ids;
  for (uint32_t i = 0; i < count; i++) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      int e = errno;
      group_.ForceClose(ids);  // their kernel ends are never handed over
      return Err(e, "socketpair: {}", strerror(e));
    }
    kernel_ends.emplace_back(sv[1]);
    std::string peer = fmt::format("{}#{}", params_.cookie, i);
    ids.push_back(group_.Add(UniqueFd(sv[0]), [exp = export_, peer](EventLoop& loop, BufferPool& pool,
                                                                   UniqueFd fd, Connection::ClosedFn on_closed) {
      return Connection::ForTransmission(loop, pool, std::move(fd), exp, peer, std::move(on_closed));
    }));
  }
  if (created != nullptr) *created = std::move(ids);
  return kernel_ends;
}

size_t KernelDevice::live_connections() { return group_.live(); }

// The nbd driver leaves max_sectors_kb at the block layer's 128 KiB, so a
// 1 MiB I/O becomes eight requests. Raise it to 4 MiB (one RBD object, and
// what krbd uses), within what the queue allows; failure only costs speed.
void KernelDevice::TuneQueue() {
  std::string dir = fmt::format("/sys/block/nbd{}/queue/", index_);
  uint64_t hw = 0;
  std::ifstream(dir + "max_hw_sectors_kb") >> hw;
  uint64_t want = std::min<uint64_t>(hw == 0 ? 4096 : hw, 4096);
  std::ofstream out(dir + "max_sectors_kb");
  if (!(out << want << "\n") || !out.flush()) {
    spdlog::debug("{}: could not set max_sectors_kb to {}", path(), want);
  }
}

Result<void> KernelDevice::WaitReady() {
  std::string sys = fmt::format("/sys/block/nbd{}/size", index_);
  uint64_t want = size_ / 512;
  uint64_t sectors = 0;
  for (int i = 0; i < 1000; i++) {  // up to 10 s
    std::ifstream f(sys);
    if (f >> sectors && sectors == want) {
      TuneQueue();
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Err(ETIMEDOUT, "{} did not reach {} bytes (sysfs says {} sectors)", path(), size_, sectors);
}

namespace {
std::vector<int> Raw(const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const auto& f : fds) raw.push_back(f.get());
  return raw;
}
}  // namespace

namespace {
// The ioctl interface cannot pick a device: take the first one nobody serves.
Result<uint32_t> FindFreeDevice() {
  for (uint32_t i = 0; i < 1024; i++) {
    std::ifstream size(fmt::format("/sys/block/nbd{}/size", i));
    uint64_t sectors = 0;
    if (!(size >> sectors)) break;  // no such device: the module made fewer
    std::ifstream pid(fmt::format("/sys/block/nbd{}/pid", i));
    if (sectors == 0 && !pid) return i;
  }
  return Err(ENOSPC, "no free /dev/nbdX (load the module with a larger nbds_max)");
}
}  // namespace

Result<std::unique_ptr<KernelDevice>> KernelDevice::Map(NbdNetlink* nl, LoopPool& loops, Export exp,
                                                        const KernelDeviceParams& params) {
  std::unique_ptr<KernelDevice> d(new KernelDevice(loops, std::move(exp), params));
  BackendCaps caps = d->export_.backend->Capabilities();
  d->size_ = caps.size;
  if (params.connections > 1 && !caps.can_multi_conn) {
    return Err(EINVAL, "this backend cannot serve several connections safely (no multi-conn)");
  }
  auto ends = d->StartConnections(params.connections);
  if (!ends) return Unexpected(ends.error());
  NbdConnectParams p;
  p.index = params.index;
  p.sockets = Raw(*ends);
  p.size_bytes = caps.size;
  p.block_size = KernelBlockSize(caps);
  p.server_flags = KernelServerFlags(caps);
  p.timeout_s = params.io_timeout_s;
  p.dead_conn_timeout_s = params.reattach_timeout_s;
  p.backend_id = params.cookie;
  if (nl == nullptr) {
    auto index = params.index ? Result<uint32_t>(*params.index) : FindFreeDevice();
    if (!index) return Unexpected(index.error());
    auto dev = NbdIoctlDevice::Connect(*index, p);
    if (!dev) return Unexpected(dev.error());
    d->ioctl_ = std::move(dev).value();
    d->index_ = *index;
  } else {
    auto index = nl->Connect(p);
    if (!index) return Unexpected(index.error());  // ~KernelDevice closes our ends
    d->index_ = *index;
  }
  if (auto r = d->WaitReady(); !r) {
    (void)d->Unmap(nl);
    return Unexpected(r.error());
  }
  return d;
}

Result<std::unique_ptr<KernelDevice>> KernelDevice::Attach(NbdNetlink& nl, LoopPool& loops, Export exp,
                                                           uint32_t index, const KernelDeviceParams& params) {
  std::unique_ptr<KernelDevice> d(new KernelDevice(loops, std::move(exp), params));
  d->index_ = index;
  std::ifstream backend(fmt::format("/sys/block/nbd{}/backend", index));
  std::string id;
  if (backend >> id && id != params.cookie) {
    return Err(EEXIST, "/dev/nbd{} belongs to another backend ({}), not {}", index, id, params.cookie);
  }
  d->size_ = d->export_.backend->Capabilities().size;
  if (auto r = d->Reattach(nl); !r) return Unexpected(r.error());
  return d;
}

Result<void> KernelDevice::Reattach(NbdNetlink& nl) {
  uint32_t missing = params_.connections - static_cast<uint32_t>(live_connections());
  if (missing == 0) return {};
  std::vector<ConnectionGroup::Id> created;
  auto ends = StartConnections(missing, &created);
  if (!ends) return Unexpected(ends.error());
  NbdReconfigureParams p;
  p.index = index_;
  p.sockets = Raw(*ends);
  p.backend_id = params_.cookie;
  if (auto r = nl.Reconfigure(p); !r) {
    group_.ForceClose(created);  // the healthy connections stay
    return r;
  }
  reattaches_++;
  spdlog::info("{}: reattached {} connection(s)", path(), missing);
  return {};
}

Result<void> KernelDevice::Unmap(NbdNetlink* nl) {
  // Before DISCONNECT: the kernel hanging up is what we asked for, not a loss.
  group_.ExpectClose();
  if (ioctl_) {
    if (auto r = ioctl_->Disconnect(); !r) return r;
  } else if (nl != nullptr) {
    if (auto r = nl->Disconnect(index_); !r && r.error().code != ENOENT) return r;
  }
  // The kernel sends DISC on every socket and closes them; our side drains.
  if (!group_.WaitClosed(kCloseTimeout)) {
    spdlog::warn("{}: connections still open {} s after DISCONNECT; closing them", path(),
                 kCloseTimeout.count());
    group_.ForceClose();
    group_.WaitClosed(kCloseTimeout);
  }
  return {};
}

void KernelDevice::Detach() {
  group_.Shutdown();
  if (!group_.WaitClosed(kCloseTimeout)) group_.ForceClose();
}

Result<void> KernelDevice::Resize(NbdNetlink& nl, uint64_t size) {
  // Growing: every connection must accept the new range before the kernel
  // can send a request into it, so RECONFIGURE waits for all of them.
  // Shrinking: the kernel stops using the range first, then the connections.
  if (size > size_) {
    if (auto r = group_.SetExportSize(size, kResizeTimeout); !r) {
      return WithContext(r.error(), fmt::format("{}: growing to {} bytes", path(), size));
    }
  }
  NbdReconfigureParams p;
  p.index = index_;
  p.size_bytes = size;
  p.backend_id = params_.cookie;
  // A failed grow leaves the connections accepting a range the kernel never
  // sends; the backend has it, so that is harmless until the next try.
  if (auto r = nl.Reconfigure(p); !r) return r;
  if (size < size_) {
    if (auto r = group_.SetExportSize(size, kResizeTimeout); !r) {
      // The kernel no longer sends requests past `size`, and the new size
      // still reaches the late connections: worth a warning, not a failure.
      spdlog::warn("{}: shrinking to {} bytes: {}", path(), size, r.error().message);
    }
  }
  size_ = size;
  return WaitReady();
}

}  // namespace rbdnbd
