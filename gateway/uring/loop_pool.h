// LoopPool: N worker threads, each running one EventLoop with its own
// BufferPool. This is the thread model of the whole gateway: one ring per
// thread, no shared data-path state between threads.
//
// Contract: Create() on the main thread; Start() spawns the threads (they
// block every signal, so signals reach only the main thread); Stop() asks each
// loop to stop and joins. loop(i) and pool(i) may be handed to code that runs
// on worker i; PickNext() is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "uring/buffer_pool.h"
#include "uring/event_loop.h"

namespace rbdnbd {

class LoopPool {
 public:
  // busy_poll: each loop's EventLoop::Options::busy_poll (0: sleep at once).
  static Result<std::unique_ptr<LoopPool>> Create(unsigned workers, const std::string& name_prefix,
                                                  std::chrono::microseconds busy_poll = {});
  ~LoopPool();

  void Start();
  void Stop();

  size_t size() const { return workers_.size(); }
  EventLoop& loop(size_t i) { return *workers_[i]->loop; }
  BufferPool& pool(size_t i) { return workers_[i]->pool; }
  // Round-robin choice of a worker for a new connection.
  size_t PickNext() { return next_.fetch_add(1, std::memory_order_relaxed) % workers_.size(); }

 private:
  struct Worker {
    std::unique_ptr<EventLoop> loop;
    BufferPool pool;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<size_t> next_{0};
  bool started_ = false;
};

}  // namespace rbdnbd
