// Logging: levelled logs through spdlog.
//
// Contract: SetupLogging() is called once from main() before any thread starts;
// afterwards every thread logs through spdlog's default logger
// (spdlog::info(...), spdlog::warn(...)). Each line carries the thread name, so
// a device's lines can be followed across its loop. Keys and passphrases must
// never be passed to a log call; the RBD layer redacts them before logging.
#pragma once

#include <string_view>

#include "common/result.h"

namespace rbdnbd {

struct LogOptions {
  std::string_view level = "info";  // trace|debug|info|warn|error|critical|off
  std::string_view target = "stderr";  // stderr | syslog | file:/path
};

Result<void> SetupLogging(const LogOptions& options);

// Names the calling thread for logs and for `top -H` (max 15 characters).
void SetThreadName(std::string_view name);

}  // namespace rbdnbd
