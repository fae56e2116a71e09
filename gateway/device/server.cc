#include "device/server.h"

#include <cerrno>
#include <cstring>
#include <future>

#include <spdlog/spdlog.h>

namespace rbdnbd {

Server::Server(Options options, ExportRegistry exports, LoopPool& loops)
    : options_(std::move(options)), exports_(std::move(exports)), loops_(loops), group_(loops) {}

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
  group_.Add(std::move(fd), [this, peer = std::move(peer)](EventLoop& loop, BufferPool& pool, UniqueFd owned,
                                                          Connection::ClosedFn on_closed) {
    spdlog::debug("{}: connected ({})", peer, loop.name());
    return Connection::ForClient(loop, pool, std::move(owned), exports_, peer, std::move(on_closed));
  });
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
  // 1. Stop accepting. Accept() runs on loop 0 too, so once every listener
  // reported closed no client can be added any more.
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
  group_.Shutdown();
  if (!group_.WaitClosed(options_.drain_timeout)) {
    spdlog::warn("{} connection(s) did not drain within {} ms; closing them", group_.live(),
                 options_.drain_timeout.count());
    group_.ForceClose();
    // Their in-flight backend I/O must still complete before they can go.
    while (!group_.WaitClosed(std::chrono::seconds(10))) {
      spdlog::warn("still waiting for {} connection(s) to close", group_.live());
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
