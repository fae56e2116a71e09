#include "backend/backend.h"

#include <fmt/format.h>

#include "backend/human_size.h"

namespace rbdnbd {

const char* IoTypeName(IoType t) {
  switch (t) {
    case IoType::kRead:
      return "read";
    case IoType::kWrite:
      return "write";
    case IoType::kFlush:
      return "flush";
    case IoType::kTrim:
      return "trim";
    case IoType::kWriteZeroes:
      return "write_zeroes";
    case IoType::kCache:
      return "cache";
  }
  return "unknown";
}

std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    unit++;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

}  // namespace rbdnbd
