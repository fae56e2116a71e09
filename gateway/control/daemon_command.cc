#include "control/daemon_command.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "control/process.h"
#include "common/size_parse.h"
#include "common/unique_fd.h"
#include "control/control_protocol.h"
#include "control/control_server.h"
#include "control/daemon_metrics.h"
#include "control/device_manager.h"
#include "control/module_loader.h"
#include "control/quiesce_hook.h"
#include "metrics/http_endpoint.h"
#include "metrics/process_info.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace rbdnbd {

namespace {
// librbd retries a quiesce notification 10 times with a 5 s notify timeout
// (rbd_quiesce_notification_attempts, watcher NOTIFY_TIMEOUT): it gives up
// after about 50 s. 30 s lets a freeze flush a lot of dirty data and still
// fails inside that window with our ETIME ("Timer expired"), which `rbd snap
// create` then reports, rather than librbd's own timeout; and it is well inside the CSI
// sidecar's default 60 s for CreateSnapshot.
constexpr unsigned kDefaultQuiesceTimeoutS = 30;
// Our answer must come before librbd's own give-up (ETIMEDOUT after ~50 s,
// measured 51 s): a snapshot asked of the lock owner (us) that ends in
// ETIMEDOUT makes the asking client retry forever (measured: `rbd snap
// create` still running after 100 s). So the bound stays under it.
constexpr unsigned kMaxQuiesceTimeoutS = 45;
}  // namespace

