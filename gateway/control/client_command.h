// The CLI that talks to the daemon, in rbd-nbd's style:
//   rbd-nbdd map [-t nbd|ublk [--queue-depth N] [--max-io SIZE]] [options] POOL/[NS/]IMAGE[@SNAP]
//                                                     prints /dev/nbdX or /dev/ublkbN
//   rbd-nbdd unmap [--force] DEV|SPEC
//   rbd-nbdd list-mapped [--format plain|json]
//   rbd-nbdd attach --device DEV --cookie C [options] SPEC
//   rbd-nbdd detach DEV|SPEC
//   rbd-nbdd status
// Contract: main thread; one request per run; exit 0 on success, 1 when the
// daemon refused (its one-line error on stderr), 2 on bad usage.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "control/state_store.h"

namespace rbdnbd {

// `map -t|--device-type TYPE`, as `rbd device map -t` names it: nbd or ublk.
Result<DeviceType> ParseDeviceTypeOption(const std::string& arg);
// `map -t ublk --queue-depth N --max-io SIZE`: N in 1..4096, SIZE (ParseSize:
// 256K, 1M, ...) a multiple of 4096 from 4 KiB to 32 MiB; 0 where not given
// (the daemon's defaults). Either option with another type is EINVAL ("applies
// to -t ublk only"). The buffer memory (queues x depth x SIZE) is the daemon's
// to check: it knows its queues.
struct UblkShapeOptions {
  uint32_t queue_depth = 0;
  uint32_t max_io_bytes = 0;
};
Result<UblkShapeOptions> ParseUblkShapeOptions(DeviceType type, const std::string& queue_depth,
                                               const std::string& max_io);
// `--device` of a map of `type`: /dev/nbdN or N for nbd, /dev/ublkbN or N for ublk.
Result<uint32_t> ParseDeviceIndex(const std::string& device, DeviceType type);

int RunClientCommand(const char* command, int argc, char** argv);
void PrintClientHelp();

}  // namespace rbdnbd
