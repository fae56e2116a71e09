// Process-wide set-up shared by the long-running commands (serve, daemon).
// Main thread, before any other thread exists, so every thread inherits the
// signal mask and only the main thread ever takes SIGINT/SIGTERM/SIGHUP.
#pragma once

#include <signal.h>

namespace rbdnbd {

// Blocks SIGINT, SIGTERM and SIGHUP (for sigwait()/signalfd()) and ignores
// SIGPIPE (sockets use MSG_NOSIGNAL anyway). Returns the blocked set.
sigset_t BlockControlSignals();

// Worker loops when the user gives no --workers: one per CPU, at most 8.
unsigned DefaultWorkers();

}  // namespace rbdnbd
