// The CLI that talks to the daemon, in rbd-nbd's style:
//   rbd-nbdd map [-t nbd|ublk] [options] POOL/[NS/]IMAGE[@SNAP]
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
// `--device` of a map of `type`: /dev/nbdN or N for nbd, /dev/ublkbN or N for ublk.
Result<uint32_t> ParseDeviceIndex(const std::string& device, DeviceType type);

int RunClientCommand(const char* command, int argc, char** argv);
void PrintClientHelp();

}  // namespace rbdnbd
