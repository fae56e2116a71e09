#include "backend/delay_backend.h"

#include <cerrno>

#include <fmt/format.h>

#include "uring/event_loop.h"

namespace rbdnbd {

Result<std::shared_ptr<Backend>> DelayBackend::Create(std::shared_ptr<Backend> inner,
                                                      const DelayOptions& options) {
  if (inner == nullptr) return Err(EINVAL, "delay backend: no inner backend");
  if (options.read.count() < 0 || options.write.count() < 0 || options.other.count() < 0) {
    return Err(EINVAL, "delay backend: delays must not be negative");
  }
  return std::shared_ptr<Backend>(new DelayBackend(std::move(inner), options));
}

void DelayBackend::Submit(EventLoop& loop, IoRequest& io) {
  std::chrono::microseconds delay = io.type == IoType::kRead    ? options_.read
                                    : io.type == IoType::kWrite ? options_.write
                                                                : options_.other;
  if (delay.count() == 0) {
    inner_->Submit(loop, io);
    return;
  }
  loop.RunAfter(delay, [inner = inner_, &loop, &io] { inner->Submit(loop, io); });
}

std::string DelayBackend::Describe() const {
  return fmt::format("{} +delay(read {}us, write {}us, other {}us)", inner_->Describe(),
                     options_.read.count(), options_.write.count(), options_.other.count());
}

}  // namespace rbdnbd
