#include "backend/file_op.h"

#include <linux/falloc.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace rbdnbd {
namespace {

// Source of the zero-writing fallback. 4096-aligned so O_DIRECT can use it;
// in .bss, so it costs nothing until touched. Never written.
constexpr uint32_t kZeroChunk = 1u << 20;
alignas(4096) uint8_t g_zeroes[kZeroChunk];

}  // namespace

void FileOp::Start(std::shared_ptr<FileBackend> backend, EventLoop& loop, IoRequest& io) {
  FileOp* op = new (std::nothrow) FileOp(std::move(backend), loop, io);
  if (op == nullptr) {
    io.OnIoDone(-ENOMEM);
    return;
  }
  switch (io.type) {
    case IoType::kRead:
    case IoType::kWrite:
      op->stage_ = Stage::kTransfer;
      op->SubmitTransfer();
      return;
    case IoType::kFlush:
      op->SubmitSync();
      return;
    case IoType::kTrim:
      if (!op->backend_->can_punch_hole_ ||
          op->backend_->punch_hole_failed_.load(std::memory_order_relaxed)) {
        op->Finish(0);  // trim is advisory: nothing to do is success
        return;
      }
      op->fallocate_mode_ = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      op->SubmitFallocate();
      return;
    case IoType::kWriteZeroes: {
      bool no_hole = (io.flags & kIoNoHole) != 0;
      std::atomic<bool>& failed =
          no_hole ? op->backend_->zero_range_failed_ : op->backend_->punch_hole_failed_;
      if (op->backend_->block_device_ || failed.load(std::memory_order_relaxed)) {
        op->SubmitZeroWrite();
        return;
      }
      op->fallocate_mode_ =
          (no_hole ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) | FALLOC_FL_KEEP_SIZE;
      op->SubmitFallocate();
      return;
    }
    case IoType::kCache:
      break;
  }
  op->Finish(0);
}

void FileOp::SubmitTransfer() {
  stage_ = Stage::kTransfer;
  uint64_t offset = io_.offset + done_;
  uint32_t length = io_.length - done_;
  uint8_t* buf = io_.data + done_;
  int fd = backend_->FdFor(offset, length, buf);
  io_uring_sqe* sqe = loop_.GetSqe(this);
  if (io_.type == IoType::kRead) {
    io_uring_prep_read(sqe, fd, buf, length, offset);
  } else {
    io_uring_prep_write(sqe, fd, buf, length, offset);
    if (io_.flags & kIoFua) sqe->rw_flags = RWF_DSYNC;
  }
}

void FileOp::SubmitFallocate() {
  stage_ = Stage::kFallocate;
  io_uring_sqe* sqe = loop_.GetSqe(this);
  io_uring_prep_fallocate(sqe, backend_->buffered_fd_.get(), fallocate_mode_,
                          static_cast<off_t>(io_.offset), static_cast<off_t>(io_.length));
}

void FileOp::SubmitZeroWrite() {
  stage_ = Stage::kWriteZeroes;
  uint64_t offset = io_.offset + done_;
  uint32_t length = std::min(io_.length - done_, kZeroChunk);
  int fd = backend_->FdFor(offset, length, g_zeroes);
  io_uring_sqe* sqe = loop_.GetSqe(this);
  io_uring_prep_write(sqe, fd, g_zeroes, length, offset);
  if (io_.flags & kIoFua) sqe->rw_flags = RWF_DSYNC;
}

void FileOp::SubmitSync() {
  stage_ = Stage::kSync;
  io_uring_sqe* sqe = loop_.GetSqe(this);
  // fdatasync acts on the inode, so the buffered fd covers O_DIRECT writes too.
  io_uring_prep_fsync(sqe, backend_->buffered_fd_.get(), IORING_FSYNC_DATASYNC);
}

void FileOp::MainDone() {
  bool fua = (io_.flags & kIoFua) != 0;
  if (fua && stage_ == Stage::kFallocate) {
    SubmitSync();
    return;
  }
  Finish(0);
}

void FileOp::Complete(int res, uint32_t /*cqe_flags*/) {
  if (res == -EINTR || res == -EAGAIN) {
    // Retry the same step; nothing was transferred.
    switch (stage_) {
      case Stage::kTransfer: SubmitTransfer(); return;
      case Stage::kFallocate: SubmitFallocate(); return;
      case Stage::kWriteZeroes: SubmitZeroWrite(); return;
      case Stage::kSync: SubmitSync(); return;
    }
  }
  switch (stage_) {
    case Stage::kTransfer:
      if (res < 0) return Finish(res);
      if (res == 0) {
        // EOF: the file shrank under us. Reads see zeroes past the end, as
        // rbd-nbd does; a write that makes no progress is an I/O error.
        if (io_.type != IoType::kRead) return Finish(-EIO);
        std::memset(io_.data + done_, 0, io_.length - done_);
        return Finish(0);
      }
      done_ += static_cast<uint32_t>(res);
      if (done_ < io_.length) return SubmitTransfer();
      return MainDone();
    case Stage::kFallocate:
      if (res == -EOPNOTSUPP) {
        bool zero_range = (fallocate_mode_ & FALLOC_FL_ZERO_RANGE) != 0;
        (zero_range ? backend_->zero_range_failed_ : backend_->punch_hole_failed_)
            .store(true, std::memory_order_relaxed);
        if (io_.type == IoType::kTrim) return Finish(0);
        done_ = 0;
        return SubmitZeroWrite();
      }
      if (res < 0) return Finish(res);
      return MainDone();
    case Stage::kWriteZeroes:
      if (res < 0) return Finish(res);
      if (res == 0) return Finish(-EIO);
      done_ += static_cast<uint32_t>(res);
      if (done_ < io_.length) return SubmitZeroWrite();
      return MainDone();
    case Stage::kSync:
      return Finish(res < 0 ? res : 0);
  }
}

void FileOp::Finish(int result) {
  IoRequest& io = io_;
  delete this;
  io.OnIoDone(result);
}

}  // namespace rbdnbd
