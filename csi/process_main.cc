#include "csi/process_main.h"

#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/log.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace rbdnbd::csi {

namespace {

// Above any program's own flag ids.
enum SharedFlag { kLogLevelFlag = 0x10000, kLogTargetFlag, kHelpFlag, kVersionFlag, kMetricsAddressFlag, kLogFormatFlag };

sigset_t StopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  return stop;
}

}  // namespace

std::optional<int> ParseFlags(std::string_view program, const char* usage, std::initializer_list<Flag> flags, int argc,
                              char** argv, const std::function<bool(int id, const char* value)>& on_flag,
                              SharedFlags* shared) {
  const std::string name(program);
  std::vector<option> table;
  for (const Flag& f : flags) table.push_back({f.name, required_argument, nullptr, f.id});
  table.push_back({"metrics-address", required_argument, nullptr, kMetricsAddressFlag});
  table.push_back({"log-level", required_argument, nullptr, kLogLevelFlag});
  table.push_back({"log-target", required_argument, nullptr, kLogTargetFlag});
  table.push_back({"log-format", required_argument, nullptr, kLogFormatFlag});
  table.push_back({"help", no_argument, nullptr, kHelpFlag});
  table.push_back({"version", no_argument, nullptr, kVersionFlag});
  table.push_back({nullptr, 0, nullptr, 0});
  auto is_own = [&flags](int c) {
    for (const Flag& f : flags) {
      if (f.id == c) return true;
    }
    return false;
  };

  std::string log_level = "info";
  std::string log_target = "stderr";
  std::string log_format = "text";
  for (;;) {
    int c = getopt_long(argc, argv, "", table.data(), nullptr);
    if (c == -1) break;
    switch (c) {
      case kMetricsAddressFlag:
        if (*optarg == '\0') {
          std::fprintf(stderr, "%s: --metrics-address needs HOST:PORT (leave the flag out for no metrics)\n",
                       name.c_str());
          return 2;
        }
        shared->metrics_address = optarg;
        break;
      case kLogLevelFlag: log_level = optarg; break;
      case kLogTargetFlag: log_target = optarg; break;
      case kLogFormatFlag: log_format = optarg; break;
      case kHelpFlag: std::fputs(usage, stdout); return 0;
      case kVersionFlag: std::printf("%s %s\n", name.c_str(), RBDNBD_VERSION); return 0;
      default:
        if (!is_own(c)) {  // '?': getopt_long has named the problem
          std::fputs(usage, stderr);
          return 2;
        }
        if (!on_flag(c, optarg)) return 2;
        break;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "%s: unexpected argument '%s'\n%s", name.c_str(), argv[optind], usage);
    return 2;
  }
  if (auto r = SetupLogging({log_level, log_target, log_format}); !r) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), r.error().message.c_str());
    return 2;
  }
  return std::nullopt;
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
