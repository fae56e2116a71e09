#include "uring/event_loop.h"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {

// The persistent read of the wake eventfd: Post() and Stop() write it, the
// CQE brings the loop out of io_uring_enter(), and the read is re-armed.
class EventLoop::WakeReader final : public Completion {
 public:
  explicit WakeReader(EventLoop* loop) : loop_(loop) {}
  void Complete(int res, uint32_t) override {
    armed_ = false;
    if (res < 0 && res != -EINTR && res != -ECANCELED) {
      spdlog::error("{}: wake eventfd read failed: {}", loop_->name_, strerror(-res));
    }
    if (!loop_->stop_.load(std::memory_order_acquire)) loop_->ArmWake();
  }
  uint64_t value = 0;
  bool armed_ = false;

 private:
  EventLoop* loop_;
};

// One RunAfter() timer. Deletes itself after firing; pending ones are freed by
// ~EventLoop through the intrusive list.
class EventLoop::Timer final : public Completion {
 public:
  Timer(EventLoop* loop, std::function<void()> fn) : loop_(loop), fn_(std::move(fn)) {}
  void Complete(int res, uint32_t) override {
    Unlink();
    if (res != -ETIME && res != 0) {
      spdlog::warn("{}: timer completed with {}", loop_->name_, strerror(-res));
    }
    auto fn = std::move(fn_);
    delete this;
    fn();
  }
  void Link() {
    next_ = loop_->timers_;
    if (next_) next_->prev_ = this;
    loop_->timers_ = this;
  }
  void Unlink() {
    if (prev_) prev_->next_ = next_; else loop_->timers_ = next_;
    if (next_) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }
  __kernel_timespec ts{};
  Timer* next_ = nullptr;
  Timer* prev_ = nullptr;

 private:
  EventLoop* loop_;
  std::function<void()> fn_;
};

EventLoop::EventLoop(std::string name, unsigned flags, std::chrono::microseconds busy_poll)
    : ring_flags_(flags), name_(std::move(name)), busy_poll_(busy_poll) {}

Result<std::unique_ptr<EventLoop>> EventLoop::Create(const Options& options) {
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Err(errno, "eventfd: {}", strerror(errno));
  UniqueFd wake(efd);

  // SINGLE_ISSUER binds the ring to one submitting thread. The loop is created
  // here but runs on its own thread, so the ring starts disabled and Run()
  // enables it: the enabling thread becomes the submitter.
  const unsigned candidates[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int last = 0;
  for (unsigned flags : candidates) {
    io_uring_params p{};
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = options.entries * 4;
    std::unique_ptr<EventLoop> loop(new EventLoop(options.name, flags, options.busy_poll));
    last = io_uring_queue_init_params(options.entries, &loop->ring_, &p);
    if (last == -EINVAL) continue;  // flag unknown to this kernel: try the next set
    if (last < 0) break;
    loop->wake_fd_ = std::move(wake);
    loop->wake_reader_ = std::make_unique<WakeReader>(loop.get());
    return loop;
  }
  return Err(-last, "io_uring_queue_init({} entries): {}", options.entries, strerror(-last));
}

EventLoop::~EventLoop() {
  while (timers_) {
    Timer* t = timers_;
    t->Unlink();
    delete t;
  }
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* EventLoop::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      spdlog::critical("{}: io_uring_submit failed: {}", name_, strerror(-r));
    }
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void EventLoop::ArmWake() {
  if (wake_reader_->armed_) return;
  wake_reader_->armed_ = true;
  io_uring_prep_read(GetSqe(wake_reader_.get()), wake_fd_.get(), &wake_reader_->value,
                     sizeof(wake_reader_->value), 0);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    // EAGAIN means the counter is saturated: the loop is awake anyway.
    [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  }
}

void EventLoop::Stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

void EventLoop::RunAfter(std::chrono::nanoseconds delay, std::function<void()> fn) {
  auto* t = new Timer(this, std::move(fn));
  auto ns = delay.count() < 0 ? 0 : delay.count();
  t->ts.tv_sec = ns / 1000000000;
  t->ts.tv_nsec = ns % 1000000000;
  t->Link();
  io_uring_prep_timeout(GetSqe(t), &t->ts, 0, 0);
}

void EventLoop::RunPosted() {
  wake_pending_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(posted_mu_);
    if (posted_.empty()) return;
    running_.swap(posted_);
  }
  for (auto& fn : running_) fn();
  running_.clear();
}

void EventLoop::RunDeferred() {
  // Deferred work may defer more work; keep going until quiet.
  while (!deferred_.empty()) {
    deferred_running_.swap(deferred_);
    for (auto& fn : deferred_running_) fn();
    deferred_running_.clear();
  }
}

void EventLoop::Dispatch(io_uring_cqe* cqe) {
  auto* c = static_cast<Completion*>(io_uring_cqe_get_data(cqe));
  if (c != nullptr) c->Complete(cqe->res, cqe->flags);
}

unsigned EventLoop::Reap() {
  // Dispatch in batches; callbacks may submit (and so flush) new SQEs.
  unsigned total = 0;
  for (;;) {
    io_uring_cqe* cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      Dispatch(cqe);
      n++;
    }
    if (n == 0) return total;
    io_uring_cq_advance(&ring_, n);
    total += n;
  }
}

bool EventLoop::PollBriefly() {
  io_uring_submit(&ring_);  // the replies and requests of this iteration go out first
  const auto deadline = std::chrono::steady_clock::now() + busy_poll_;
  do {
    if (io_uring_cq_ready(&ring_) > 0 || wake_pending_.load(std::memory_order_acquire)) return true;
    // Runs the ring's pending task work (socket completions under
    // DEFER_TASKRUN/COOP_TASKRUN) without waiting.
    io_uring_get_events(&ring_);
    if (io_uring_cq_ready(&ring_) > 0) return true;
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

void EventLoop::Run() {
  owner_ = std::this_thread::get_id();
  if (ring_flags_ & IORING_SETUP_R_DISABLED) {
    // liburing 2.3 has no io_uring_enable_rings(): register directly.
    long r = syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (r < 0) {
      spdlog::critical("{}: enabling the ring: {}", name_, strerror(errno));
      return;
    }
  }
  ArmWake();
  RunPosted();
  RunDeferred();
  bool active = false;  // the last iteration did work: worth a busy-poll window
  while (!stop_.load(std::memory_order_acquire)) {
    bool ready = active && busy_poll_.count() > 0 && PollBriefly();
    int r = ready ? io_uring_submit(&ring_) : io_uring_submit_and_wait(&ring_, 1);
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
      spdlog::critical("{}: io_uring_submit_and_wait: {}", name_, strerror(-r));
      break;
    }
    unsigned n = Reap();
    bool posted = wake_pending_.load(std::memory_order_acquire);
    RunPosted();
    RunDeferred();
    active = n > 0 || posted;
  }
  // Tasks posted before Stop() still run.
  RunPosted();
  RunDeferred();
  io_uring_submit(&ring_);
}

}  // namespace rbdnbd
