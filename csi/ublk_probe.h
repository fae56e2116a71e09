// The kernel's UblkProbe: what the node's ublk driver offers, read from
// /dev/ublk-control with UBLK_U_CMD_GET_FEATURES.
//
// Contract
// * Probe() never fails. A missing control device is driver=false (ENOENT is
//   "ublk_drv is not loaded", any other open error says what it was, e.g.
//   EACCES). A driver that does not answer GET_FEATURES (before Linux 6.5, or
//   io_uring disabled or filtered by seccomp) is driver=true,
//   features_known=false, with the reason in `detail`.
// * The command is one IORING_OP_URING_CMD on a 2-entry ring of its own set up
//   with IORING_SETUP_SQE128 (a ublksrv_ctrl_cmd needs the 128-byte SQE), made
//   with raw syscalls: the plugin does not link liburing (csi/CMakeLists.txt).
//   The ring and the descriptor are closed before Probe() returns.
// * Asks the kernel each time (a module may be loaded after the plugin
//   started); a probe costs a few syscalls. Any thread, concurrently.
#pragma once

#include <memory>
#include <string>

#include "csi/device_type.h"

namespace rbdnbd::csi {

inline constexpr const char* kUblkControlDevice = "/dev/ublk-control";

std::unique_ptr<UblkProbe> MakeKernelUblkProbe(std::string control_path = kUblkControlDevice);

}  // namespace rbdnbd::csi
