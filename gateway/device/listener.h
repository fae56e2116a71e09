// Listener: a listening Unix or TCP socket, accepting on one EventLoop.
//
// Contract: Open*() run on any thread before the loop starts accepting;
// Start() and Close() run on the accept loop's thread. Each accepted fd is
// handed to `on_accept` on that thread, which owns it from then on.
// A transient accept error (EMFILE, ENFILE, ENOBUFS) is logged and accept is
// retried after a pause, so a client flood can't stop the server.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <sys/socket.h>

#include "common/result.h"
#include "common/unique_fd.h"
#include "uring/event_loop.h"

namespace rbdnbd {

class Listener {
 public:
  using AcceptFn = std::function<void(UniqueFd fd, std::string peer)>;

  // A Unix socket at `path`. A stale socket file (nobody listening) is
  // replaced; a live one is an error (EADDRINUSE). The file is removed again
  // when the Listener is destroyed.
  static Result<std::unique_ptr<Listener>> OpenUnix(const std::string& path);
  // "HOST:PORT" or "[V6HOST]:PORT".
  static Result<std::unique_ptr<Listener>> OpenTcp(const std::string& host_port);
  ~Listener();

  void Start(EventLoop& loop, AcceptFn on_accept);
  // Stops accepting; `done` runs on the loop once no accept is in flight.
  void Close(std::function<void()> done);

  const std::string& address() const { return address_; }

 private:
  class AcceptOp;
  Listener(UniqueFd fd, std::string address, bool is_unix);
  void Arm();
  void OnAccept(int res);

  UniqueFd fd_;
  std::string address_;
  bool is_unix_;
  EventLoop* loop_ = nullptr;
  AcceptFn on_accept_;
  std::unique_ptr<AcceptOp> op_;
  bool inflight_ = false;
  bool closing_ = false;
  std::function<void()> closed_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

}  // namespace rbdnbd
