// RunHook: runs a quiesce hook (`--quiesce-hook PATH`) as `PATH ARGS...`,
// bounded in time. rbd-nbd's convention: `PATH DEVICE quiesce` and
// `PATH DEVICE unquiesce`.
//
// Contract
// --------
// * posix_spawn with an argv array: no shell, PATH is not searched (give an
//   absolute path). The child gets an empty signal mask, default dispositions
//   (the daemon blocks SIGTERM and ignores SIGPIPE; a hook must not inherit
//   that), stdin from /dev/null, stdout+stderr into a pipe (the first 4 KiB
//   are kept for the log), no inherited descriptor above 2, its own process
//   group, and an environment of PATH only: no key, keyring path or
//   passphrase of the daemon can reach it through argv or the environment.
// * Returns by `timeout` at the latest: past it, the whole process group is
//   SIGKILLed and reaped, and the result is ETIMEDOUT.
// * Blocking; any thread; reaps only the child it spawned (waitpid(pid)).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace rbdnbd {

// For the command line: an absolute path to an executable regular file.
Result<void> CheckQuiesceHook(const std::string& path);

struct HookResult {
  // 0: ran and exited 0. -ETIMEDOUT: killed at the bound. -EIO: exited
  // non-zero or died of a signal. Other -errno: could not be spawned.
  int status = 0;
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it (SIGKILL after a timeout)
  std::string output;  // stdout+stderr, at most 4 KiB, trailing newline trimmed
  std::chrono::milliseconds took{0};
};

HookResult RunHook(const std::string& path, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout);

// "exit 1", "killed by signal 9", "timed out after 2000 ms", "spawn: No such file..."
std::string DescribeHookResult(const HookResult& r);

}  // namespace rbdnbd
