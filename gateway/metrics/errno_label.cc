#include "metrics/errno_label.h"

#include <fmt/format.h>

#include <cstring>

namespace rbdnbd::metrics {

std::string ErrnoLabel(int err) {
  if (err <= 0 || err >= kErrnoLabelLimit) return "EUNKNOWN";
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : fmt::format("E{}", err);
}

}  // namespace rbdnbd::metrics
