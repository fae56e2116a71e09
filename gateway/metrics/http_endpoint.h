// HttpEndpoint: a minimal HTTP/1.1 server for /metrics and health probes, on its own
// thread, off the data path.
//
// Contract
// --------
// * Start() binds ADDRESS ("127.0.0.1:9480", "[::1]:9480", "0.0.0.0:9480", ":9480" =
//   every address), listens, and starts one thread that serves one connection at a
//   time: GET or HEAD of a registered path calls its handler on that thread and
//   answers 200 with the handler's body and content type; other paths 404, other
//   methods 405, a malformed or oversized (> 8 KiB) request 400; every response closes
//   the connection. A client has 5 s (set_client_timeout) to send its request and
//   read the answer, else it is dropped unanswered, so one stuck client delays the
//   next scrape by at most that (plus <= 1 s of reading what a client still sends
//   after the answer, so that closing doesn't reset the connection under it).
// * Addresses are numeric (no resolver): IPv4 "A.B.C.D:PORT", IPv6 "[ADDR]:PORT",
//   ":PORT" for every address (IPv6 dual-stack, or IPv4 only on a host without
//   IPv6). Port 0 binds a free port: port() tells which.
// * Handlers run on the endpoint's thread: they must read shared state the way
//   stat_cells.h allows (relaxed loads), or take a lock the data path never takes.
// * Stop() (any thread but the endpoint's; idempotent; the destructor calls it) closes
//   the listener and joins the thread. It wakes the thread at once, even in the
//   middle of a connection (an eventfd in every poll()); only a running handler
//   delays it.
// * Errors are a Result on the control path: a bad address or a port in use is an
//   error message naming it; nothing is thrown.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace rbdnbd::metrics {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; version=0.0.4; charset=utf-8";
  std::string body;
};

class HttpEndpoint {
 public:
  using Handler = std::function<HttpResponse()>;

  HttpEndpoint() = default;
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Before Start(): path ("/metrics", "/healthz") -> handler.
  void Handle(std::string path, Handler handler);
  // Before Start(): how long one client may take to send its request and read the
  // answer (default 5 s). Tests shorten it; a daemon has no reason to.
  void set_client_timeout(std::chrono::milliseconds timeout);
  Result<void> Start(const std::string& address);
  void Stop();

  // The bound port (useful with port 0 in tests); 0 before Start().
  int port() const { return port_; }

 private:
  void Run();
  bool Serve(int fd);  // one connection; false when Stop() interrupted it
  std::map<std::string, Handler> handlers_;
  std::chrono::milliseconds client_timeout_{5000};
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd that wakes the thread for Stop()
  std::thread thread_;
  int port_ = 0;
};

}  // namespace rbdnbd::metrics
