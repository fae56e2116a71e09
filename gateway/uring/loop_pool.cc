#include "uring/loop_pool.h"

#include <csignal>

#include <fmt/format.h>

#include "common/log.h"

namespace rbdnbd {

Result<std::unique_ptr<LoopPool>> LoopPool::Create(unsigned workers, const std::string& name_prefix,
                                                   std::chrono::microseconds busy_poll) {
  if (workers == 0 || workers > 256) return Err(EINVAL, "workers must be 1..256, not {}", workers);
  auto pool = std::unique_ptr<LoopPool>(new LoopPool());
  for (unsigned i = 0; i < workers; i++) {
    auto loop = EventLoop::Create(
        {.entries = 512, .name = fmt::format("{}{}", name_prefix, i), .busy_poll = busy_poll});
    if (!loop) return WithContext(loop.error(), "creating io_uring event loop");
    auto w = std::make_unique<Worker>();
    w->loop = std::move(loop).value();
    pool->workers_.push_back(std::move(w));
  }
  return pool;
}

LoopPool::~LoopPool() { Stop(); }

void LoopPool::Start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->thread = std::thread([worker] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      SetThreadName(worker->loop->name());
      worker->loop->Run();
    });
  }
}

void LoopPool::Stop() {
  for (auto& w : workers_) w->loop->Stop();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace rbdnbd
