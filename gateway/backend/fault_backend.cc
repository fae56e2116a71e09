#include "backend/fault_backend.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

namespace rbdnbd {

Result<std::shared_ptr<Backend>> FaultBackend::Create(std::shared_ptr<Backend> inner,
                                                      const FaultOptions& options) {
  if (inner == nullptr) return Err(EINVAL, "fault backend: no inner backend");
  if (options.error <= 0 || options.error > 4095) {
    return Err(EINVAL, "fault backend: error {} is not a positive errno", options.error);
  }
  if (!(options.rate >= 0 && options.rate <= 1)) {
    return Err(EINVAL, "fault backend: rate {} is not in [0, 1]", options.rate);
  }
  if (options.range_begin >= options.range_end) {
    return Err(EINVAL, "fault backend: range [{}, {}) is empty", options.range_begin,
               options.range_end);
  }
  return std::shared_ptr<Backend>(new FaultBackend(std::move(inner), options));
}

bool FaultBackend::Matches(const IoRequest& io) const {
  if ((options_.op_mask & IoTypeBit(io.type)) == 0) return false;
  if (io.type != IoType::kFlush) {
    // Half-open overlap; a zero-length request is treated as one byte wide.
    uint64_t end = io.offset + std::max<uint64_t>(io.length, 1);
    if (end <= options_.range_begin || io.offset >= options_.range_end) return false;
  }
  if (!options_.trigger_file.empty() && ::access(options_.trigger_file.c_str(), F_OK) != 0) {
    return false;
  }
  return true;
}

bool FaultBackend::ShouldFail() {
  uint64_t n = matched_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (options_.every == 0 && options_.rate == 0) return true;
  if (options_.every != 0 && n % options_.every == 0) return true;
  if (options_.rate > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    thread_local std::uniform_real_distribution<double> dist(0.0, 1.0);
    if (dist(rng) < options_.rate) return true;
  }
  return false;
}

void FaultBackend::Submit(EventLoop& loop, IoRequest& io) {
  if (Matches(io) && ShouldFail()) {
    injected_.fetch_add(1, std::memory_order_relaxed);
    io.OnIoDone(-options_.error);
    return;
  }
  inner_->Submit(loop, io);
}

std::string FaultBackend::Describe() const {
  std::string ops;
  for (IoType t : {IoType::kRead, IoType::kWrite, IoType::kFlush, IoType::kTrim,
                   IoType::kWriteZeroes, IoType::kCache}) {
    if (options_.op_mask & IoTypeBit(t)) ops += (ops.empty() ? "" : "+") + std::string(IoTypeName(t));
  }
  std::string when;
  if (options_.every != 0) when += fmt::format(" every {}", options_.every);
  if (options_.rate > 0) when += fmt::format(" rate {}", options_.rate);
  if (!options_.trigger_file.empty()) when += " while " + options_.trigger_file + " exists";
  const char* name = strerrorname_np(options_.error);
  return fmt::format("{} +fault({} on {}{})", inner_->Describe(),
                     name != nullptr ? name : std::to_string(options_.error), ops, when);
}

}  // namespace rbdnbd
