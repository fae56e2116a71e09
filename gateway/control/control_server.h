// The daemon's control server: serves one client of the control socket.
//
// Contract: ServeClient() runs on the client's own short-lived thread (one
// per accepted connection, see daemon_command.h) and blocks on that client
// only: it refuses a peer that is neither root nor the daemon's user (EPERM,
// SO_PEERCRED), reads one request line, answers one reply line (the codec of
// gateway/api/) and closes. A bad request gets an error reply naming the
// problem and changes nothing. The request line, which may hold a key, is
// wiped once decoded. DeviceManager is thread-safe; this holds no lock.
// `calls` (optional) counts every answered request by op and result, for
// rbdnbd_control_requests_total; a request that does not decode is op
// "invalid"; a refused peer or a client that left unanswered counts nothing.
#pragma once

#include "common/unique_fd.h"
#include "control/daemon_metrics.h"
#include "control/device_manager.h"

namespace rbdnbd {

void ServeClient(UniqueFd fd, DeviceManager& manager, ControlCalls* calls = nullptr);

}  // namespace rbdnbd
