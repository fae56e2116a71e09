// ConnectionGroup: the Connections of one owner (the socket Server, or one
// KernelDevice), spread over the loops of a LoopPool.
//
// Contract
// --------
// * Threads. Add(), Shutdown(), ForceClose(), ExpectClose(), WaitClosed(),
//   SetExportSize() and live() may be called from any thread (the owner's
//   control thread, or the Server's accept loop for Add()); they reach a
//   connection only by posting to its loop, and each Connection is created,
//   touched and destroyed on its own loop only. Posts to one loop run in
//   order, so a command given after Add() always finds the connection built.
// * Ownership. The group owns every Connection until its `on_closed` runs;
//   then the connection is deleted on its loop and no longer counted. The
//   LoopPool must outlive the group, and its loops must run until the group
//   has no connection left.
// * Add() hands `fd` to the next loop (round-robin), where `make` builds the
//   connection, which then starts at once. The fd is counted live from the
//   moment Add() returns (so a WaitClosed() right after it waits for it too).
// * Lost connections. `on_lost` runs on the connection's loop whenever a
//   connection closes although the group was never told to expect it: the
//   peer hung up, the kernel shut the socket after a timeout, the stream
//   broke. It must only post or wake. ExpectClose() (and Shutdown() or the
//   whole-group ForceClose(), which imply it) turns it off for good, so an
//   orderly teardown (or the kernel's DISCONNECT) is not reported as a loss.
// * Shutdown(): every connection stops taking requests, finishes those in
//   flight and sends their replies, then closes. ForceClose(): every
//   connection closes its socket at once (in-flight backend I/O still
//   completes first). ForceClose(ids) does it to some of them only. None of
//   these wait; WaitClosed(timeout) does, and says whether all closed.
// * SetExportSize(size, timeout) posts the new size to every live connection
//   and waits until each one has taken it, so when it returns success every
//   request any of them receives from then on is checked against `size`.
//   ETIMEDOUT if some loop did not get to it in time (the size still reaches
//   that connection later).
// * The destructor force-closes whatever is left and waits up to 30 s; a
//   connection that still has not closed by then is leaked, not freed under
//   its loop (the state its callbacks touch outlives the group).
//
//   Add ──► live (on its loop) ──► peer hangs up / error ──► closed, on_lost()
//                │
//                ├── Shutdown(): drain ──────────────────► closed (expected)
//                └── ForceClose(): close the socket ─────► closed (expected)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "device/connection.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

class ConnectionGroup {
 public:
  using Id = uint64_t;
  // Loop thread of `loop`. Builds the connection for `fd`; it must call
  // `on_closed` (the group's) when it is done. Connection::ForClient or
  // ForTransmission, bound to the owner's export and peer name.
  using Factory = std::function<std::unique_ptr<Connection>(EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                                            Connection::ClosedFn on_closed)>;
  using LostFn = std::function<void()>;

  explicit ConnectionGroup(LoopPool& loops, LostFn on_lost = {});
  ~ConnectionGroup();
  ConnectionGroup(const ConnectionGroup&) = delete;
  ConnectionGroup& operator=(const ConnectionGroup&) = delete;

  Id Add(UniqueFd fd, Factory make);

  void Shutdown();
  void ForceClose();
  void ForceClose(const std::vector<Id>& ids);
  void ExpectClose();
  // True when no connection is left.
  bool WaitClosed(std::chrono::milliseconds timeout);

  Result<void> SetExportSize(uint64_t size, std::chrono::milliseconds timeout);

  size_t live() const;

 private:
  struct State;
  struct Member;
  enum class Command { kShutdown, kForceClose };
  void PostToAll(Command command);

  LoopPool& loops_;
  // Shared with every connection's callbacks, so a connection that outlives
  // the group (see the destructor) never touches freed memory.
  std::shared_ptr<State> state_;
};

}  // namespace rbdnbd
