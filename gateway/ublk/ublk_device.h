// UblkDevice: one /dev/ublkbN backed by one Export, served by one UblkQueue
// per worker loop (N loops -> N hardware queues, capped by the kernel at the
// CPU count), beside the NBD frontend on the same loops and backends.
//
// Contract
// --------
// * Control thread only (serve's main thread, the daemon's device manager):
//   every call here is serialised by the caller. Queues live on their loops;
//   this class reaches them only by posting.
// * Lifecycle:
//
//     Add(): ADD_DEV ─► SET_PARAMS ─► open /dev/ublkcN, queues fetch on their
//            loops ─► START_DEV (returns once every tag is fetched and
//            /dev/ublkbN exists) ──► live
//     Recover() (a new daemon; the old one died and the kernel kept the
//            device QUIESCED because it was added with user recovery):
//            START_USER_RECOVERY ─► queues fetch ─► END_USER_RECOVERY ─► live
//     live ──Remove(): STOP_DEV (the disk goes; the driver aborts every
//            fetched command) ─► queues drain on their loops ─► close
//            /dev/ublkcN ─► DEL_DEV ──► gone (no /dev/ublkb*, no /dev/ublkc*)
//
//     live ──Abandon(): the kernel keeps the device; once this process's rings
//            close (it exits) the driver quiesces it and holds new I/O for the
//            next daemon's Recover() (SIGTERM, the upgrade path)
//
//   A failure after ADD_DEV goes through the same teardown, so a failed Add()
//   leaves nothing behind. A failed Recover() leaves the device as it found
//   it (quiesced, held for another try): it never removes it.
// * Add() refuses (EINVAL, before ADD_DEV) a depth or max I/O size outside
//   the kernel's limits and a shape whose buffers (queues x depth x max I/O)
//   exceed UblkBufferLimit() (ublk_params.h). Recover() takes the depth and
//   max I/O size the kernel kept for the device (a mismatch with `params` is
//   logged).
// * Remove() waits up to 10 s for the queues; if one does not drain it
//   leaves the queues (and their buffers) allocated rather than free memory
//   the kernel may still write, skips DEL_DEV and says so.
// * The loops must outlive the device, and keep running until Remove()
//   returns (or the device is destroyed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "device/export.h"
#include "ublk/ublk_control.h"
#include "ublk/ublk_params.h"
#include "ublk/ublk_queue.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

struct UblkDeviceParams {
  std::optional<uint32_t> id;  // nullopt: the kernel picks
  uint16_t queues = 0;         // 0: one per loop
  uint16_t depth = kUblkDefaultDepth;  // 1..UBLK_MAX_QUEUE_DEPTH
  UblkParamsOptions block;     // block sizes, max I/O size (4 KiB..32 MiB)
  bool user_recovery = false;  // UBLK_F_USER_RECOVERY: the kernel keeps the device if we die
  bool recovery_reissue = false;  // ..._REISSUE: requests in flight at the crash are reissued
};

class UblkDevice {
 public:
  static Result<std::unique_ptr<UblkDevice>> Add(UblkControl& ctl, LoopPool& loops, Export exp,
                                                 const UblkDeviceParams& params);
  // Takes over device `id`, left QUIESCED by a dead daemon (waits up to 30 s
  // for the driver to finish quiescing it: EBUSY until then).
  static Result<std::unique_ptr<UblkDevice>> Recover(UblkControl& ctl, LoopPool& loops, Export exp,
                                                     uint32_t id, const UblkDeviceParams& params);
  // Destroying a live device removes it (Remove()), logging any error.
  ~UblkDevice();
  UblkDevice(const UblkDevice&) = delete;
  UblkDevice& operator=(const UblkDevice&) = delete;

  Result<void> Remove();
  // Leaves the device to the kernel for a successor (see the lifecycle). The
  // queues and their buffers are left allocated, since the kernel may still
  // hold their commands: call it only on the way out of the process.
  void Abandon();
  // UPDATE_SIZE (Linux 6.16+): EOPNOTSUPP with a clear message where the
  // driver lacks it; on success the queues check requests against `bytes`.
  Result<void> Resize(uint64_t bytes);
  uint64_t size() const { return size_; }

  uint32_t id() const { return id_; }
  std::string path() const { return "/dev/ublkb" + std::to_string(id_); }
  size_t queues() const { return queues_.size(); }
  const Export& exp() const { return export_; }

 private:
  UblkDevice(UblkControl& ctl, LoopPool& loops, Export exp, uint32_t id)
      : ctl_(ctl), loops_(loops), export_(std::move(exp)), id_(id) {}
  // Opens /dev/ublkcN, creates the queues and starts them on their loops.
  Result<void> StartQueues(const ublksrv_ctrl_dev_info& info);
  // Stops the queues (after STOP_DEV), closes /dev/ublkcN, DEL_DEV.
  Result<void> Teardown(bool stop_dev);

  UblkControl& ctl_;
  LoopPool& loops_;
  Export export_;
  uint32_t id_ = 0;
  uint64_t size_ = 0;   // bytes, as the kernel device has it
  bool added_ = false;  // ADD_DEV done, DEL_DEV not yet
  UniqueFd cdev_;
  std::vector<std::unique_ptr<UblkQueue>> queues_;
};

}  // namespace rbdnbd