void PrintDaemonHelp() {
  std::printf(R"(usage: rbd-nbdd daemon [options]

Serve every RBD-backed /dev/nbdX of this node from one process. Clients
(`rbd-nbdd map`, the CSI plugin) talk to it over its control socket.

  --control-socket PATH  control socket, root-only (default %s)
  --state-dir DIR        where the device list is kept (default %s)
  -w, --workers N        io_uring worker threads (default: CPUs, at most 8)
  --poll-us N            after doing work, each worker polls this many
                         microseconds before it sleeps: lower latency at low
                         queue depth for CPU while I/O runs (0..10000, 0: off)
  --nbds_max N           nbd devices to create if the module must be loaded (16)
  --max_part N           partitions per nbd device, for the module (0)
  --pid-file PATH        write the process id here once ready
  --no-netlink           use the old ioctl interface even if netlink exists
                         (what happens on kernels without it: devices then
                         do not survive a daemon restart)
  --quiesce-hook PATH    when librbd snapshots a served image with quiesce
                         (rbd snap create without --skip-quiesce, the CSI
                         controller's snapshots), run `PATH DEVICE quiesce`
                         before and `PATH DEVICE unquiesce` after, instead of
                         the default: freeze (FIFREEZE) every filesystem
                         mounted from the device, thaw it after. No shell;
                         the environment is PATH only. A non-zero exit fails
                         the quiesce (and the snapshot, unless it ignores
                         quiesce errors); then `unquiesce` runs to undo.
  --quiesce-timeout SEC  bound on one freeze or hook run (past it the quiesce
                         fails with ETIME and nothing stays frozen) and on
                         the wait for the unquiesce after a freeze (past it
                         the daemon thaws anyway) (1..%u, default %u)
  --metrics-address ADDR serve Prometheus metrics at http://ADDR/metrics, and
                         the probes /healthz (liveness: the worker loops and
                         the control loop answer) and /readyz (ready: devices
                         restored, control socket listening). ADDR is
                         IP:PORT, [IPv6]:PORT or :PORT (every address); the
                         suggested port is 9480. Off by default
  --log-level LEVEL      trace|debug|info|warn|error|critical|off (default info)
  --log-target TARGET    stderr|syslog|file:PATH (default stderr)
  --log-format FORMAT    text|json (default text; json: one object per line, with
                         device and image fields on a device's lines)
  -h, --help             this help

SIGTERM leaves every device in place for the next daemon to reattach; it
thaws whatever a quiesce froze first, as unmap does.
)",
              kDefaultControlSocket, kDefaultStateDir, kMaxQuiesceTimeoutS, kDefaultQuiesceTimeoutS);
}

namespace {

struct DaemonArgs {
  std::string control_socket = kDefaultControlSocket;
  std::string state_dir = kDefaultStateDir;
  unsigned workers = 0;
  unsigned poll_us = 0;
  unsigned nbds_max = 16;
  unsigned max_part = 0;
  std::string pid_file;
  std::string log_level = "info";
  std::string log_target = "stderr";
  std::string log_format = "text";
  bool no_netlink = false;
  std::string quiesce_hook;
  unsigned quiesce_timeout_s = kDefaultQuiesceTimeoutS;
  std::string metrics_address;  // empty: no HTTP endpoint
};

int ParseArgs(int argc, char** argv, DaemonArgs* a) {
  enum { kControl = 1000, kState, kNbdsMax, kMaxPart, kPid, kLevel, kTarget, kNoNetlink, kPollUs, kQuiesceHook, kQuiesceTimeout,
         kMetricsAddress, kFormat };
  static const option kOptions[] = {
      {"control-socket", required_argument, nullptr, kControl},
      {"state-dir", required_argument, nullptr, kState},
      {"workers", required_argument, nullptr, 'w'},
      {"nbds_max", required_argument, nullptr, kNbdsMax},
      {"max_part", required_argument, nullptr, kMaxPart},
      {"pid-file", required_argument, nullptr, kPid},
      {"log-level", required_argument, nullptr, kLevel},
      {"log-target", required_argument, nullptr, kTarget},
      {"log-format", required_argument, nullptr, kFormat},
      {"no-netlink", no_argument, nullptr, kNoNetlink},
      {"poll-us", required_argument, nullptr, kPollUs},
      {"quiesce-hook", required_argument, nullptr, kQuiesceHook},
      {"quiesce-timeout", required_argument, nullptr, kQuiesceTimeout},
      {"metrics-address", required_argument, nullptr, kMetricsAddress},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  optind = 1;
  opterr = 0;
  int c;
  auto number = [](const char* opt, const char* v, uint64_t lo, uint64_t hi, unsigned* out) {
    auto n = ParseUint(v, lo, hi);
    if (!n) {
      std::fprintf(stderr, "rbd-nbdd daemon: %s: %s\n", opt, n.error().message.c_str());
      return false;
    }
    *out = static_cast<unsigned>(*n);
    return true;
  };
  while ((c = getopt_long(argc, argv, ":w:h", kOptions, nullptr)) != -1) {
    switch (c) {
      case kControl: a->control_socket = optarg; break;
      case kState: a->state_dir = optarg; break;
      case 'w': if (!number("--workers", optarg, 1, 256, &a->workers)) return 2; break;
      case kPollUs: if (!number("--poll-us", optarg, 0, 10000, &a->poll_us)) return 2; break;
      case kNbdsMax: if (!number("--nbds_max", optarg, 1, 1024, &a->nbds_max)) return 2; break;
      case kMaxPart: if (!number("--max_part", optarg, 0, 256, &a->max_part)) return 2; break;
      case kPid: a->pid_file = optarg; break;
      case kLevel: a->log_level = optarg; break;
      case kTarget: a->log_target = optarg; break;
      case kFormat: a->log_format = optarg; break;
      case kNoNetlink: a->no_netlink = true; break;
      case kQuiesceHook: a->quiesce_hook = optarg; break;
      case kMetricsAddress: a->metrics_address = optarg; break;
      case kQuiesceTimeout:
        if (!number("--quiesce-timeout", optarg, 1, kMaxQuiesceTimeoutS, &a->quiesce_timeout_s)) return 2;
        break;
      case 'h': PrintDaemonHelp(); return 0;
      case ':':
        std::fprintf(stderr, "rbd-nbdd daemon: option '%s' needs a value\n", argv[optind - 1]);
        return 2;
      default:
        std::fprintf(stderr, "rbd-nbdd daemon: unknown option '%s' (see --help)\n", argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "rbd-nbdd daemon: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (!a->quiesce_hook.empty()) {
    if (auto h = CheckQuiesceHook(a->quiesce_hook); !h) {
      std::fprintf(stderr, "rbd-nbdd daemon: --quiesce-hook: %s\n", h.error().message.c_str());
      return 2;
    }
  }
  if (a->workers == 0) a->workers = DefaultWorkers();
  return -1;
}

Result<UniqueFd> ListenControl(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return Err(ENAMETOOLONG, "control socket path too long: {}", path);
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) ::mkdir(path.substr(0, slash).c_str(), 0700);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return Err(EADDRINUSE, "another rbd-nbdd daemon is running on {}", path);
  }
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Err(errno, "socket: {}", strerror(errno));
  mode_t old = ::umask(0077);  // the socket is born 0600: no window where others can connect
  int r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (r != 0) return Err(errno, "bind {}: {}", path, strerror(errno));
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 64) != 0) return Err(errno, "listen {}: {}", path, strerror(errno));
  return fd;
}

// Liveness of the daemon's threads, for /healthz: the main (control) loop
// beats at least once a second; each worker loop must run a posted no-op.
struct Liveness {
  std::atomic<uint64_t> main_beat_ns{MonotonicNowNs()};
  std::atomic<bool> ready{false};
};

constexpr uint64_t kMainLoopSilentNs = 10'000'000'000;  // ten missed beats
constexpr auto kLoopAnswer = std::chrono::seconds(2);

// Posts a no-op to every worker loop and waits for all of them to run it.
bool LoopsAnswer(LoopPool& loops) {
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    size_t left;
  };
  auto p = std::make_shared<Pending>();
  p->left = loops.size();
  for (size_t i = 0; i < loops.size(); i++) {
    loops.loop(i).Post([p] {
      std::lock_guard lock(p->mu);
      p->left--;
      p->cv.notify_all();
    });
  }
  std::unique_lock lock(p->mu);
  return p->cv.wait_for(lock, kLoopAnswer, [&p] { return p->left == 0; });
}

