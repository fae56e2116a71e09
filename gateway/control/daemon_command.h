// `rbd-nbdd daemon`: the one process that serves every /dev/nbdX of a node.
//
// Contract: RunDaemon() runs on the main thread before any other thread. The
// main thread owns the control socket's accept loop, signals, LINK_DEAD
// events and resize events (one poll() loop); each control client is served
// on a short-lived thread; data runs on the worker loops.
//
//   start: load nbd module if needed ─► reattach devices from the state file
//          ─► listen on the control socket (0600) ─► serve
//   SIGTERM/SIGINT: stop accepting ─► finish control calls ─► detach every
//          device (the kernel keeps them, holding I/O for the reattach
//          timeout) ─► exit 0. The next daemon reattaches them.
//   SIGKILL: the kernel sees dead sockets; the next daemon reattaches.
#pragma once

namespace rbdnbd {

int RunDaemon(int argc, char** argv);
void PrintDaemonHelp();

}  // namespace rbdnbd
