// FileOp: one FileBackend request in flight on a loop's ring. Internal to
// gateway/backend.
//
// Contract
// --------
// * Start() is called on the loop thread by FileBackend::Submit(). It
//   allocates the op (or completes io with -ENOMEM), queues its first SQE on
//   `loop` and returns. The op is that SQE's user_data and owns itself: it
//   deletes itself right before calling io.OnIoDone() exactly once, from a
//   CQE on the same loop thread. It holds a shared_ptr to the backend, so the
//   fds outlive every SQE that uses them.
// * `io.data` is used by the kernel until the final CQE; nothing keeps it
//   after OnIoDone().
//
//   Start ──► kTransfer (read/write; resubmit short ones) ─────────────┐
//         ──► kFallocate (trim/zero) ── EOPNOTSUPP ─► kWriteZeroes ────┤
//         │                └─────────── ok ───────────────────────┐    │
//         ──► kSync (flush) ◄── FUA and not already RWF_DSYNC ─────┘    │
//                 │                                                    │
//                 └────────────────────► Finish: delete, OnIoDone ◄───┘
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "backend/file_backend.h"
#include "uring/event_loop.h"

namespace rbdnbd {

class FileOp final : public Completion {
 public:
  static void Start(std::shared_ptr<FileBackend> backend, EventLoop& loop, IoRequest& io);

  void Complete(int res, uint32_t cqe_flags) override;

 private:
  enum class Stage { kTransfer, kFallocate, kWriteZeroes, kSync };

  FileOp(std::shared_ptr<FileBackend> backend, EventLoop& loop, IoRequest& io)
      : backend_(std::move(backend)), loop_(loop), io_(io) {}
  ~FileOp() = default;

  void SubmitTransfer();
  void SubmitFallocate();
  void SubmitZeroWrite();
  void SubmitSync();
  // Called after the main work is done: adds an fdatasync for FUA when the
  // data did not go out with RWF_DSYNC already.
  void MainDone();
  void Finish(int result);

  const std::shared_ptr<FileBackend> backend_;
  EventLoop& loop_;
  IoRequest& io_;
  Stage stage_ = Stage::kTransfer;
  uint32_t done_ = 0;  // bytes transferred so far (kTransfer, kWriteZeroes)
  int fallocate_mode_ = 0;
};

}  // namespace rbdnbd
