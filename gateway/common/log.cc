#include "common/log.h"

#include <pthread.h>

#include <cerrno>
#include <ctime>
#include <iterator>
#include <memory>
#include <string>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

namespace rbdnbd {
namespace {

thread_local std::string tls_device;
thread_local std::string tls_image;

thread_local std::string tls_thread_name;  // what SetThreadName set

// The thread's name: what SetThreadName set, else the kernel's (inherited) name.
std::string_view ThreadName() {
  if (!tls_thread_name.empty()) return tls_thread_name;
  thread_local char buf[16];
  if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0 || buf[0] == '\0') return "?";
  return buf;
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));  // UTF-8 passes through as is
        }
    }
  }
  out.push_back('"');
}

// spdlog formatter for JSON lines.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(160 + msg.payload.size());
    const auto since = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    std::time_t t = secs.count();
    std::tm tm{};
    gmtime_r(&t, &tm);
    line += "{\"time\":\"";
    fmt::format_to(std::back_inserter(line), "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    line += "\",\"level\":";
    const auto level = spdlog::level::to_string_view(msg.level);
    AppendJsonString(line, std::string_view(level.data(), level.size()));
    line += ",\"thread\":";
    AppendJsonString(line, ThreadName());
    line += ",\"msg\":";
    AppendJsonString(line, std::string_view(msg.payload.data(), msg.payload.size()));
    if (!tls_device.empty()) {
      line += ",\"device\":";
      AppendJsonString(line, tls_device);
    }
    if (!tls_image.empty()) {
      line += ",\"image\":";
      AppendJsonString(line, tls_image);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// The text pattern's "[DEVICE IMAGE] " prefix of the calling thread's fields.
class FieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (tls_device.empty() && tls_image.empty()) return;
    std::string p = "[";
    p += tls_device;
    if (!tls_device.empty() && !tls_image.empty()) p += ' ';
    p += tls_image;
    p += "] ";
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<FieldsFlag>(); }
};

}  // namespace

std::string JsonQuote(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

ScopedLogFields::ScopedLogFields(std::string_view device, std::string_view image)
    : saved_device_(std::move(tls_device)), saved_image_(std::move(tls_image)) {
  tls_device = device;
  tls_image = image;
}

ScopedLogFields::~ScopedLogFields() {
  tls_device = std::move(saved_device_);
  tls_image = std::move(saved_image_);
}

Result<void> SetupLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(std::string(options.level));
  if (level == spdlog::level::off && options.level != "off") {
    return Err(EINVAL, "unknown log level '{}' (trace|debug|info|warn|error|critical|off)",
               options.level);
  }
  if (options.format != "text" && options.format != "json") {
    return Err(EINVAL, "unknown log format '{}' (text|json)", options.format);
  }
  std::shared_ptr<spdlog::logger> logger;
  spdlog::drop("rbd-nbdd");  // a second call (tests) replaces the first logger
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
  if (options.format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<FieldsFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %*%v");
    logger->set_formatter(std::move(f));
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return {};
}

void SetThreadName(std::string_view name) {
  std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
  tls_thread_name = n;
}

}  // namespace rbdnbd
