// VolumeCondition: how a staged volume is doing, for NodeGetVolumeStats'
// volume_condition (the VOLUME_CONDITION node capability), judged from the
// rbd-nbdd daemon's status reply.
//
// Contract
// * EvaluateCondition() is pure (the time is a parameter). It is abnormal, with
//   a message naming the device and every reason found, when:
//     - the daemon cannot be asked (its error), or the volume has no device yet;
//     - the daemon no longer maps the volume's device, or maps it for another
//       image, or the kernel no longer has it (kernel_connected false);
//     - the device is reattaching (I/O held by the kernel) or unmapping;
//     - the daemon reports it stalled (requests in flight, none completing);
//     - requests failed in the daemon's last 60 s (recent_errors > 0);
//     - its last error is at most kRecentErrorWindow old.
//   Otherwise it is normal and the message starts with "healthy".
// * A daemon without the `health` object (older than the field) is judged by
//   the device entry's own state, last_error and last_error_unix; the checks
//   that need the newer fields (stalled, recent_errors) are skipped.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "csi/daemon_client.h"
#include "csi/volume_record.h"

namespace rbdnbd::csi {

// How long a last error keeps a volume abnormal after it happened.
inline constexpr std::chrono::seconds kRecentErrorWindow{300};

struct VolumeCondition {
  bool abnormal = false;
  std::string message;
};

VolumeCondition EvaluateCondition(const VolumeRecord& record, const Result<DaemonStatus>& status, int64_t now_unix);

}  // namespace rbdnbd::csi
