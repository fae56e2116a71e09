// QuiesceSession: one served image's answer to librbd's quiesce requests
// (rbd_quiesce_watch). Before a snapshot with quiesce, librbd calls
// "quiesce" on every watcher of the image and waits for each to complete;
// after the snapshot it calls "unquiesce".
//
// Contract
// --------
// * OnQuiesce()/OnUnquiesce() are called on librbd's thread and only queue an
//   event: the work (freezing, a hook) runs on this session's own worker
//   thread, which then calls `complete(r)` (rbd_quiesce_complete) EXACTLY ONCE
//   per OnQuiesce(), never holding the session's lock. librbd asserts on a
//   completion it did not ask for, and waits forever for one it did.
// * Bounded: a quiesce that takes longer than `timeout` completes with
//   -ETIME (not -ETIMEDOUT, which librbd retries forever when the snapshot
//   came through the lock owner; see Run()) and leaves nothing quiesced (Quiescer's contract). If no
//   unquiesce comes within `timeout` of a successful quiesce, the session
//   unquiesces anyway and warns "quiesce: no unquiesce within N s: thawed
//   anyway". (librbd's own watcher unquiesces after 10 s; this is the bound
//   for when that does not happen.)
// * Shutdown() (unmap, detach, SIGTERM) returns once nothing is quiesced: it
//   unquiesces now, answers a quiesce in flight with -ESHUTDOWN, and every
//   later OnQuiesce() too, until Join(). Call Join() after the librbd watch is
//   gone (rbd_quiesce_unwatch waits for a quiesce in flight, which needs the
//   worker to complete it).
//
//            OnQuiesce               Quiesce() ok: complete(0)
//   idle ───────────────► quiescing ─────────────────────────► quiesced
//    ▲ ▲                      │ failed or past timeout:            │
//    │ └──────────────────────┘ complete(-errno or -ETIME),        │
//    │                           nothing left                      │
//    │      OnUnquiesce, or `timeout` without one, or Shutdown():  │
//    └────────────────────────── Unquiesce() ◄─────────────────────┘
//   Shutdown(): from then on every OnQuiesce is answered -ESHUTDOWN.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/quiesce_freezer.h"

namespace rbdnbd {

struct QuiesceOptions {
  // Empty: freeze the filesystems mounted from the device (FIFREEZE).
  std::string hook;
  // Bounds one quiesce (freeze or hook), one unquiesce hook, and the wait for
  // the unquiesce after a quiesce.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

class QuiesceSession {
 public:
  enum class State { kIdle, kQuiescing, kQuiesced };

  // `label` ("DEVICE, POOL/IMAGE") names the device in log lines.
  QuiesceSession(std::string label, std::unique_ptr<Quiescer> quiescer, std::chrono::milliseconds timeout,
                 std::function<void(int)> complete);
  ~QuiesceSession();  // Shutdown() + Join()

  void OnQuiesce();
  void OnUnquiesce();
  void Shutdown();
  void Join();

  State state() const;
  // How many quiesces were completed, with any result (tests wait on it).
  uint64_t completed() const;

 private:
  enum class Event { kQuiesce, kUnquiesce };
  void Run();
  void Complete(std::unique_lock<std::mutex>& lock, int r);
  void UnquiesceLocked(std::unique_lock<std::mutex>& lock, const char* why);

  const std::string label_;
  std::unique_ptr<Quiescer> quiescer_;
  const std::chrono::milliseconds timeout_;
  std::function<void(int)> complete_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  State state_ = State::kIdle;
  bool shutting_down_ = false;
  bool exit_ = false;
  uint64_t completed_ = 0;
  std::thread worker_;
};

}  // namespace rbdnbd
