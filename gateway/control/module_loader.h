// Loads the nbd kernel module when the netlink family is missing, with the
// admin's nbds_max / max_part. Control thread; runs modprobe with a fixed argv
// (no shell, no user strings besides two validated numbers).
#pragma once

#include "common/result.h"

namespace rbdnbd {

Result<void> EnsureNbdModule(unsigned nbds_max, unsigned max_part);

}  // namespace rbdnbd
