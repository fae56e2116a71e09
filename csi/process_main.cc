#include "csi/process_main.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "common/log.h"

namespace rbdnbd::csi {

namespace {

sigset_t StopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  return stop;
}

}  // namespace

bool FinishFlags(std::string_view program, int argc, char** argv, const char* usage, const std::string& log_level,
                 const std::string& log_target) {
  std::string name(program);
  if (optind < argc) {
    std::fprintf(stderr, "%s: unexpected argument '%s'\n%s", name.c_str(), argv[optind], usage);
    return false;
  }
  if (auto r = SetupLogging({log_level, log_target}); !r) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), r.error().message.c_str());
    return false;
  }
  return true;
}

void BlockStopSignals() {
  sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal() {
  sigset_t stop = StopSignals();
  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  return sig;
}

}  // namespace rbdnbd::csi
