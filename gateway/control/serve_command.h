// `rbd-nbdd serve`: exports backends over NBD sockets (Unix and/or TCP).
//
// Contract: RunServe() is called from main() on the main thread, before any
// other thread exists. It blocks SIGINT/SIGTERM/SIGHUP, starts the worker
// loops, serves until SIGTERM or SIGINT, then drains, flushes and returns the
// process exit code (0 on a clean shutdown, 1 on a flush error, 2 on bad
// usage or start-up failure).
#pragma once

namespace rbdnbd {

int RunServe(int argc, char** argv);
void PrintServeHelp();

}  // namespace rbdnbd
