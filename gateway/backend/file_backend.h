// FileBackend: serves a regular file or a block device through the caller's
// io_uring.
//
// Contract
// --------
// * Create(): opens `path` (O_RDONLY when read_only, else O_RDWR). Size comes
//   from fstat (files) or BLKGETSIZE64 (block devices) and is fixed from then
//   on. With Direct::kAuto it also opens an O_DIRECT fd and probes it with one
//   aligned read; if the filesystem refuses O_DIRECT (EINVAL) it logs and
//   stays buffered. Direct::kOn makes that refusal an error. Fails on an
//   empty file or anything that is neither a regular file nor a block device.
// * Submit(): never blocks the loop for reads, writes, flushes or file
//   trims/zeroing: each request allocates one FileOp (the SQE user_data, a
//   rbdnbd::Completion) that lives until its last CQE, then calls
//   io.OnIoDone() from that CQE, on the same loop thread. Block-device TRIM
//   (BLKDISCARD) and WRITE_ZEROES (BLKZEROOUT) are synchronous ioctls and
//   complete inline. kCache completes inline with 0 (can_cache is false).
//   Requests whose offset, length or buffer are not aligned to the O_DIRECT
//   alignment use a second, buffered fd; the kernel keeps the page cache
//   coherent with direct I/O on the same inode.
// * kRead: short reads are resubmitted; a read that hits EOF (the file shrank
//   under us) zero-pads the rest. kWrite: short writes are resubmitted; FUA is
//   RWF_DSYNC on the write. kFlush: IORING_OP_FSYNC with DATASYNC, which
//   covers every fd of the inode and so every connection (can_multi_conn).
// * kTrim: fallocate(PUNCH_HOLE|KEEP_SIZE); a filesystem that turns out not to
//   support it makes trim a successful no-op. kWriteZeroes: PUNCH_HOLE, or
//   ZERO_RANGE with kIoNoHole; EOPNOTSUPP falls back to writing zeroes. FUA
//   on either adds an fdatasync.
// * Thread-safe: the fds are fixed after Create() and what is learned at run
//   time (which fallocate modes fail) is atomic.
// * Buffers: io.data is read or filled by the kernel until the final CQE; the
//   backend keeps no pointer to it after OnIoDone().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace rbdnbd {

struct FileBackendOptions {
  enum class Direct { kAuto, kOn, kOff };

  std::string path;
  bool read_only = false;
  Direct direct = Direct::kAuto;
};

class FileOp;

class FileBackend final : public Backend, public std::enable_shared_from_this<FileBackend> {
 public:
  static Result<std::shared_ptr<Backend>> Create(const FileBackendOptions& options);

  BackendCaps Capabilities() const override;
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

  // For tests and logs. Any thread.
  bool direct() const { return direct_fd_.valid(); }
  uint32_t direct_alignment() const { return align_; }  // 1 when buffered
  bool is_block_device() const { return block_device_; }

 private:
  friend class FileOp;

  FileBackend() = default;
  Result<void> Open(const FileBackendOptions& options);
  Result<void> OpenDirect(const FileBackendOptions& options, int flags);
  uint32_t ProbeDirectAlignment(int fd) const;
  void ProbeFeatures();

  // Synchronous block-device paths (Submit() completes them inline).
  int BlockDiscard(uint64_t offset, uint64_t length);
  int BlockZeroOut(uint64_t offset, uint64_t length);

  // The fd for one transfer: the direct one when everything is aligned.
  int FdFor(uint64_t offset, uint64_t length, const void* buf) const {
    if (!direct_fd_.valid()) return buffered_fd_.get();
    uint64_t bits = offset | length | reinterpret_cast<uintptr_t>(buf);
    return (bits & (align_ - 1)) == 0 ? direct_fd_.get() : buffered_fd_.get();
  }

  std::string path_;
  UniqueFd buffered_fd_;
  UniqueFd direct_fd_;  // invalid when buffered only
  uint32_t align_ = 1;  // O_DIRECT offset/length/buffer alignment
  uint64_t size_ = 0;
  bool read_only_ = false;
  bool block_device_ = false;
  bool rotational_ = false;
  bool can_punch_hole_ = false;
  std::atomic<bool> punch_hole_failed_{false};  // EOPNOTSUPP seen at run time
  std::atomic<bool> zero_range_failed_{false};
};

}  // namespace rbdnbd
