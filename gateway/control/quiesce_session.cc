#include "control/quiesce_session.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {

QuiesceSession::QuiesceSession(std::string label, std::unique_ptr<Quiescer> quiescer,
                               std::chrono::milliseconds timeout, std::function<void(int)> complete)
    : label_(std::move(label)), quiescer_(std::move(quiescer)), timeout_(timeout), complete_(std::move(complete)) {
  worker_ = std::thread([this] {
    // Signals belong to the daemon's main thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "quiesce");
    Run();
  });
}

QuiesceSession::~QuiesceSession() {
  Shutdown();
  Join();
}

void QuiesceSession::OnQuiesce() {
  std::lock_guard lock(mu_);
  events_.push_back(Event::kQuiesce);
  cv_.notify_all();
}

void QuiesceSession::OnUnquiesce() {
  std::lock_guard lock(mu_);
  events_.push_back(Event::kUnquiesce);
  cv_.notify_all();
}

void QuiesceSession::Shutdown() {
  std::unique_lock lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
  // The worker unquiesces at once; a quiesce in flight ends by its deadline.
  cv_.wait(lock, [this] { return state_ == State::kIdle || !worker_.joinable(); });
}

void QuiesceSession::Join() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    exit_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  quiescer_->Drain(QuiesceClock::now() + timeout_);
}

QuiesceSession::State QuiesceSession::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

uint64_t QuiesceSession::completed() const {
  std::lock_guard lock(mu_);
  return completed_;
}

void QuiesceSession::Complete(std::unique_lock<std::mutex>& lock, int r) {
  // Unlocked: librbd may call back into OnQuiesce/OnUnquiesce from here.
  lock.unlock();
  complete_(r);
  lock.lock();
  completed_++;
  cv_.notify_all();
}

void QuiesceSession::UnquiesceLocked(std::unique_lock<std::mutex>& lock, const char* why) {
  if (why != nullptr) spdlog::warn("quiesce: {} ({})", why, label_);
  lock.unlock();
  quiescer_->Unquiesce();
  lock.lock();
  state_ = State::kIdle;
  cv_.notify_all();
}

void QuiesceSession::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (state_ == State::kQuiesced) {
      auto deadline = QuiesceClock::now() + timeout_;
      bool woken = cv_.wait_until(lock, deadline, [this] { return !events_.empty() || shutting_down_; });
      if (!woken) {
        std::string why = fmt::format("no unquiesce within {} s: thawed anyway",
                                      std::chrono::duration_cast<std::chrono::seconds>(timeout_).count());
        UnquiesceLocked(lock, why.c_str());
        continue;
      }
      if (shutting_down_) {
        UnquiesceLocked(lock, "shutting down: thawing before the device goes");
        continue;
      }
      Event e = events_.front();
      events_.pop_front();
      if (e == Event::kUnquiesce) {
        spdlog::debug("quiesce: unquiesce ({})", label_);
        UnquiesceLocked(lock, nullptr);
      } else {
        // A new quiesce while still quiesced: it is, so say so, and the
        // unquiesce wait starts again.
        spdlog::debug("quiesce: quiesce while quiesced ({})", label_);
        Complete(lock, 0);
      }
      continue;
    }
    // Idle.
    cv_.wait(lock, [this] { return !events_.empty() || exit_; });
    if (events_.empty()) return;  // exit_, nothing left to answer
    Event e = events_.front();
    events_.pop_front();
    if (e == Event::kUnquiesce) {
      spdlog::debug("quiesce: unquiesce with nothing quiesced ({})", label_);
      continue;
    }
    if (shutting_down_) {
      spdlog::info("quiesce: refused: the device is going away ({})", label_);
      Complete(lock, -ESHUTDOWN);
      continue;
    }
    state_ = State::kQuiescing;
    auto start = QuiesceClock::now();
    lock.unlock();
    int r = quiescer_->Quiesce(start + timeout_);
    lock.lock();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(QuiesceClock::now() - start);
    if (r == 0 && shutting_down_) {
      // Quiesced just as the device goes away: undo, and fail the snapshot
      // rather than leave a filesystem frozen behind us.
      lock.unlock();
      quiescer_->Unquiesce();
      lock.lock();
      r = -ESHUTDOWN;
    }
    if (r == -ETIMEDOUT) {
      // Never ETIMEDOUT to librbd: when the snapshot was asked of us as the
      // exclusive lock owner (the usual case: the node writes, so it holds
      // the lock), the asking client's librbd takes a remote ETIMEDOUT for
      // "the lock owner did not answer" and starts over, forever
      // (Operations' C_InvokeAsyncRequest::handle_remote_request; measured:
      // `rbd snap create` spun for minutes). ETIME ("Timer expired") fails
      // it at once.
      r = -ETIME;
    }
    if (r == 0) {
      state_ = State::kQuiesced;
      spdlog::debug("quiesce: quiesced in {} ms ({})", took.count(), label_);
    } else {
      state_ = State::kIdle;
      spdlog::warn("quiesce: failed after {} ms: {} ({}); the snapshot gets error {} ({})", took.count(),
                   strerror(-r), -r, r, label_);
    }
    Complete(lock, r);
  }
}

}  // namespace rbdnbd
