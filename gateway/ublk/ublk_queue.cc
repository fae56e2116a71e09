#include "ublk/ublk_queue.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {
namespace {

constexpr uint32_t kLoggedErrors = 10;  // per queue

size_t RoundUpToPage(size_t n) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// The driver's layout of the descriptor arrays in /dev/ublkcN: queue q starts
// at q times the size of the largest possible array.
off_t DescOffset(uint16_t q_id) {
  return static_cast<off_t>(UBLKSRV_CMD_BUF_OFFSET) +
         static_cast<off_t>(q_id) * static_cast<off_t>(RoundUpToPage(UBLK_MAX_QUEUE_DEPTH * sizeof(ublksrv_io_desc)));
}

IoOp ToIoOp(IoType t) {
  switch (t) {
    case IoType::kWrite: return IoOp::kWrite;
    case IoType::kFlush: return IoOp::kFlush;
    case IoType::kTrim: return IoOp::kTrim;
    case IoType::kWriteZeroes: return IoOp::kWriteZeroes;
    default: return IoOp::kRead;
  }
}

// The checks the backend contract leaves to the frontend (backend.h): range,
// capability, read-only. 0 or -errno.
int Check(const UblkIo& io, const BackendCaps& caps) {
  if (io.type != IoType::kFlush && (io.offset > caps.size || io.length > caps.size - io.offset)) {
    return -EIO;
  }
  if (caps.read_only && io.type != IoType::kRead && io.type != IoType::kFlush) return -EROFS;
  if (io.type == IoType::kTrim && !caps.can_trim) return -EOPNOTSUPP;
  if (io.type == IoType::kWriteZeroes && !caps.can_write_zeroes) return -EOPNOTSUPP;
  return 0;
}

}  // namespace

UblkQueue::UblkQueue(EventLoop& loop, Export exp, const Params& params)
    : loop_(loop), export_(std::move(exp)), params_(params), tags_(params.depth) {}

Result<std::unique_ptr<UblkQueue>> UblkQueue::Create(EventLoop& loop, Export exp, const Params& params) {
  if (params.depth == 0 || params.depth > UBLK_MAX_QUEUE_DEPTH) {
    return Err(EINVAL, "ublk queue depth {} is not in 1..{}", params.depth, UBLK_MAX_QUEUE_DEPTH);
  }
  std::unique_ptr<UblkQueue> q(new UblkQueue(loop, std::move(exp), params));
  q->caps_ = q->export_.backend->Capabilities();
  q->descs_len_ = RoundUpToPage(params.depth * sizeof(ublksrv_io_desc));
  void* d = ::mmap(nullptr, q->descs_len_, PROT_READ, MAP_SHARED | MAP_POPULATE, params.cdev_fd,
                   DescOffset(params.q_id));
  if (d == MAP_FAILED) {
    const int e = errno;
    return Err(e, "mmap of the descriptors of ublk device {} queue {}: {}", params.dev_id, params.q_id,
               std::strerror(e));
  }
  q->descs_ = static_cast<const ublksrv_io_desc*>(d);
  q->buffers_len_ = static_cast<size_t>(params.depth) * params.max_io_bytes;
  void* b = ::mmap(nullptr, q->buffers_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) {
    const int e = errno;
    return Err(e, "ublk queue {}: {} bytes of buffers: {}", params.q_id, q->buffers_len_, std::strerror(e));
  }
  q->buffers_ = static_cast<uint8_t*>(b);
  for (uint16_t i = 0; i < params.depth; i++) {
    q->tags_[i].queue = q.get();
    q->tags_[i].tag = i;
  }
  return q;
}

UblkQueue::~UblkQueue() {
  if (descs_ != nullptr) ::munmap(const_cast<ublksrv_io_desc*>(descs_), descs_len_);
  if (buffers_ != nullptr) ::munmap(buffers_, buffers_len_);
}

void UblkQueue::IssueCommand(Tag& t, uint32_t op, int32_t result) {
  io_uring_sqe* sqe = loop_.GetSqe(&t);
  // Clear everything but user_data, which GetSqe(c) has set.
  const uint64_t user_data = sqe->user_data;
  std::memset(sqe, 0, sizeof(*sqe));
  sqe->user_data = user_data;
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = params_.cdev_fd;
  sqe->cmd_op = op;
  ublksrv_io_cmd cmd{};
  cmd.q_id = params_.q_id;
  cmd.tag = t.tag;
  cmd.result = result;
  cmd.addr = reinterpret_cast<uint64_t>(buffers_ + static_cast<size_t>(t.tag) * params_.max_io_bytes);
  static_assert(sizeof(ublksrv_io_cmd) <= 16, "fits a 64-byte SQE's command area");
  std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
  t.cmd_in_kernel = true;
}

