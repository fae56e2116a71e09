// FaultBackend: injects errors into chosen requests (after nbdkit's error
// filter). A test tool: it lets frontends and clients exercise their error
// paths against a backend that otherwise works.
//
// Contract
// --------
// * A request "matches" when its type is in op_mask, it overlaps
//   [range_begin, range_end) (kFlush has no range and always overlaps), and
//   trigger_file is empty or exists at Submit() time.
// * A matching request fails if every != 0 and it is the every-th, 2*every-th,
//   ... matching request; or with probability `rate`; or, when both every and
//   rate are 0, always.
// * A failed request completes INLINE with io.OnIoDone(-error); the inner
//   backend never sees it. Every other request goes to the inner backend
//   unchanged, on the same loop, and completes however that one completes.
// * Capabilities() and Describe() are the inner backend's (Describe adds a
//   "+fault(...)" suffix). Thread-safe: the counters are atomics and the
//   random generator is per thread.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

// Bit for an IoType in FaultOptions::op_mask.
constexpr uint32_t IoTypeBit(IoType t) { return 1u << static_cast<unsigned>(t); }
inline constexpr uint32_t kAllIoTypes =
    IoTypeBit(IoType::kRead) | IoTypeBit(IoType::kWrite) | IoTypeBit(IoType::kFlush) |
    IoTypeBit(IoType::kTrim) | IoTypeBit(IoType::kWriteZeroes) | IoTypeBit(IoType::kCache);

struct FaultOptions {
  int error = EIO;                // positive errno the failed requests return
  uint32_t op_mask = kAllIoTypes;  // IoTypeBit()s of the request types to fail
  double rate = 0;                // probability 0..1 that a match fails
  uint64_t every = 0;             // fail every Nth match (0: off)
  uint64_t range_begin = 0;       // only requests overlapping [begin, end)
  uint64_t range_end = std::numeric_limits<uint64_t>::max();
  std::string trigger_file = {};  // if set: inject only while it exists
};

class FaultBackend final : public Backend {
 public:
  // Fails with EINVAL on error <= 0 or > 4095, rate outside [0, 1], an empty
  // range or a null `inner`.
  static Result<std::shared_ptr<Backend>> Create(std::shared_ptr<Backend> inner,
                                                 const FaultOptions& options);

  BackendCaps Capabilities() const override { return inner_->Capabilities(); }
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

  // For tests and stats. Any thread.
  uint64_t matched() const { return matched_.load(std::memory_order_relaxed); }
  uint64_t injected() const { return injected_.load(std::memory_order_relaxed); }

 private:
  FaultBackend(std::shared_ptr<Backend> inner, FaultOptions options)
      : inner_(std::move(inner)), options_(std::move(options)) {}
  bool Matches(const IoRequest& io) const;
  bool ShouldFail();

  const std::shared_ptr<Backend> inner_;
  const FaultOptions options_;
  std::atomic<uint64_t> matched_{0};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace rbdnbd
