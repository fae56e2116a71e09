// The daemon's side of the control API (gateway/api/): conversions between
// the wire messages and the daemon's own types. The wire, its codec and the
// socket helpers are rbdnbd_api's; this file only knows what the daemon and
// the CLI make of them.
//
// Contract: pure conversions, any thread. FromWire() checks what the wire
// decoder cannot know (Ceph's encryption format) and fails with EINVAL; the
// daemon's request never reads the daemon's own $CEPH_ARGS. The secrets move
// from the wire request into the MapRequest (no copy is left in the wire
// request).
#pragma once

#include "api/messages.h"
#include "api/socket.h"
#include "common/result.h"
#include "control/device_manager.h"
#include "control/map_request.h"

namespace rbdnbd {

// The daemon's help and argument defaults name these.
using api::kDefaultControlSocket;
using api::kDefaultStateDir;

// The CLI: the wire request for `request` (the key and passphrase included
// when held in memory).
api::MapRequest ToWire(const MapRequest& request);
// The daemon: the request a client sent.
Result<MapRequest> FromWire(api::MapRequest wire);
// The daemon: the record an attach takes back (the spec parsed here: attach
// has no other parse on the daemon side).
Result<DeviceRecord> RecordForAttach(const api::AttachRequest& attach);
api::DeviceEntry ToWire(const MappedInfo& info);

}  // namespace rbdnbd
