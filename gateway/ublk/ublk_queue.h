// UblkQueue: one ublk hardware queue served on one EventLoop.
//
// Contract
// --------
// * Create() (control thread) maps the queue's I/O descriptor array from
//   /dev/ublkcN (read-only, shared with the driver) and one anonymous region
//   of depth x max_io_bytes for the per-tag data buffers (each tag owns a
//   fixed, 4096-aligned slice: the driver copies WRITE data into it before
//   the tag's command completes, and READ data out of it at commit, so the
//   address must be known before the request exists; that is why the
//   loop's BufferPool does not fit). The pages are touched only when used.
// * Start() and Stop() are posted to, and everything else runs on, the
//   loop's thread: the driver binds a queue to the task that issued its first
//   FETCH_REQ, so every command of the queue goes through this loop's ring.
//   The io commands (ublksrv_io_cmd, 16 bytes) fit a 64-byte SQE's command
//   area: the loop's ring needs no SQE128.
// * Per tag:
//
//     Start: FETCH_REQ ──► [in the kernel] ──CQE res 0──► decode desc[tag]
//        ▲                                                  │ Backend::Submit
//        │                                                  ▼
//        └──── COMMIT_AND_FETCH_REQ(result) ◄──── OnIoDone(result) (same loop)
//     CQE res -ENODEV (UBLK_IO_RES_ABORT: the device stopped) or any other
//     error: the tag is done and is never fetched again.
//
//   A descriptor the codec refuses (unknown op: -EOPNOTSUPP) is committed
//   with that error without reaching the backend.
// * Stop(on_stopped): after STOP_DEV the driver aborts every fetched command;
//   Stop() also tries to cancel them (IORING_OP_ASYNC_CANCEL) for drivers
//   that don't. `on_stopped` runs on the loop thread once no tag has a
//   command in the kernel or a request at the backend. The queue must not be
//   destroyed before that (or before the loop has stopped for good).
// * Statistics: each queue registers its own IoCells in the export's
//   DeviceIoStats (io_stats.h), as one NBD connection does: ops, bytes,
//   errors, latency (descriptor fetched -> result committed) and in-flight.
#pragma once

#include <linux/ublk_cmd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "common/result.h"
#include "device/export.h"
#include "device/io_stats.h"
#include "uring/event_loop.h"
#include "ublk/ublk_codec.h"

namespace rbdnbd {

class UblkQueue {
 public:
  struct Params {
    uint32_t dev_id = 0;
    uint16_t q_id = 0;
    uint16_t depth = 128;                // 1..UBLK_MAX_QUEUE_DEPTH, as the device was added
    uint32_t max_io_bytes = 512u << 10;  // each tag's buffer, as the device was added
    int cdev_fd = -1;  // /dev/ublkcN, owned by the device; outlives the queue
  };

  static Result<std::unique_ptr<UblkQueue>> Create(EventLoop& loop, Export exp, const Params& params);
  ~UblkQueue();
  UblkQueue(const UblkQueue&) = delete;
  UblkQueue& operator=(const UblkQueue&) = delete;

  // Loop thread. Issues FETCH_REQ for every tag.
  void Start();
  // Loop thread. See the contract.
  void Stop(std::function<void()> on_stopped);
  // Loop thread: the device was resized (UPDATE_SIZE); requests are checked
  // against `bytes` from now on.
  void SetSize(uint64_t bytes) { caps_.size = bytes; }

  EventLoop& loop() { return loop_; }
  uint16_t q_id() const { return params_.q_id; }
  // Loop thread: tags with a command in the kernel or a request at the backend.
  size_t busy_tags() const { return busy_; }

 private:
  struct Tag final : Completion, IoRequest {
    UblkQueue* queue = nullptr;
    uint16_t tag = 0;
    bool cmd_in_kernel = false;
    bool at_backend = false;
    bool done = false;
    UblkIo io;
    uint64_t fetched_ns = 0;
    void Complete(int res, uint32_t /*cqe_flags*/) override { queue->OnCommand(*this, res); }
    void OnIoDone(int result) override { queue->OnBackendDone(*this, result); }
  };
  struct Ignore final : Completion {
    void Complete(int, uint32_t) override {}
  };

  UblkQueue(EventLoop& loop, Export exp, const Params& params);
  void IssueCommand(Tag& t, uint32_t op, int32_t result);
  void OnCommand(Tag& t, int res);
  void OnBackendDone(Tag& t, int result);
  void Commit(Tag& t, int backend_result);
  void TagDone(Tag& t);
  void MaybeStopped();

  EventLoop& loop_;
  Export export_;
  Params params_;
  // Taken at Create(): a ublk device's features are fixed once it is added,
  // and its size changes only through SetSize(), so requests are checked against these.
  BackendCaps caps_;
  const ublksrv_io_desc* descs_ = nullptr;
  size_t descs_len_ = 0;
  uint8_t* buffers_ = nullptr;
  size_t buffers_len_ = 0;
  std::vector<Tag> tags_;
  Ignore ignore_;
  size_t busy_ = 0;
  size_t inflight_ = 0;
  bool stopping_ = false;
  uint32_t logged_errors_ = 0;
  std::function<void()> on_stopped_;
  IoStatsHandle stats_;
  IoCells* cells_ = nullptr;
};

}  // namespace rbdnbd
