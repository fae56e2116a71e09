// HumanSize(): "1.0 GiB"-style sizes for the backends' Describe() strings.
// Internal to gateway/backend. Pure function.
#pragma once

#include <cstdint>
#include <string>

namespace rbdnbd {

std::string HumanSize(uint64_t bytes);

}  // namespace rbdnbd
