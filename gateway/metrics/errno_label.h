// ErrnoLabel: the one errno -> label-value mapping of every metric family with an
// `errno` or `result` label (METRICS.md): the symbol glibc knows ("EIO", "ENOSPC"),
// "E<n>" for a positive errno without one (41, 58), and "EUNKNOWN" for anything that
// is not a positive errno below kErrnoLabelLimit. A fixed set: the label never takes a
// value a user chose. Pure; any thread.
#pragma once

#include <string>

namespace rbdnbd::metrics {

// One past the largest errno Linux defines (EHWPOISON, 133).
inline constexpr int kErrnoLabelLimit = 134;

std::string ErrnoLabel(int err);

}  // namespace rbdnbd::metrics
