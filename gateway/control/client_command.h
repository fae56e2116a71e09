// The CLI that talks to the daemon, in rbd-nbd's style:
//   rbd-nbdd map [options] POOL/[NS/]IMAGE[@SNAP]      prints /dev/nbdX
//   rbd-nbdd unmap [--force] DEV|SPEC
//   rbd-nbdd list-mapped [--format plain|json]
//   rbd-nbdd attach --device DEV --cookie C [options] SPEC
//   rbd-nbdd detach DEV|SPEC
//   rbd-nbdd status
// Contract: main thread; one request per run; exit 0 on success, 1 when the
// daemon refused (its one-line error on stderr), 2 on bad usage.
#pragma once

namespace rbdnbd {

int RunClientCommand(const char* command, int argc, char** argv);
void PrintClientHelp();

}  // namespace rbdnbd
