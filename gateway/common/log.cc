#include "common/log.h"

#include <pthread.h>

#include <cerrno>
#include <string>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

namespace rbdnbd {

Result<void> SetupLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(std::string(options.level));
  if (level == spdlog::level::off && options.level != "off") {
    return Err(EINVAL, "unknown log level '{}' (trace|debug|info|warn|error|critical|off)",
               options.level);
  }
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (options.target == "stderr") {
      logger = spdlog::stderr_color_mt("rbd-nbdd");
    } else if (options.target == "syslog") {
      logger = spdlog::syslog_logger_mt("rbd-nbdd", "rbd-nbdd", LOG_PID);
    } else if (options.target.starts_with("file:")) {
      logger = spdlog::basic_logger_mt("rbd-nbdd", std::string(options.target.substr(5)));
    } else {
      return Err(EINVAL, "unknown log target '{}' (stderr|syslog|file:/path)", options.target);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Err(EIO, "cannot open log target '{}': {}", options.target, e.what());
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return {};
}

void SetThreadName(std::string_view name) {
  std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
}

}  // namespace rbdnbd