void UblkQueue::Start() {
  if (export_.io_stats) {
    stats_ = export_.io_stats->Open();
    cells_ = stats_.cells();
  }
  for (Tag& t : tags_) {
    IssueCommand(t, UBLK_IO_FETCH_REQ, -1);
    busy_++;
  }
}

void UblkQueue::OnCommand(Tag& t, int res) {
  t.cmd_in_kernel = false;
  if (res != UBLK_IO_RES_OK) {
    // UBLK_IO_RES_ABORT (-ENODEV): the device is going away. Anything else
    // (-ECANCELED, -EINVAL from a driver that refused us) ends the tag too.
    if (res != UBLK_IO_RES_ABORT && res != -ECANCELED && !stopping_) {
      spdlog::warn("ublk{} queue {} tag {}: command failed: {}", params_.dev_id, params_.q_id, t.tag,
                   std::strerror(-res));
    }
    TagDone(t);
    return;
  }
  int err = DecodeUblkIo(descs_[t.tag], params_.max_io_bytes, &t.io);
  // An op we do not know is in none of the per-op statistics.
  t.fetched_ns = cells_ != nullptr && err == 0 ? MonotonicNowNs() : 0;
  if (err == 0) err = Check(t.io, caps_);
  if (err == 0 && t.io.type == IoType::kFlush && !caps_.can_flush) {
    Commit(t, 0);  // nothing volatile to flush
    return;
  }
  if (err != 0) {
    Commit(t, err);
    return;
  }
  t.type = t.io.type;
  t.flags = t.io.flags;
  t.offset = t.io.offset;
  t.length = t.io.length;
  t.data = (t.io.type == IoType::kRead || t.io.type == IoType::kWrite)
               ? buffers_ + static_cast<size_t>(t.tag) * params_.max_io_bytes
               : nullptr;
  t.at_backend = true;
  inflight_++;
  if (cells_ != nullptr) cells_->SetInflight(static_cast<int64_t>(inflight_));
  export_.backend->Submit(loop_, t);
}

void UblkQueue::OnBackendDone(Tag& t, int result) {
  t.at_backend = false;
  inflight_--;
  if (cells_ != nullptr) cells_->SetInflight(static_cast<int64_t>(inflight_));
  Commit(t, result);
}

void UblkQueue::Commit(Tag& t, int backend_result) {
  if (backend_result < 0 && logged_errors_ < kLoggedErrors) {
    logged_errors_++;
    spdlog::warn("ublk{} queue {} tag {}: {} offset {} length {}: {}{}", params_.dev_id, params_.q_id, t.tag,
                 IoTypeName(t.io.type), t.io.offset, t.io.length, std::strerror(-backend_result),
                 logged_errors_ == kLoggedErrors ? " (further errors of this queue are not logged)" : "");
  }
  if (cells_ != nullptr && t.fetched_ns != 0) {
    const IoOp op = ToIoOp(t.io.type);
    cells_->Completed(op, t.io.type == IoType::kFlush ? 0 : t.io.length,
                      backend_result < 0 ? -backend_result : 0);
    cells_->Replied(op, t.fetched_ns, MonotonicNowNs());
  }
  // Even while stopping: the kernel waits for this request's result.
  IssueCommand(t, UBLK_IO_COMMIT_AND_FETCH_REQ, UblkCommitResult(t.io, backend_result));
  if (stopping_) {
    // The commit may come back with a fresh request before the abort; cancel
    // its fetch part as the others were.
    io_uring_sqe* sqe = loop_.GetSqe(&ignore_);
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(static_cast<Completion*>(&t)), 0);
    sqe->user_data = reinterpret_cast<uint64_t>(static_cast<Completion*>(&ignore_));
  }
}

void UblkQueue::TagDone(Tag& t) {
  if (t.done) return;
  t.done = true;
  busy_--;
  MaybeStopped();
}

void UblkQueue::Stop(std::function<void()> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  for (Tag& t : tags_) {
    if (!t.cmd_in_kernel) continue;
    io_uring_sqe* sqe = loop_.GetSqe(&ignore_);
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(static_cast<Completion*>(&t)), 0);
    sqe->user_data = reinterpret_cast<uint64_t>(static_cast<Completion*>(&ignore_));
  }
  MaybeStopped();
}

void UblkQueue::MaybeStopped() {
  if (!stopping_ || busy_ != 0 || !on_stopped_) return;
  if (cells_ != nullptr) cells_->SetInflight(0);
  stats_ = IoStatsHandle();
  cells_ = nullptr;
  auto fn = std::move(on_stopped_);
  on_stopped_ = nullptr;
  fn();
}

}  // namespace rbdnbd
