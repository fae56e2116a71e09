// UblkControl: the ublk driver's control device, /dev/ublk-control.
//
// Contract
// --------
// * Every command is an IORING_OP_URING_CMD on a small ring of our own
//   created with IORING_SETUP_SQE128 (a ublksrv_ctrl_cmd is 32 bytes, more
//   than a 64-byte SQE's command area holds). Commands run one at a time: each
//   call submits one SQE and waits for its CQE. START_DEV blocks in the kernel
//   until every queue has fetched every tag, so it must not be called from a
//   loop thread that serves one of those queues.
// * Threads: the control thread (serve's main thread, the daemon's device
//   manager). Calls are serialised by an internal mutex, so any thread works.
// * Uses the legacy opcodes of Linux 6.1's uapi header, which later kernels
//   still take (CONFIG_BLKDEV_UBLK_LEGACY_OPCODES).
// * Errors say what failed, why, and what to do (UblkCommandError): no
//   driver (ENODEV, "ublk_drv is not loaded"), no CAP_SYS_ADMIN (EPERM), the
//   driver's device limit reached (ADD_DEV's EACCES: ublks_max, with its
//   value), a device id in use by another ublk server (EEXIST), no free id
//   (ENOSPC), a flag the kernel does not know (EOPNOTSUPP: AddDev checks that
//   every asked feature flag came back), resize on a kernel without
//   UPDATE_SIZE (EOPNOTSUPP). A failed ADD_DEV leaves no device behind.
#pragma once

#include <linux/ublk_cmd.h>
#include <liburing.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace rbdnbd {

inline constexpr uint32_t kUblkAutoId = UINT32_MAX;

// Newer than Linux 6.1's uapi header (linux-libc-dev here), so spelled out.
// GET_FEATURES: Linux 6.5+, only as an ioctl-encoded opcode (_IOR('u', 0x13, ctrl cmd)).
inline constexpr uint32_t kUblkCmdGetFeatures = 0x80207513u;
// UPDATE_SIZE: Linux 6.16+ (_IOWR('u', 0x15, ctrl cmd)); data[0] is the new
// size in 512-byte sectors. The kernel has it when GET_FEATURES reports
// UBLK_F_UPDATE_SIZE. Debian 12's 6.12 does not.
inline constexpr uint32_t kUblkCmdUpdateSize = 0xc0207515u;
inline constexpr uint64_t kUblkFUpdateSize = 1ull << 10;
inline constexpr const char* kUblkControlPath = "/dev/ublk-control";
// The driver's limit on added devices (Linux 6.2+; ADD_DEV is EACCES beyond it).
inline constexpr const char* kUblksMaxParam = "/sys/module/ublk_drv/parameters/ublks_max";

// "UBLK_F_USER_RECOVERY|..." for logs and errors.
std::string UblkFlagNames(uint64_t flags);

// The Error of control command `what` ("ADD_DEV", ...) on dev_id (kUblkAutoId:
// a new device) that the driver failed with res (-errno): what it means for
// ublk and what to do. ADD_DEV's EACCES is the device limit, whose value is
// read from ublks_max_param; every other EPERM/EACCES is a missing capability.
Error UblkCommandError(const char* what, uint32_t dev_id, int res,
                       const std::string& ublks_max_param = kUblksMaxParam);

class UblkControl {
 public:
  static Result<std::unique_ptr<UblkControl>> Open(const std::string& path = kUblkControlPath);
  ~UblkControl();
  UblkControl(const UblkControl&) = delete;
  UblkControl& operator=(const UblkControl&) = delete;

  // `want.dev_id` kUblkAutoId lets the kernel pick. Returns the device as the
  // kernel made it (its id, and nr_hw_queues capped at the CPU count).
  Result<ublksrv_ctrl_dev_info> AddDev(const ublksrv_ctrl_dev_info& want);
  Result<void> SetParams(uint32_t dev_id, const ublk_params& params);
  Result<void> StartDev(uint32_t dev_id, pid_t daemon_pid);
  Result<void> StopDev(uint32_t dev_id);
  Result<void> DelDev(uint32_t dev_id);
  Result<ublksrv_ctrl_dev_info> GetDevInfo(uint32_t dev_id);
  // A restarted daemon takes over a device left QUIESCED by a dead one
  // (UBLK_F_USER_RECOVERY): Start, then fetch every tag, then End.
  Result<void> StartUserRecovery(uint32_t dev_id);
  Result<void> EndUserRecovery(uint32_t dev_id, pid_t daemon_pid);
  // Every UBLK_F_* the driver supports (GET_FEATURES, Linux 6.5+; EOPNOTSUPP before).
  Result<uint64_t> GetFeatures();
  // A live device's new size (UPDATE_SIZE). EOPNOTSUPP, saying which kernel
  // has it, where the driver lacks UBLK_F_UPDATE_SIZE (probed first).
  Result<void> UpdateSize(uint32_t dev_id, uint64_t bytes);

 private:
  explicit UblkControl(UniqueFd fd) : fd_(std::move(fd)) {}
  // Submits one command and returns the CQE's res (0 or -errno).
  int Command(uint32_t op, const ublksrv_ctrl_cmd& cmd);
  // UblkCommandError, as the failure of a Result.
  static Unexpected Fail(const char* what, uint32_t dev_id, int res);

  std::mutex mu_;
  UniqueFd fd_;
  io_uring ring_{};
  bool ring_ready_ = false;
};

}  // namespace rbdnbd
