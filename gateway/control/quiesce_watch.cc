#include "control/quiesce_watch.h"

#include <spdlog/spdlog.h>

namespace rbdnbd {

Result<std::unique_ptr<RbdQuiesceWatch>> RbdQuiesceWatch::Start(std::shared_ptr<RbdBackend> backend,
                                                                const std::string& device,
                                                                const QuiesceOptions& options) {
  const std::string spec = backend->spec().ToString();
  if (backend->read_only()) return Err(EROFS, "'{}' is read-only: no quiesce watch", spec);
  std::unique_ptr<Quiescer> q;
  if (options.hook.empty()) {
    q = std::make_unique<FsQuiescer>(device, spec);
  } else {
    q = std::make_unique<HookQuiescer>(options.hook, device, spec, options.timeout);
  }
  std::unique_ptr<RbdQuiesceWatch> w(new RbdQuiesceWatch());
  w->backend_ = backend;
  RbdBackend* raw = backend.get();  // the watch holds the shared_ptr for the session's life
  w->session_ = std::make_unique<QuiesceSession>(fmt::format("{}, {}", device, spec), std::move(q), options.timeout,
                                                 [raw](int r) { raw->QuiesceComplete(r); });
  QuiesceSession* s = w->session_.get();
  if (auto r = backend->WatchQuiesce([s] { s->OnQuiesce(); }, [s] { s->OnUnquiesce(); }); !r) {
    w->backend_.reset();  // nothing registered: the destructor has no watch to remove
    return Unexpected(r.error());
  }
  spdlog::debug("quiesce: watching {} for quiesce requests ({}, timeout {} ms)", spec,
                options.hook.empty() ? "freeze" : "hook " + options.hook, options.timeout.count());
  return w;
}

std::unique_ptr<RbdQuiesceWatch> RbdQuiesceWatch::StartOrWarn(std::shared_ptr<RbdBackend> backend,
                                                              const std::string& device,
                                                              const QuiesceOptions& options) {
  if (backend->read_only()) return nullptr;
  auto w = Start(std::move(backend), device, options);
  if (!w) {
    spdlog::warn("{}: {}; its snapshots will be crash-consistent only", device, w.error().message);
    return nullptr;
  }
  return std::move(w).value();
}

RbdQuiesceWatch::~RbdQuiesceWatch() {
  session_->Shutdown();
  if (backend_) backend_->UnwatchQuiesce();
  session_->Join();
}

}  // namespace rbdnbd
