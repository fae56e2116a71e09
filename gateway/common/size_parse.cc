#include "common/size_parse.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <limits>
#include <string>

namespace rbdnbd {

Result<uint64_t> ParseUint(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size()) {
    return Err(EINVAL, "'{}' is not a non-negative integer", text);
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    return Err(ERANGE, "{} is out of range [{}, {}]", text, min, max);
  }
  return v;
}

Result<uint64_t> ParseSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) digits++;
  if (digits == 0) return Err(EINVAL, "'{}' is not a size (examples: 4096, 64K, 1G)", text);
  std::string suffix;
  for (char c : text.substr(digits)) suffix.push_back(static_cast<char>(std::toupper(c)));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") shift = 0;
  else if (suffix == "K" || suffix == "KB" || suffix == "KIB") shift = 10;
  else if (suffix == "M" || suffix == "MB" || suffix == "MIB") shift = 20;
  else if (suffix == "G" || suffix == "GB" || suffix == "GIB") shift = 30;
  else if (suffix == "T" || suffix == "TB" || suffix == "TIB") shift = 40;
  else if (suffix == "P" || suffix == "PB" || suffix == "PIB") shift = 50;
  else return Err(EINVAL, "'{}' has an unknown size suffix (use K, M, G, T or P)", text);
  auto base = ParseUint(text.substr(0, digits), 0, std::numeric_limits<uint64_t>::max());
  if (!base) return Err(EINVAL, "'{}' is not a size", text);
  if (*base > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Err(ERANGE, "size '{}' overflows 64 bits", text);
  }
  return *base << shift;
}

}  // namespace rbdnbd
