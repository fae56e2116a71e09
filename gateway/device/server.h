// Server: the socket export. Listens on Unix and/or TCP sockets, negotiates
// with each client, and serves it on one worker loop.
//
// Contract
// --------
// * Create() opens every listener (so a bad address fails before anything
//   runs); Start() begins accepting on worker 0 and hands each accepted client
//   to a worker round-robin, through a ConnectionGroup: each connection lives
//   and is touched on its worker's thread only.
// * Shutdown() (main thread, blocking) stops accepting, lets every connection
//   finish its in-flight requests and send their replies, force-closes any
//   that have not drained within `drain_timeout`, then flushes every export
//   that can flush. After it returns no connection is left.
//
//   Start ─► accepting ─► Shutdown(): close listeners ─► drain connections
//                                      ─► (timeout: force close) ─► flush exports
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "device/connection_group.h"
#include "device/export.h"
#include "device/listener.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

class Server {
 public:
  struct Options {
    std::vector<std::string> unix_paths;
    std::vector<std::string> tcp_addresses;
    std::chrono::milliseconds drain_timeout{30000};
  };

  static Result<std::unique_ptr<Server>> Create(const Options& options, ExportRegistry exports,
                                                LoopPool& loops);
  ~Server();

  void Start();
  // Returns 0 when every export flushed, or the first flush error (-errno).
  int Shutdown();

  // Any thread.
  size_t connections() const { return group_.live(); }
  std::vector<std::string> addresses() const;

 private:
  Server(Options options, ExportRegistry exports, LoopPool& loops);
  void Accept(UniqueFd fd, std::string peer);

  Options options_;
  ExportRegistry exports_;
  LoopPool& loops_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // Last: its connections read exports_, so they must go first.
  ConnectionGroup group_;
};

}  // namespace rbdnbd
