#include "device/server.h"

#include <cerrno>
#include <cstring>
#include <future>

#include <spdlog/spdlog.h>

namespace rbdnbd {

Server::Server(Options options, ExportRegistry exports, LoopPool& loops)
    : options_(std::move(options)), exports_(std::move(exports)), loops_(loops), conns_(loops.size()) {}

Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(const Options& options, ExportRegistry exports,
                                               LoopPool& loops) {
  if (exports.exports().empty()) return Err(EINVAL, "nothing to serve: give at least one --export");
  if (options.unix_paths.empty() && options.tcp_addresses.empty()) {
    return Err(EINVAL, "no listener: give --socket or --tcp");
  }
  std::unique_ptr<Server> s(new Server(options, std::move(exports), loops));
  for (const auto& path : options.unix_paths) {
    auto l = Listener::OpenUnix(path);
    if (!l) return Unexpected(l.error());
    s->listeners_.push_back(std::move(l).value());
  }
  for (const auto& addr : options.tcp_addresses) {
    auto l = Listener::OpenTcp(addr);
    if (!l) return Unexpected(l.error());
    s->listeners_.push_back(std::move(l).value());
  }
  return s;
}

std::vector<std::string> Server::addresses() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l->address());
  return out;
}

void Server::Start() {
  EventLoop& accept_loop = loops_.loop(0);
  accept_loop.Post([this, &accept_loop] {
    for (auto& l : listeners_) {
      l->Start(accept_loop, [this](UniqueFd fd, std::string peer) { Accept(std::move(fd), std::move(peer)); });
    }
  });
}

void Server::Accept(UniqueFd fd, std::string peer) {
  if (stopping_.load()) return;  // fd closes here
  size_t w = loops_.PickNext();
  live_++;
  // std::function needs a copyable callable: carry the fd as a raw int.
  int raw = fd.Release();
  loops_.loop(w).Post([this, w, raw, peer = std::move(peer)]() mutable {
    UniqueFd owned(raw);
    if (stopping_.load()) {
      OnClosed(w, nullptr);
      return;
    }
    auto c = Connection::ForClient(loops_.loop(w), loops_.pool(w), std::move(owned), exports_, peer,
                                   [this, w](Connection* closed) { OnClosed(w, closed); });
    spdlog::debug("{}: connected (worker {})", peer, w);
    Connection* raw_c = c.get();
    conns_[w].emplace(raw_c, std::move(c));
    raw_c->Start();
  });
}

void Server::OnClosed(size_t worker, Connection* c) {
  if (c != nullptr) conns_[worker].erase(c);
  {
    std::lock_guard lock(mu_);
    live_--;
  }
  cv_.notify_all();
}

void Server::ForEachWorkerAndWait(const std::function<void(size_t)>& fn) {
  std::vector<std::promise<void>> done(loops_.size());
  for (size_t w = 0; w < loops_.size(); w++) {
    loops_.loop(w).Post([&fn, &done, w] {
      fn(w);
      done[w].set_value();
    });
  }
  for (auto& d : done) d.get_future().wait();
}

namespace {
// A FLUSH issued by the server itself at shutdown.
class ShutdownFlush final : public IoRequest {
 public:
  ShutdownFlush() { type = IoType::kFlush; }
  void OnIoDone(int result) override { done.set_value(result); }
  std::promise<int> done;
};
}  // namespace

int Server::Shutdown() {
  stopping_.store(true);
  // 1. Stop accepting.
  std::promise<void> closed;
  size_t pending = listeners_.size();
  loops_.loop(0).Post([this, &closed, &pending] {
    if (pending == 0) closed.set_value();
    for (auto& l : listeners_) {
      l->Close([&closed, &pending] {
        if (--pending == 0) closed.set_value();
      });
    }
  });
  closed.get_future().wait();
  // 2. Drain every connection.
  ForEachWorkerAndWait([this](size_t w) {
    for (auto& [c, owner] : conns_[w]) c->Shutdown();
  });
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, options_.drain_timeout, [this] { return live_.load() == 0; })) {
      spdlog::warn("{} connection(s) did not drain within {} ms; closing them", live_.load(),
                   options_.drain_timeout.count());
      lock.unlock();
      ForEachWorkerAndWait([this](size_t w) {
        for (auto& [c, owner] : conns_[w]) c->ForceClose();
      });
      lock.lock();
      cv_.wait(lock, [this] { return live_.load() == 0; });
    }
  }
  // 3. Flush every export, so everything acknowledged is durable.
  int first_error = 0;
  for (const Export& e : exports_.exports()) {
    BackendCaps caps = e.backend->Capabilities();
    if (!caps.can_flush || caps.read_only) continue;
    ShutdownFlush flush;
    auto result = flush.done.get_future();
    loops_.loop(0).Post([&e, &flush, this] { e.backend->Submit(loops_.loop(0), flush); });
    int r = result.get();
    if (r < 0) {
      spdlog::error("flushing export '{}' at shutdown failed: {}", e.name, strerror(-r));
      if (first_error == 0) first_error = r;
    }
  }
  listeners_.clear();
  return first_error;
}

}  // namespace rbdnbd
