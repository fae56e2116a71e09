#include "control/quiesce_freezer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "control/quiesce_hook.h"

namespace rbdnbd {

namespace {

class IoctlFreezer final : public Freezer {
 public:
  int Freeze(const std::string& mp) override { return Ioctl(mp, FIFREEZE); }
  int Thaw(const std::string& mp) override { return Ioctl(mp, FITHAW); }

 private:
  static int Ioctl(const std::string& mp, unsigned long request) {
    UniqueFd fd(::open(mp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return -errno;
    return ::ioctl(fd.get(), request, 0) == 0 ? 0 : -errno;
  }
};

Result<std::string> ReadProcMountInfo() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Err(errno, "cannot read /proc/self/mountinfo: {}", strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::chrono::milliseconds Left(QuiesceClock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - QuiesceClock::now()));
}

}  // namespace

std::shared_ptr<Freezer> MakeIoctlFreezer() { return std::make_shared<IoctlFreezer>(); }

// One FIFREEZE on a thread of its own, so that the session can give up on it
// at the deadline; whoever is last to look (the waiter or the thread) decides
// whether the filesystem must be thawed again.
struct FsQuiescer::PendingFreeze {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool abandoned = false;
  int result = 0;
};

FsQuiescer::FsQuiescer(std::string device, std::string spec, FsQuiescerSources sources)
    : device_(std::move(device)), label_(fmt::format("{}, {}", device_, spec)), src_(std::move(sources)) {
  if (!src_.mountinfo) src_.mountinfo = ReadProcMountInfo;
  if (!src_.device_numbers) src_.device_numbers = [d = device_] { return DeviceNumbersOf(d); };
  if (!src_.freezer) src_.freezer = MakeIoctlFreezer();
}

FsQuiescer::~FsQuiescer() {
  ThawAll();
  // A freeze still stuck in the kernel: its thread keeps only shared state
  // and thaws when the ioctl returns.
  for (auto& straggler : stragglers_) straggler.second.detach();
}

int FsQuiescer::FreezeBounded(const std::string& mp, QuiesceClock::time_point deadline) {
  auto op = std::make_shared<PendingFreeze>();
  std::thread t([op, freezer = src_.freezer, mp, label = label_] {
    int r = freezer->Freeze(mp);
    std::lock_guard lock(op->mu);
    op->done = true;
    op->result = r;
    if (op->abandoned && r == 0) {
      int t = freezer->Thaw(mp);
      spdlog::warn("quiesce: the freeze of {} ({}) ended after its deadline; thawed it again{}", mp, label,
                   t == 0 ? "" : fmt::format(" (thaw: {})", strerror(-t)));
    }
    op->cv.notify_all();
  });
  std::unique_lock lock(op->mu);
  if (op->cv.wait_until(lock, deadline, [&op] { return op->done; })) {
    int r = op->result;
    lock.unlock();
    t.join();
    return r;
  }
  op->abandoned = true;
  lock.unlock();
  stragglers_.emplace_back(op, std::move(t));
  return -ETIMEDOUT;
}

void FsQuiescer::ReapStragglers() {
  for (auto it = stragglers_.begin(); it != stragglers_.end();) {
    bool done;
    {
      std::lock_guard lock(it->first->mu);
      done = it->first->done;
    }
    if (!done) {
      ++it;
      continue;
    }
    it->second.join();
    it = stragglers_.erase(it);
  }
}

int FsQuiescer::Quiesce(QuiesceClock::time_point deadline) {
  ReapStragglers();
  if (!stragglers_.empty()) {
    spdlog::warn("quiesce: a freeze from an earlier quiesce of {} is still running; refusing", label_);
    return -EBUSY;
  }
  auto numbers = src_.device_numbers();
  if (!numbers) {
    spdlog::warn("quiesce: {}: {}", label_, numbers.error().message);
    return -numbers.error().code;
  }
  auto text = src_.mountinfo();
  if (!text) {
    spdlog::warn("quiesce: {}: {}", label_, text.error().message);
    return -text.error().code;
  }
  auto mounts = MountsToFreeze(ParseMountInfo(*text), *numbers);
  if (mounts.empty()) {
    spdlog::debug("quiesce: no filesystem mounted from {}", label_);
    return 0;
  }
  for (const auto& mp : mounts) {
    int r = FreezeBounded(mp, deadline);
    if (r == 0) {
      frozen_.push_back(mp);
      spdlog::info("quiesce: froze {} ({})", mp, label_);
      continue;
    }
    spdlog::warn("quiesce: cannot freeze {} ({}): {} ({}){}", mp, label_, strerror(-r), -r,
                 frozen_.empty() ? "" : fmt::format("; thawing the {} frozen before it", frozen_.size()));
    ThawAll();
    return r;
  }
  return 0;
}

void FsQuiescer::ThawAll() {
  // Reverse order: the last frozen is the first thawed, as fsfreeze users do.
  while (!frozen_.empty()) {
    std::string mp = std::move(frozen_.back());
    frozen_.pop_back();
    int r = src_.freezer->Thaw(mp);
    if (r == 0) {
      spdlog::info("quiesce: thawed {} ({})", mp, label_);
    } else {
      // EINVAL: not frozen any more (an operator's fsfreeze -u got there first).
      spdlog::warn("quiesce: cannot thaw {} ({}): {} ({})", mp, label_, strerror(-r), -r);
    }
  }
}

void FsQuiescer::Unquiesce() { ThawAll(); }

bool FsQuiescer::Drain(QuiesceClock::time_point deadline) {
  for (auto& [op, t] : stragglers_) {
    std::unique_lock lock(op->mu);
    op->cv.wait_until(lock, deadline, [&op = op] { return op->done; });
  }
  ReapStragglers();
  for (size_t i = 0; i < stragglers_.size(); i++) {
    spdlog::error("quiesce: a freeze of a filesystem on {} is still stuck in the kernel; it is thawed when "
                  "the freeze returns (fsfreeze -u MOUNTPOINT by hand if this daemon is gone by then)",
                  label_);
  }
  return stragglers_.empty();
}

HookQuiescer::HookQuiescer(std::string hook, std::string device, std::string spec, std::chrono::milliseconds timeout)
    : hook_(std::move(hook)), device_(std::move(device)), label_(fmt::format("{}, {}", device_, spec)),
      timeout_(timeout) {}

int HookQuiescer::Quiesce(QuiesceClock::time_point deadline) {
  HookResult r = RunHook(hook_, {device_, "quiesce"}, Left(deadline));
  if (r.status == 0) {
    spdlog::info("quiesce: hook '{} {} quiesce' succeeded in {} ms ({})", hook_, device_, r.took.count(), label_);
    return 0;
  }
  spdlog::warn("quiesce: hook '{} {} quiesce' failed ({}): {}; running its unquiesce to undo what it did",
               hook_, device_, label_, DescribeHookResult(r));
  HookResult undo = RunHook(hook_, {device_, "unquiesce"}, timeout_);
  if (undo.status != 0) {
    spdlog::warn("quiesce: hook '{} {} unquiesce' failed ({}): {}", hook_, device_, label_, DescribeHookResult(undo));
  }
  return r.status;
}

void HookQuiescer::Unquiesce() {
  HookResult r = RunHook(hook_, {device_, "unquiesce"}, timeout_);
  if (r.status == 0) {
    spdlog::info("quiesce: hook '{} {} unquiesce' succeeded in {} ms ({})", hook_, device_, r.took.count(), label_);
  } else {
    spdlog::warn("quiesce: hook '{} {} unquiesce' failed ({}): {}", hook_, device_, label_, DescribeHookResult(r));
  }
}

}  // namespace rbdnbd
