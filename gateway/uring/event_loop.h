// EventLoop: one io_uring and the thread that owns it.
//
// Every worker thread runs exactly one EventLoop. All socket and file I/O of the
// connections and backends owned by a loop is submitted to that loop's ring, and
// every completion (ring CQEs, backend callbacks, cross-thread posts) is handled
// on that loop's thread. Nothing else touches a loop's connections.
//
// Completion protocol (after seastar's kernel_completion): the user_data of every
// SQE is a `Completion*`; when the CQE arrives the loop calls
// `completion->Complete(cqe->res, cqe->flags)` on the loop thread. The
// Completion must stay alive until then.
//
// Threads:
//   - Loop thread only: GetSqe(), Run(), Defer(), RunAfter(). To cancel an
//     operation, a caller preps an IORING_OP_ASYNC_CANCEL itself on an SQE
//     from GetSqe(); the loop has no cancel helper.
//   - Any thread: Post(), Stop(), InLoopThread(), name(), ring_flags().
//
//   Run() ──► [submit pending SQEs + wait for >=1 CQE] ──► dispatch CQEs ──►
//      ▲                                                  run posted tasks ──┐
//      └───────────────────────── until Stop() ──────────────────────────────┘
//
// Busy polling (Options::busy_poll, off by default): after an iteration that
// did work, the loop first spins for up to busy_poll, reaping completions and
// watching for posted tasks, before it sleeps in io_uring_enter(). At low queue
// depth this saves the thread wake-ups of "next request arrived" and "librbd
// completed" (tens of µs each on a VM) at the price of CPU while I/O is active;
// an idle loop still sleeps after one window.
#pragma once

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace rbdnbd {

// The user_data of an SQE. Complete() runs on the owning loop's thread.
class Completion {
 public:
  virtual void Complete(int res, uint32_t cqe_flags) = 0;

 protected:
  ~Completion() = default;
};

class EventLoop {
 public:
  struct Options {
    // SQ size. The CQ gets four times as many entries (IORING_SETUP_CQSIZE):
    // operations in flight are not bounded by the SQ (each submit frees its
    // SQEs for more), yet all of them may complete within one iteration, and
    // a CQ that fills up makes the kernel hold back completions.
    unsigned entries = 512;
    std::string name = "loop";
    std::chrono::microseconds busy_poll{0};  // spin this long before sleeping (0: never)
  };

  // Creates the ring. Tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN,
  // then no flags, so it works on any kernel with io_uring (5.6+). The ring is
  // bound to the thread that first calls Run().
  static Result<std::unique_ptr<EventLoop>> Create(const Options& options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Loop thread. Never returns null: when the SQ is full it submits first.
  io_uring_sqe* GetSqe();

  // Convenience: GetSqe() with user_data already set to `c`.
  io_uring_sqe* GetSqe(Completion* c) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_sqe_set_data(sqe, c);
    return sqe;
  }

  // Runs the loop on the calling thread until Stop(). Returns when stopped.
  void Run();

  // Any thread. Runs `fn` on the loop thread, in posting order. Tasks posted
  // before Stop() still run before Run() returns.
  void Post(std::function<void()> fn);

  // Any thread. Asks Run() to return after the current iteration.
  void Stop();

  // Loop thread. Runs `fn` at the end of the current iteration, after all
  // CQEs of this batch were dispatched: used to batch work (e.g. one sendmsg
  // for many replies). Cheap: no lock, no syscall.
  void Defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

  // Loop thread. Calls `fn` once on the loop thread after `delay` (an
  // IORING_OP_TIMEOUT). Timers still pending when the loop is destroyed are
  // dropped without running.
  void RunAfter(std::chrono::nanoseconds delay, std::function<void()> fn);

  bool InLoopThread() const { return owner_ == std::this_thread::get_id(); }
  const std::string& name() const { return name_; }
  // Flags the ring was created with (for logs and tests).
  unsigned ring_flags() const { return ring_flags_; }

 private:
  class WakeReader;
  class Timer;
  friend class WakeReader;
  friend class Timer;

  EventLoop(std::string name, unsigned flags, std::chrono::microseconds busy_poll);
  void ArmWake();
  // Spins up to busy_poll_ for a CQE or a posted task; true if one is there.
  bool PollBriefly();
  // Dispatches every ready CQE; returns how many.
  unsigned Reap();
  void RunPosted();
  void RunDeferred();
  void Dispatch(io_uring_cqe* cqe);

  io_uring ring_{};
  unsigned ring_flags_ = 0;
  std::string name_;
  std::chrono::microseconds busy_poll_;
  std::thread::id owner_{};
  UniqueFd wake_fd_;  // eventfd written by Post() and Stop()
  std::unique_ptr<WakeReader> wake_reader_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> wake_pending_{false};
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;  // swapped with posted_, loop thread only
  std::vector<std::function<void()>> deferred_;  // loop thread only
  std::vector<std::function<void()>> deferred_running_;
  Timer* timers_ = nullptr;  // intrusive list of pending timers, for cleanup
};

}  // namespace rbdnbd