metrics::HttpResponse Probe(bool ok, const std::string& why) {
  metrics::HttpResponse r;
  r.status = ok ? 200 : 503;
  r.content_type = "text/plain; charset=utf-8";
  r.body = ok ? "ok\n" : why + "\n";
  return r;
}

Result<std::unique_ptr<metrics::HttpEndpoint>> StartMetrics(const std::string& address, DeviceManager& manager,
                                                            LoopPool& loops, const ControlCalls& calls,
                                                            const Liveness& live) {
  auto http = std::make_unique<metrics::HttpEndpoint>();
  const uint64_t started = MonotonicNowNs();
  http->Handle("/metrics", [&manager, &calls, started] {
    DaemonMetricsInput in;
    in.version = RBDNBD_VERSION;
    in.compiler = metrics::CompilerLabel();
    in.uptime_seconds = static_cast<double>(MonotonicNowNs() - started) / 1e9;
    in.manager = manager.Metrics();
    in.control_calls = calls.Snapshot();
    metrics::HttpResponse r;
    r.body = RenderDaemonMetrics(in);
    return r;
  });
  http->Handle("/healthz", [&loops, &live] {
    uint64_t beat = live.main_beat_ns.load(std::memory_order_relaxed);
    uint64_t now = MonotonicNowNs();
    if (now > beat && now - beat > kMainLoopSilentNs) {
      return Probe(false, fmt::format("the control loop has not run for {} s", (now - beat) / 1'000'000'000));
    }
    if (!LoopsAnswer(loops)) return Probe(false, "a worker loop did not answer within 2 s");
    return Probe(true, "");
  });
  http->Handle("/readyz", [&live] {
    return Probe(live.ready.load(std::memory_order_relaxed), "restoring devices; the control socket is not open yet");
  });
  if (auto r = http->Start(address); !r) return Unexpected(r.error());
  return http;
}

}  // namespace

int RunDaemon(int argc, char** argv) {
  DaemonArgs args;
  if (int rc = ParseArgs(argc, argv, &args); rc >= 0) return rc;
  if (auto r = SetupLogging({args.log_level, args.log_target, args.log_format}); !r) {
    std::fprintf(stderr, "rbd-nbdd daemon: %s\n", r.error().message.c_str());
    return 2;
  }
  // Signals are taken synchronously by this thread only (workers block all).
  sigset_t sigs = BlockControlSignals();
  UniqueFd sigfd(signalfd(-1, &sigs, SFD_CLOEXEC));

  if (auto m = EnsureNbdModule(args.nbds_max, args.max_part); !m) {
    spdlog::error("{}", m.error().message);
    return 1;
  }
  std::unique_ptr<NbdNetlink> nl;
  if (!args.no_netlink) {
    auto opened = NbdNetlink::Open();
    if (opened) nl = std::move(opened).value();
    else spdlog::warn("{}", opened.error().message);
  }
  if (!nl) spdlog::warn("using the nbd ioctl interface: devices will not survive a daemon restart");
  Result<std::unique_ptr<NbdLinkWatcher>> watcher = Err(ENOTSUP, "no netlink");
  if (nl) {
    watcher = NbdLinkWatcher::Open();
    if (!watcher) spdlog::warn("{}; dead links are found by polling only", watcher.error().message);
  }
  StateStore store(args.state_dir);
  if (auto r = store.Init(); !r) {
    spdlog::error("{}", r.error().message);
    return 1;
  }
  auto loops = LoopPool::Create(args.workers, "nbd-worker", std::chrono::microseconds(args.poll_us));
  if (!loops) {
    spdlog::error("{}", loops.error().message);
    return 1;
  }
  (*loops)->Start();
  // Woken by librbd (image header changed) and by devices that lost a connection.
  UniqueFd resize_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  int resize_raw = resize_fd.get();
  DeviceManager manager(std::move(nl), **loops, std::move(store), [resize_raw] {
    uint64_t one = 1;  // librbd's thread: only a wake-up
    [[maybe_unused]] ssize_t n = ::write(resize_raw, &one, sizeof(one));
  });
  manager.SetQuiesceOptions({args.quiesce_hook, std::chrono::seconds(args.quiesce_timeout_s)});
  // Before Restore(), so that liveness answers (and readiness says "not yet")
  // while a slow cluster holds the first attach tries.
  ControlCalls calls;
  Liveness liveness;
  std::unique_ptr<metrics::HttpEndpoint> http;
  if (!args.metrics_address.empty()) {
    auto started = StartMetrics(args.metrics_address, manager, **loops, calls, liveness);
    if (!started) {
      spdlog::error("--metrics-address {}: {}", args.metrics_address, started.error().message);
      (*loops)->Stop();
      return 1;
    }
    http = std::move(started).value();
    spdlog::info("metrics at http://{}/metrics (port {})", args.metrics_address, http->port());
  }
  size_t restored = manager.Restore();
  if (restored > 0) spdlog::info("reattached {} device(s) from the state file", restored);

  auto listener = ListenControl(args.control_socket);
  if (!listener) {
    spdlog::error("{}", listener.error().message);
    if (http) http->Stop();
    manager.DetachAll();
    (*loops)->Stop();
    return 1;
  }
  liveness.ready.store(true, std::memory_order_relaxed);
  if (!args.pid_file.empty()) std::ofstream(args.pid_file) << ::getpid() << "\n";
  spdlog::info("rbd-nbdd daemon ready: control socket {}, state {}, {} worker(s), busy poll {} us, quiesce by {} "
               "(timeout {} s)",
               args.control_socket, args.state_dir, args.workers, args.poll_us,
               args.quiesce_hook.empty() ? std::string("freezing filesystems") : "hook " + args.quiesce_hook,
               args.quiesce_timeout_s);

  std::mutex clients_mu;
  std::condition_variable clients_cv;
  size_t clients = 0;
  bool running = true;
  uint64_t last_sample = 0;
  while (running) {
    // Health's clocks and error window need a look about once a second.
    uint64_t now = MonotonicNowNs();
    liveness.main_beat_ns.store(now, std::memory_order_relaxed);
    if (now - last_sample >= 1'000'000'000) {
      manager.SampleHealth();
      last_sample = now;
    }
    pollfd fds[4] = {{listener->get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}, {resize_fd.get(), POLLIN, 0},
                     {watcher ? (*watcher)->fd() : -1, POLLIN, 0}};
    int ready = ::poll(fds, 4, 1000);
    if (ready < 0 && errno != EINTR) break;
    if (ready == 0) manager.CheckDevices();  // once a second: retries, missed events
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          spdlog::info("SIGHUP: {} device(s) mapped", manager.List().size());
        } else {
          spdlog::info("signal {}: detaching devices (they stay in the kernel)", strsignal(si.ssi_signo));
          running = false;
        }
      }
    }
    if (fds[2].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(resize_fd.get(), &v, sizeof(v));
      manager.CheckDevices();
    }
    if (watcher && (fds[3].revents & POLLIN)) {
      std::vector<uint32_t> dead;
      (*watcher)->Drain(&dead);
      for (uint32_t index : dead) manager.OnLinkDead(index);
    }
    if (running && (fds[0].revents & POLLIN)) {
      int c = ::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        std::lock_guard lock(clients_mu);
        clients++;
        std::thread([c, &manager, &calls, &clients_mu, &clients_cv, &clients] {
          ServeClient(UniqueFd(c), manager, &calls);
          std::lock_guard lock(clients_mu);
          clients--;
          clients_cv.notify_all();
        }).detach();
      }
    }
  }
  listener->Reset();
  ::unlink(args.control_socket.c_str());
  liveness.ready.store(false, std::memory_order_relaxed);
  {
    std::unique_lock lock(clients_mu);
    clients_cv.wait(lock, [&] { return clients == 0; });
  }
  if (http) http->Stop();  // no scrape may reach the manager once devices go
  manager.DetachAll();
  (*loops)->Stop();
  if (!args.pid_file.empty()) ::unlink(args.pid_file.c_str());
  spdlog::info("stopped; devices stay mapped for the next daemon");
  return 0;
}

}  // namespace rbdnbd
