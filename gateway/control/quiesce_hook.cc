#include "control/quiesce_hook.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace rbdnbd {

namespace {

constexpr size_t kMaxOutput = 4096;
// The hook's whole environment: enough to find fsfreeze, findmnt and a shell.
constexpr const char* kHookPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

using Clock = std::chrono::steady_clock;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void ReadSome(int fd, std::string* out) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;  // EAGAIN, EOF or an error: nothing more now
    size_t room = kMaxOutput - std::min(kMaxOutput, out->size());
    out->append(buf, std::min(room, static_cast<size_t>(n)));
  }
}

}  // namespace

Result<void> CheckQuiesceHook(const std::string& path) {
  if (path.empty() || path[0] != '/') return Err(EINVAL, "'{}' is not an absolute path", path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Err(errno, "'{}': {}", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return Err(EINVAL, "'{}' is not a regular file", path);
  if (::access(path.c_str(), X_OK) != 0) return Err(errno, "'{}' is not executable: {}", path, strerror(errno));
  return {};
}

HookResult RunHook(const std::string& path, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout) {
  HookResult res;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    res.status = -errno;
    return res;
  }
  UniqueFd read_end(p[0]), write_end(p[1]);
  // The child's end must block like any stdout would.
  ::fcntl(write_end.get(), F_SETFL, ::fcntl(write_end.get(), F_GETFL) & ~O_NONBLOCK);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // nothing of the daemon's above stderr
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group, so a timeout kills its children too
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {const_cast<char*>(kHookPath), nullptr};
  pid_t pid = -1;
  int r = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  write_end.Reset();
  if (r != 0) {
    res.status = -r;
    return res;
  }

  UniqueFd pidfd(PidfdOpen(pid));
  int status = 0;
  bool exited = false;
  while (!exited) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    // The pidfd says when the child exits; without one (old kernel) poll the
    // pipe in short steps and look again.
    pollfd fds[2] = {{read_end.get(), POLLIN, 0}, {pidfd ? pidfd.get() : -1, POLLIN, 0}};
    int wait_ms = pidfd ? static_cast<int>(left) : static_cast<int>(std::min<long long>(left, 20));
    if (::poll(fds, 2, wait_ms) > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      ReadSome(read_end.get(), &res.output);
      if (fds[0].revents & POLLHUP) read_end.Reset();  // closed by every writer: stop watching it
    }
  }
  if (!exited) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (read_end) ReadSome(read_end.get(), &res.output);
  while (!res.output.empty() && res.output.back() == '\n') res.output.pop_back();
  res.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (!exited) {
    res.signal = SIGKILL;
    res.status = -ETIMEDOUT;
  } else if (WIFEXITED(status)) {
    res.exit_code = WEXITSTATUS(status);
    res.status = res.exit_code == 0 ? 0 : -EIO;
  } else {
    res.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    res.status = -EIO;
  }
  return res;
}

std::string DescribeHookResult(const HookResult& r) {
  std::string what;
  if (r.status == -ETIMEDOUT) {
    what = fmt::format("timed out after {} ms (killed)", r.took.count());
  } else if (r.exit_code >= 0) {
    what = fmt::format("exit {} after {} ms", r.exit_code, r.took.count());
  } else if (r.signal != 0) {
    what = fmt::format("killed by signal {} after {} ms", r.signal, r.took.count());
  } else {
    what = fmt::format("could not run: {}", strerror(-r.status));
  }
  if (!r.output.empty() && r.exit_code != 0) what += fmt::format("; output: {}", r.output);
  return what;
}

}  // namespace rbdnbd
