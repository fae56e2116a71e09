#include "ublk/ublk_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

namespace rbdnbd {
namespace {

constexpr auto kCdevWait = std::chrono::seconds(5);
constexpr auto kQueueStopWait = std::chrono::seconds(10);
constexpr auto kRecoveryWait = std::chrono::seconds(30);

// devtmpfs creates the node at ADD_DEV; udev may take a moment to set it up.
// Bounded by kCdevWait.
Result<UniqueFd> OpenCdev(uint32_t id) {
  const std::string path = "/dev/ublkc" + std::to_string(id);
  const auto deadline = std::chrono::steady_clock::now() + kCdevWait;
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (fd) return fd;
    const int e = errno;
    // ENOENT: the node is not there yet; EBUSY: a dead daemon's file is still being released.
    if ((e != ENOENT && e != EBUSY) || std::chrono::steady_clock::now() > deadline) {
      return Err(e, "opening {}: {}", path, std::strerror(e));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct StopLatch {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
};

}  // namespace

Result<std::unique_ptr<UblkDevice>> UblkDevice::Add(UblkControl& ctl, LoopPool& loops, Export exp,
                                                    const UblkDeviceParams& params) {
  const BackendCaps caps = exp.backend->Capabilities();
  auto p = BuildUblkParams(caps, params.block);
  if (!p) return Unexpected(p.error());

  ublksrv_ctrl_dev_info want{};
  want.nr_hw_queues = params.queues != 0 ? params.queues : static_cast<uint16_t>(loops.size());
  // Before ADD_DEV, so that a refused shape leaves nothing behind.
  if (auto s = CheckUblkDeviceShape(want.nr_hw_queues, params.depth, params.block.max_io_bytes,
                                    params.block.logical_block);
      !s) {
    return Unexpected(s.error());
  }
  want.queue_depth = params.depth;
  want.max_io_buf_bytes = params.block.max_io_bytes;
  want.dev_id = params.id.value_or(kUblkAutoId);
  want.ublksrv_pid = ::getpid();
  if (params.user_recovery) want.flags |= UBLK_F_USER_RECOVERY;
  if (params.user_recovery && params.recovery_reissue) want.flags |= UBLK_F_USER_RECOVERY_REISSUE;
  auto info = ctl.AddDev(want);
  if (!info) return Unexpected(info.error());

  std::unique_ptr<UblkDevice> d(new UblkDevice(ctl, loops, std::move(exp), info->dev_id));
  d->added_ = true;
  d->size_ = caps.size;
  spdlog::info("ublk{}: added ({} queues of depth {}, max I/O {} bytes, flags {})", info->dev_id,
               info->nr_hw_queues, info->queue_depth, info->max_io_buf_bytes, UblkFlagNames(info->flags));
  auto fail = [&](const Error& e) -> Unexpected {
    if (auto t = d->Teardown(/*stop_dev=*/true); !t) spdlog::warn("ublk{}: {}", d->id_, t.error().message);
    return Unexpected(e);
  };
  if (auto r = ctl.SetParams(d->id_, *p); !r) return fail(r.error());
  if (auto r = d->StartQueues(*info); !r) return fail(r.error());
  if (auto r = ctl.StartDev(d->id_, ::getpid()); !r) return fail(r.error());
  spdlog::info("ublk{}: {} is live ({} bytes)", d->id_, d->path(), caps.size);
  return d;
}

Result<std::unique_ptr<UblkDevice>> UblkDevice::Recover(UblkControl& ctl, LoopPool& loops, Export exp,
                                                        uint32_t id, const UblkDeviceParams& params) {
  auto info = ctl.GetDevInfo(id);
  if (!info) return Unexpected(info.error());
  if (!(info->flags & UBLK_F_USER_RECOVERY)) {
    return Err(EINVAL, "ublk device {} was not added with user recovery", id);
  }
  // The queues take the shape the device was added with, which the kernel
  // keeps; a caller that expected another one is told, not obeyed.
  if (info->queue_depth != params.depth || info->max_io_buf_bytes != params.block.max_io_bytes) {
    spdlog::warn("ublk{}: the kernel has it with depth {} and max I/O {} bytes (expected {} and {}); "
                 "recovering with the kernel's", id, info->queue_depth, info->max_io_buf_bytes, params.depth,
                 params.block.max_io_bytes);
  }
  // The driver quiesces the device once it has seen the old daemon's commands
  // cancelled (its ring torn down at exit): until then START_USER_RECOVERY is EBUSY.
  const auto deadline = std::chrono::steady_clock::now() + kRecoveryWait;
  for (;;) {
    auto r = ctl.StartUserRecovery(id);
    if (r) break;
    if (r.error().code != EBUSY || std::chrono::steady_clock::now() > deadline) {
      return Unexpected(r.error());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::unique_ptr<UblkDevice> d(new UblkDevice(ctl, loops, std::move(exp), id));
  d->size_ = d->export_.backend->Capabilities().size;
  // Not added_ until it is live again: a failure here must not STOP_DEV or
  // DEL_DEV a device the caller will try to recover again.
  if (auto r = d->StartQueues(*info); !r) {
    d->queues_.clear();  // none was started: StartQueues starts them only once all exist
    d->cdev_ = UniqueFd();
    return Unexpected(r.error());
  }
  if (auto r = ctl.EndUserRecovery(id, ::getpid()); !r) {
    d->Abandon();  // the queues' commands are in the kernel
    return Unexpected(r.error());
  }
  d->added_ = true;
  spdlog::info("ublk{}: recovered, {} is live again", id, d->path());
  return d;
}

Result<void> UblkDevice::StartQueues(const ublksrv_ctrl_dev_info& info) {
  auto fd = OpenCdev(id_);
  if (!fd) return Unexpected(fd.error());
  cdev_ = std::move(*fd);
  for (uint16_t q = 0; q < info.nr_hw_queues; q++) {
    const size_t w = q % loops_.size();
    UblkQueue::Params qp;
    qp.dev_id = id_;
    qp.q_id = q;
    qp.depth = info.queue_depth;
    qp.max_io_bytes = info.max_io_buf_bytes;
    qp.cdev_fd = cdev_.get();
    auto queue = UblkQueue::Create(loops_.loop(w), export_, qp);
    if (!queue) return Unexpected(queue.error());
    queues_.push_back(std::move(*queue));
  }
  for (auto& q : queues_) {
    UblkQueue* raw = q.get();
    raw->loop().Post([raw] { raw->Start(); });
  }
  return {};
}

Result<void> UblkDevice::Teardown(bool stop_dev) {
  Result<void> result;
  if (stop_dev) {
    if (auto r = ctl_.StopDev(id_); !r) result = r;
  }
  auto latch = std::make_shared<StopLatch>();
  latch->remaining = queues_.size();
  for (auto& q : queues_) {
    UblkQueue* raw = q.get();
    raw->loop().Post([raw, latch] {
      raw->Stop([latch] {
        std::lock_guard<std::mutex> lock(latch->mu);
        if (--latch->remaining == 0) latch->cv.notify_all();
      });
    });
  }
  {
    std::unique_lock<std::mutex> lock(latch->mu);
    if (!latch->cv.wait_for(lock, kQueueStopWait, [&] { return latch->remaining == 0; })) {
      // Tags may still be in the kernel: their buffers must stay mapped.
      for (auto& q : queues_) (void)q.release();
      queues_.clear();
      (void)cdev_.Release();
      return Err(ETIMEDOUT, "ublk device {}: {} queue(s) did not drain within {} s; device left in "
                 "the kernel", id_, latch->remaining, kQueueStopWait.count());
    }
  }
  queues_.clear();
  cdev_ = UniqueFd();
  if (added_) {
    if (auto r = ctl_.DelDev(id_); !r) {
      if (result) result = r;
    } else {
      added_ = false;
    }
  }
  return result;
}

Result<void> UblkDevice::Remove() {
  if (!added_) return {};
  auto r = Teardown(/*stop_dev=*/true);
  if (r) spdlog::info("ublk{}: removed", id_);
  return r;
}

void UblkDevice::Abandon() {
  added_ = false;
  // The kernel may hold commands whose buffers are these queues': leave them
  // mapped. The process is on its way out (see the header).
  for (auto& q : queues_) (void)q.release();
  queues_.clear();
  (void)cdev_.Release();
}

Result<void> UblkDevice::Resize(uint64_t bytes) {
  if (bytes == size_) return {};
  // Growing, the queues learn the new end before the kernel sends a request
  // past the old one; shrinking, only after the kernel stopped sending them.
  auto tell_queues = [this, bytes] {
    for (auto& q : queues_) {
      UblkQueue* raw = q.get();
      raw->loop().Post([raw, bytes] { raw->SetSize(bytes); });
    }
  };
  if (bytes > size_) tell_queues();
  if (auto r = ctl_.UpdateSize(id_, bytes); !r) return r;
  if (bytes < size_) tell_queues();
  spdlog::info("ublk{}: resized from {} to {} bytes", id_, size_, bytes);
  size_ = bytes;
  return {};
}

UblkDevice::~UblkDevice() {
  if (added_) {
    if (auto r = Remove(); !r) spdlog::warn("ublk{}: {}", id_, r.error().message);
  }
}

}  // namespace rbdnbd
