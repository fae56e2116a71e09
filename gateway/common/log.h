// Logging: levelled logs through spdlog, as text lines or as JSON lines.
//
// Contract: SetupLogging() is called once from main() before any thread starts;
// afterwards every thread logs through spdlog's default logger
// (spdlog::info(...), spdlog::warn(...)). Each line carries the thread, so a
// device's lines can be followed across its loop. Keys and passphrases must
// never be passed to a log call; the RBD layer redacts them before logging.
//
// JSON lines (format "json"): one object per line, for log collectors:
//   {"time":"2026-12-07T06:55:00.123Z","level":"info","thread":"ctl","msg":"...",
//    "device":"/dev/nbd3","image":"rbd/img"}
// time is UTC with milliseconds; device and image appear while the logging thread
// holds a ScopedLogFields (a control thread working on one device), and are left
// out otherwise. Strings are escaped per RFC 8259 (control characters as \u00XX),
// so a line is always one valid JSON object whatever the message holds.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd {

struct LogOptions {
  std::string_view level = "info";  // trace|debug|info|warn|error|critical|off
  std::string_view target = "stderr";  // stderr | syslog | file:/path
  std::string_view format = "text";    // text | json
};

Result<void> SetupLogging(const LogOptions& options);

// Names the calling thread for logs and for `top -H` (max 15 characters).
void SetThreadName(std::string_view name);

// While alive, the calling thread's log lines carry these device and image fields
// (JSON) or a "[DEVICE IMAGE] " prefix (text). Nests: the innermost wins, the outer
// ones come back on destruction. Thread-local: never crosses threads. Empty values
// are left out.
class ScopedLogFields {
 public:
  ScopedLogFields(std::string_view device, std::string_view image);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  std::string saved_device_, saved_image_;
};

// The JSON string literal of `s` (quotes included), escaped per RFC 8259.
std::string JsonQuote(std::string_view s);

}  // namespace rbdnbd
