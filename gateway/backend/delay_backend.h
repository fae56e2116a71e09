// DelayBackend: adds latency before each request (after nbdkit's delay
// filter). A test tool for timeouts, queue depth and slow-backend behaviour.
//
// Contract
// --------
// * Submit(): waits the delay for the request's type (read: kRead, write:
//   kWrite, other: everything else) with loop.RunAfter() on the SAME loop,
//   then calls the inner backend's Submit() on that loop thread. A zero delay
//   submits directly. The request never completes inline unless its delay is
//   zero and the inner backend completes inline.
// * `io` must stay valid until OnIoDone, as for every backend; the timer
//   holds a shared_ptr to the inner backend. If the loop is destroyed while a
//   timer is pending, that request is dropped (shutdown only).
// * Capabilities() is the inner backend's. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

struct DelayOptions {
  std::chrono::microseconds read{0};
  std::chrono::microseconds write{0};
  std::chrono::microseconds other{0};
};

class DelayBackend final : public Backend {
 public:
  // Fails with EINVAL on a negative delay or a null `inner`.
  static Result<std::shared_ptr<Backend>> Create(std::shared_ptr<Backend> inner,
                                                 const DelayOptions& options);

  BackendCaps Capabilities() const override { return inner_->Capabilities(); }
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

 private:
  DelayBackend(std::shared_ptr<Backend> inner, const DelayOptions& options)
      : inner_(std::move(inner)), options_(options) {}

  const std::shared_ptr<Backend> inner_;
  const DelayOptions options_;
};

}  // namespace rbdnbd
