// Parsing of human sizes ("4096", "64K", "1G", "1.5T" is rejected) and of
// small integers, for the CLI and export specs. Pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace rbdnbd {

// Accepts a decimal integer with an optional binary suffix K, M, G, T, P (also
// KiB, MiB, ...; case-insensitive). Rejects empty, negative, fractional and
// overflowing values with EINVAL / ERANGE.
Result<uint64_t> ParseSize(std::string_view text);

// Decimal unsigned integer in [min, max].
Result<uint64_t> ParseUint(std::string_view text, uint64_t min, uint64_t max);

}  // namespace rbdnbd
