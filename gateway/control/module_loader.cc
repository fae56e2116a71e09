#include "control/module_loader.h"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

extern char** environ;

namespace rbdnbd {

Result<void> EnsureNbdModule(unsigned nbds_max, unsigned max_part) {
  struct stat st;
  if (::stat("/sys/module/nbd", &st) == 0) return {};
  std::string a1 = "nbds_max=" + std::to_string(nbds_max);
  std::string a2 = "max_part=" + std::to_string(max_part);
  const char* argv[] = {"modprobe", "nbd", a1.c_str(), a2.c_str(), nullptr};
  pid_t pid;
  int r = posix_spawnp(&pid, "modprobe", nullptr, nullptr, const_cast<char**>(argv), environ);
  if (r != 0) return Err(r, "cannot run modprobe nbd: {}", strerror(r));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || ::stat("/sys/module/nbd", &st) != 0) {
    return Err(ENODEV, "the nbd kernel module is not available (modprobe nbd failed)");
  }
  spdlog::info("loaded the nbd module ({}, {})", a1, a2);
  return {};
}

}  // namespace rbdnbd
