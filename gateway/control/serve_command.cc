#include "control/serve_command.h"

#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/size_parse.h"
#include "control/ceph_options.h"
#include "control/process.h"
#include "control/quiesce_hook.h"
#include "control/quiesce_watch.h"
#include "device/io_stats.h"
#include "device/server.h"
#include "exports/export_factory.h"
#include "metrics/exposition.h"
#include "metrics/process_info.h"
#include "metrics/http_endpoint.h"
#include "rbd/image_spec.h"
#include "rbd/rbd_backend.h"
#include "ublk/ublk_control.h"
#include "ublk/ublk_device.h"
#include "uring/loop_pool.h"

namespace rbdnbd {

void PrintServeHelp() {
  std::printf(R"(usage: rbd-nbdd serve [options]

Export one or more backends over the NBD protocol (fixed newstyle handshake)
on Unix and/or TCP sockets, for NBD clients such as qemu, nbdcopy, nbdinfo,
fio --ioengine=nbd and nbd-client.

Exports:
  -e, --export SPEC        add an export (repeatable; the first one is also the
                           default export, served for an empty export name).
      --rbd POOL/[NS/]IMAGE[@SNAP]
                           add an RBD image (or snapshot) as an export named
                           after its spec (repeatable); see the Ceph options
                           SPEC is key=value pairs separated by commas:
                             name=disk0,backend=memory,size=1G
                             name=img,backend=file,path=/srv/img.raw[,direct=auto|on|off]
                             name=vm1,backend=rbd,image=POOL/[NS/]IMAGE[@SNAP]
                                                   (the cluster, user and image options
                                                   are the Ceph options below)
                           keys for every backend:
                             read-only             serve read-only
                             description=TEXT      shown by nbdinfo
                             fault-errno=EIO fault-ops=read+write fault-rate=0.01
                             fault-every=N fault-range=BEGIN-END fault-trigger=PATH
                                                   inject errors (testing)
                             delay=5ms delay-read=.. delay-write=..
                                                   add latency (testing)
Listeners (default: --tcp 127.0.0.1:10809 when neither is given):
  -s, --socket PATH        listen on a Unix socket (repeatable)
  -t, --tcp HOST:PORT      listen on TCP (repeatable; [::1]:10809 for IPv6)
Engine:
  -w, --workers N          io_uring worker threads, one ring each
                           (default: number of CPUs, at most 8)
      --poll-us N          after doing work, each worker polls this many
                           microseconds for the next request or completion
                           before it sleeps: lower latency at low queue depth
                           for CPU while I/O runs (0..10000, default 0: off)
      --drain-timeout SEC  on SIGTERM, wait this long for in-flight requests
                           before closing connections (default 30)
Quiesce (snapshots with quiesce: rbd snap create without --skip-quiesce):
      --quiesce-hook PATH  watch every writable RBD export for librbd's quiesce
                           requests and run `PATH - quiesce` before the
                           snapshot and `PATH - unquiesce` after it ("-": serve
                           has no kernel device). No shell; the environment is
                           PATH only. A non-zero exit fails the quiesce (and
                           the snapshot unless it ignores quiesce errors), and
                           `unquiesce` runs to undo. Without it, serve does not
                           take part in quiesce (the NBD client's filesystem
                           is not ours to freeze).
      --quiesce-timeout SEC
                           bound on one hook run (past it the hook is killed
                           and the quiesce fails with ETIME) and on the
                           wait for the unquiesce (1..45, default 30: librbd
                           gives up on its own after ~50 s, and a snapshot
                           through the lock owner that ends that way is
                           retried forever by the asking client)
ublk (Linux 6.0+, the ublk_drv module; root):
      --ublk               also expose the default export as a ublk block device
                           /dev/ublkbN (N picked by the kernel), served by the
                           same workers; removed again on SIGTERM/SIGINT
      --ublk-id N          the same with device id N (/dev/ublkbN)
      --ublk-queues N      hardware queues (default: one per worker; the kernel
                           caps them at the CPU count)
      --ublk-depth N       requests per queue (1..4096, default 128)
      --ublk-block-size B  logical block size, 512 or 4096 (default 512)
      --ublk-max-io SIZE   largest request (default 512K; also each request
                           slot's buffer)
      --ublk-recovery      add the device with user recovery: if serve dies, the
                           kernel keeps it and holds I/O until a new serve
                           takes it over with --ublk-recover (requests in
                           flight at the crash are reissued)
      --ublk-recover N     take over device N, left by a serve that died
Operation:
      --metrics-address HOST:PORT
                           serve Prometheus metrics at http://HOST:PORT/metrics
                           (per export: ops, bytes, latency and errors by op,
                           requests in flight, connections; see
                           gateway/metrics/METRICS.md) and "ok" at /healthz.
                           Off by default; suggested port 9481; port 0 picks a
                           free one (logged). ":PORT" listens on every address
      --pid-file PATH      write the process id here once listening
      --log-level LEVEL    trace|debug|info|warn|error|critical|off (default info)
      --log-target TARGET  stderr|syslog|file:PATH (default stderr)
      --log-format FORMAT  text|json (default text; json: one object per line)
  -h, --help               this help

Signals: SIGTERM or SIGINT stops accepting, completes in-flight requests,
flushes every export and exits 0.
)");
  PrintCephOptionsHelp();
}

namespace {

struct ServeArgs {
  std::vector<std::string> exports;
  std::vector<std::string> rbd_images;
  CephArgs ceph;
  Server::Options server;
  unsigned workers = 0;
  unsigned poll_us = 0;
  std::string pid_file;
  std::string log_level = "info";
  std::string log_target = "stderr";
  std::string log_format = "text";
  std::string metrics_address;  // empty: no metrics
  std::string quiesce_hook;
  unsigned quiesce_timeout_s = 30;
  bool ublk = false;
  std::optional<uint32_t> ublk_recover;  // --ublk-recover N
  UblkDeviceParams ublk_params;
};

// Returns -1 to continue, or an exit code.
int ParseArgs(int argc, char** argv, ServeArgs* a) {
  enum { kPidFile = 1000, kLogLevel, kLogTarget, kDrainTimeout, kRbd, kPollUs, kQuiesceHook, kQuiesceTimeout,
         kMetricsAddress, kLogFormat, kUblk, kUblkId, kUblkQueues, kUblkDepth, kUblkBlockSize,
         kUblkMaxIo, kUblkRecovery, kUblkRecover };
  std::vector<option> options = {
      {"export", required_argument, nullptr, 'e'},
      {"socket", required_argument, nullptr, 's'},
      {"tcp", required_argument, nullptr, 't'},
      {"workers", required_argument, nullptr, 'w'},
      {"pid-file", required_argument, nullptr, kPidFile},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"log-target", required_argument, nullptr, kLogTarget},
      {"drain-timeout", required_argument, nullptr, kDrainTimeout},
      {"help", no_argument, nullptr, 'h'},
      {"rbd", required_argument, nullptr, kRbd},
      {"poll-us", required_argument, nullptr, kPollUs},
      {"quiesce-hook", required_argument, nullptr, kQuiesceHook},
      {"quiesce-timeout", required_argument, nullptr, kQuiesceTimeout},
      {"metrics-address", required_argument, nullptr, kMetricsAddress},
      {"log-format", required_argument, nullptr, kLogFormat},
      {"ublk", no_argument, nullptr, kUblk},
      {"ublk-id", required_argument, nullptr, kUblkId},
      {"ublk-queues", required_argument, nullptr, kUblkQueues},
      {"ublk-depth", required_argument, nullptr, kUblkDepth},
      {"ublk-block-size", required_argument, nullptr, kUblkBlockSize},
      {"ublk-max-io", required_argument, nullptr, kUblkMaxIo},
      {"ublk-recovery", no_argument, nullptr, kUblkRecovery},
      {"ublk-recover", required_argument, nullptr, kUblkRecover},
  };
  for (const option& o : CephOptionTable()) options.push_back(o);
  options.push_back({nullptr, 0, nullptr, 0});
  optind = 1;
  opterr = 0;
  int c;
  // A numeric option's value in [lo, hi], or a message and false.
  auto number = [](const char* opt, uint64_t lo, uint64_t hi, unsigned* out) {
    auto n = ParseUint(optarg, lo, hi);
    if (!n) {
      std::fprintf(stderr, "rbd-nbdd serve: %s: %s\n", opt, n.error().message.c_str());
      return false;
    }
    *out = static_cast<unsigned>(*n);
    return true;
  };
  while ((c = getopt_long(argc, argv, ":e:s:t:w:hm:c:n:k:", options.data(), nullptr)) != -1) {
    auto ceph = HandleCephOption(c, optarg, &a->ceph);
    if (!ceph) {
      std::fprintf(stderr, "rbd-nbdd serve: %s\n", ceph.error().message.c_str());
      return 2;
    }
    if (*ceph) continue;
    switch (c) {
      case kRbd: a->rbd_images.emplace_back(optarg); break;
      case 'e': a->exports.emplace_back(optarg); break;
      case 's': a->server.unix_paths.emplace_back(optarg); break;
      case 't': a->server.tcp_addresses.emplace_back(optarg); break;
      case 'w': if (!number("--workers", 1, 256, &a->workers)) return 2; break;
      case kPollUs: if (!number("--poll-us", 0, 10000, &a->poll_us)) return 2; break;
      case kDrainTimeout: {
        unsigned secs;
        if (!number("--drain-timeout", 0, 86400, &secs)) return 2;
        a->server.drain_timeout = std::chrono::seconds(secs);
        break;
      }
      case kQuiesceHook: a->quiesce_hook = optarg; break;
      case kQuiesceTimeout: if (!number("--quiesce-timeout", 1, 45, &a->quiesce_timeout_s)) return 2; break;
      case kUblk: a->ublk = true; break;
      case kUblkId: {
        unsigned id;
        if (!number("--ublk-id", 0, 1u << 20, &id)) return 2;
        a->ublk = true;
        a->ublk_params.id = id;
        break;
      }
      case kUblkRecover: {
        unsigned id;
        if (!number("--ublk-recover", 0, 1u << 20, &id)) return 2;
        a->ublk = true;
        a->ublk_recover = id;
        break;
      }
      case kUblkQueues: {
        unsigned n;
        if (!number("--ublk-queues", 1, 256, &n)) return 2;
        a->ublk_params.queues = static_cast<uint16_t>(n);
        break;
      }
      case kUblkDepth: {
        unsigned n;
        if (!number("--ublk-depth", 1, UBLK_MAX_QUEUE_DEPTH, &n)) return 2;
        a->ublk_params.depth = static_cast<uint16_t>(n);
        break;
      }
      case kUblkBlockSize: {
        unsigned n;
        if (!number("--ublk-block-size", 512, 4096, &n)) return 2;
        if (n != 512 && n != 4096) {
          std::fprintf(stderr, "rbd-nbdd serve: --ublk-block-size: %u is not 512 or 4096\n", n);
          return 2;
        }
        a->ublk_params.block.logical_block = n;
        break;
      }
      case kUblkMaxIo: {
        auto n = ParseSize(optarg);
        if (!n || *n < 4096 || *n > (32u << 20) || *n % 4096 != 0) {
          std::fprintf(stderr, "rbd-nbdd serve: --ublk-max-io: '%s' is not a multiple of 4K from 4K to 32M\n", optarg);
          return 2;
        }
        a->ublk_params.block.max_io_bytes = static_cast<uint32_t>(*n);
        break;
      }
      case kUblkRecovery:
        a->ublk_params.user_recovery = true;
        a->ublk_params.recovery_reissue = true;
        break;
      case kPidFile: a->pid_file = optarg; break;
      case kLogLevel: a->log_level = optarg; break;
      case kLogTarget: a->log_target = optarg; break;
      case kLogFormat: a->log_format = optarg; break;
      case kMetricsAddress:
        if (*optarg == '\0') {
          std::fprintf(stderr, "rbd-nbdd serve: --metrics-address needs HOST:PORT\n");
          return 2;
        }
        a->metrics_address = optarg;
        break;
      case 'h': PrintServeHelp(); return 0;
      case ':':
        std::fprintf(stderr, "rbd-nbdd serve: option '%s' needs a value (see --help)\n", argv[optind - 1]);
        return 2;
      default:
        std::fprintf(stderr, "rbd-nbdd serve: unknown option '%s' (see --help)\n", argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "rbd-nbdd serve: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  if (a->exports.empty() && a->rbd_images.empty()) {
    std::fprintf(stderr, "rbd-nbdd serve: nothing to serve: give at least one --export or --rbd (see --help)\n");
    return 2;
  }
  if (a->server.unix_paths.empty() && a->server.tcp_addresses.empty()) {
    a->server.tcp_addresses.emplace_back("127.0.0.1:10809");
  }
  if (!a->quiesce_hook.empty()) {
    if (auto h = CheckQuiesceHook(a->quiesce_hook); !h) {
      std::fprintf(stderr, "rbd-nbdd serve: --quiesce-hook: %s\n", h.error().message.c_str());
      return 2;
    }
  }
  if (a->workers == 0) a->workers = DefaultWorkers();
  return -1;
}

// The cluster connection every rbd export shares: made when the first one
// needs it, so that a serve without RBD exports never reads a key or waits
// for monitors. Main thread only.
class SharedCluster {
 public:
  explicit SharedCluster(CephArgs* ceph) : ceph_(ceph) {}

  Result<RbdConnection> Get() {
    if (!cluster_) {
      // FinishCephArgs reads the key (maybe from stdin) and the passphrase: exactly once.
      if (auto r = FinishCephArgs(ceph_); !r) return Unexpected(r.error());
      auto c = RadosCluster::Connect(ceph_->cluster);
      if (!c) return Unexpected(c.error());
      cluster_ = *c;
    }
    return RbdConnection{cluster_, ceph_->image};
  }

 private:
  CephArgs* ceph_;
  std::shared_ptr<RadosCluster> cluster_;
};

// An export the /metrics endpoint reports: its statistics (also held by the
// Export, where its connections record) and its METRICS.md labels.
struct MeteredExport {
  std::shared_ptr<DeviceIoStats> stats;
  DeviceLabels labels;
};

// The RBD image of an --export SPEC with backend=rbd (the factory has checked
// the spec already; image= holds no comma). nullopt for other backends.
std::optional<ImageSpec> RbdImageOfExportSpec(std::string_view spec) {
  std::string_view backend, image;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view kv = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (kv.starts_with("backend=")) backend = kv.substr(8);
    if (kv.starts_with("image=")) image = kv.substr(6);
  }
  if (backend != "rbd") return std::nullopt;
  auto parsed = ParseImageSpec(image);
  if (!parsed) return std::nullopt;
  return *parsed;
}

// Every --export, then every --rbd, through the one factory (so decorators
// reach RBD images too); the first one added is the default export.
// `rbd_backends` gets every export that is a plain RBD image (a decorated
// one is not an RbdBackend), for the quiesce watch. With `metered` (metrics
// on), every export gets a DeviceIoStats, listed there with its labels.
Result<void> AddExports(ServeArgs* args, ExportRegistry* registry,
                        std::vector<std::shared_ptr<RbdBackend>>* rbd_backends,
                        std::vector<MeteredExport>* metered) {
  SharedCluster cluster(&args->ceph);
  ExportContext context;
  context.connect = [&cluster] { return cluster.Get(); };
  auto add = [registry, rbd_backends, metered](Result<ExportSpec> e,
                                               std::optional<ImageSpec> image) -> Result<void> {
    if (!e) return Unexpected(e.error());
    if (auto rbd = std::dynamic_pointer_cast<RbdBackend>(e->backend)) rbd_backends->push_back(rbd);
    std::string describe = e->backend->Describe();
    Export exp{e->name, e->description, e->backend};
    if (metered != nullptr) exp.io_stats = DeviceIoStats::Create();
    if (auto r = registry->Add(exp); !r) return r;
    if (metered != nullptr) {
      DeviceLabels labels{e->name, "", "", ""};
      if (image) labels = {e->name, image->pool, image->ns, image->image};
      metered->push_back({exp.io_stats, std::move(labels)});
    }
    spdlog::info("export '{}': {}", e->name, describe);
    return {};
  };
  for (const auto& spec : args->exports) {
    if (auto r = add(ParseExportSpec(spec, context), RbdImageOfExportSpec(spec)); !r) return r;
  }
  for (const auto& image : args->rbd_images) {
    std::optional<ImageSpec> parsed;
    if (auto p = ParseImageSpec(image)) parsed = *p;
    if (auto r = add(RbdExport(image, context), std::move(parsed)); !r) return r;
  }
  return {};
}

// ADDRESS with the bound port in place of the given one ("127.0.0.1:0" ->
// "127.0.0.1:40123"; ":0" -> "0.0.0.0:40123" is not claimed: the host part
// stays as given, empty meaning every address).
std::string MetricsUrlHost(const std::string& address, int port) {
  size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  return fmt::format("{}:{}", host.empty() ? "[::]" : host, port);
}

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

// The /metrics body: build info, uptime and the per-export families. Runs on
// the endpoint's thread; reads the statistics through DeviceIoStats::Snapshot
// (its mutex is never taken per request).
std::string RenderServeMetrics(const std::vector<MeteredExport>& exports,
                               std::chrono::steady_clock::time_point started) {
  static const std::string compiler = metrics::CompilerLabel();
  metrics::TextWriter w;
  metrics::WriteProcessFamilies(w, RBDNBD_VERSION, compiler,
                                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  std::vector<DeviceSample> devices;
  devices.reserve(exports.size());
  for (const MeteredExport& e : exports) devices.push_back({e.labels, e.stats->Snapshot(), std::nullopt});
  WriteDeviceFamilies(w, devices);
  return w.Take();
}

Result<std::unique_ptr<metrics::HttpEndpoint>> StartMetrics(const std::string& address,
                                                            const std::vector<MeteredExport>* exports,
                                                            std::chrono::steady_clock::time_point started) {
  auto endpoint = std::make_unique<metrics::HttpEndpoint>();
  endpoint->Handle("/metrics", [exports, started] {
    metrics::HttpResponse r;
    r.body = RenderServeMetrics(*exports, started);
    return r;
  });
  endpoint->Handle("/healthz", [] {
    metrics::HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "ok\n";
    return r;
  });
  if (auto r = endpoint->Start(address); !r) {
    return Err(r.error().code, "--metrics-address {}: {}", address, r.error().message);
  }
  return endpoint;
}

// Adds (or, with --ublk-recover, takes over) the ublk device of `exp`.
Result<std::unique_ptr<UblkDevice>> StartUblk(const ServeArgs& args, const Export& exp, LoopPool& loops,
                                              std::unique_ptr<UblkControl>* control) {
  auto c = UblkControl::Open();
  if (!c) return Unexpected(c.error());
  *control = std::move(c).value();
  if (args.ublk_recover) {
    return UblkDevice::Recover(**control, loops, exp, *args.ublk_recover, args.ublk_params);
  }
  return UblkDevice::Add(**control, loops, exp, args.ublk_params);
}

}  // namespace

int RunServe(int argc, char** argv) {
  ServeArgs args;
  if (int rc = ParseArgs(argc, argv, &args); rc >= 0) return rc;
  const auto started = std::chrono::steady_clock::now();
  if (auto r = SetupLogging({args.log_level, args.log_target, args.log_format}); !r) {
    std::fprintf(stderr, "rbd-nbdd serve: %s\n", r.error().message.c_str());
    return 2;
  }
  // Signals are taken synchronously by this thread only (workers block all).
  sigset_t sigs = BlockControlSignals();

  ExportRegistry registry;
  std::vector<std::shared_ptr<RbdBackend>> rbd_backends;
  std::vector<MeteredExport> metered;
  const bool metrics_on = !args.metrics_address.empty();
  if (auto r = AddExports(&args, &registry, &rbd_backends, metrics_on ? &metered : nullptr); !r) {
    spdlog::error("{}", r.error().message);
    return 2;
  }
  // Before the server takes connections, so the first snapshot finds them.
  std::vector<std::unique_ptr<RbdQuiesceWatch>> quiesce_watches;
  if (!args.quiesce_hook.empty()) {
    QuiesceOptions q{args.quiesce_hook, std::chrono::seconds(args.quiesce_timeout_s)};
    for (auto& b : rbd_backends) {
      if (b->read_only()) continue;
      auto w = RbdQuiesceWatch::Start(b, "-", q);
      if (!w) {
        spdlog::error("{}", w.error().message);
        return 2;
      }
      spdlog::info("export '{}': quiesce requests run {}", b->spec().ToString(), args.quiesce_hook);
      quiesce_watches.push_back(std::move(w).value());
    }
  }
  rbd_backends.clear();
  auto loops = LoopPool::Create(args.workers, "nbd-worker", std::chrono::microseconds(args.poll_us));
  if (!loops) {
    spdlog::error("{}", loops.error().message);
    return 2;
  }
  std::optional<Export> ublk_export;
  if (args.ublk) ublk_export = registry.exports().front();
  auto server = Server::Create(args.server, std::move(registry), **loops);
  if (!server) {
    spdlog::error("{}", server.error().message);
    return 2;
  }
  // Declared after `metered`, so it stops before what its handler reads goes.
  std::unique_ptr<metrics::HttpEndpoint> metrics_endpoint;
  if (metrics_on) {
    auto m = StartMetrics(args.metrics_address, &metered, started);
    if (!m) {
      spdlog::error("{}", m.error().message);
      return 2;
    }
    metrics_endpoint = std::move(m).value();
  }
  (*loops)->Start();
  (*server)->Start();
  // Declared after the loops and the server: removed (STOP_DEV drains the
  // kernel's requests through the loops) before either stops.
  std::unique_ptr<UblkControl> ublk_control;
  std::unique_ptr<UblkDevice> ublk_device;
  if (ublk_export) {
    auto d = StartUblk(args, *ublk_export, **loops, &ublk_control);
    if (!d) {
      spdlog::error("{}", d.error().message);
      (void)(*server)->Shutdown();
      (*loops)->Stop();
      return 2;
    }
    ublk_device = std::move(d).value();
  }
  if (!args.pid_file.empty()) {
    std::ofstream(args.pid_file) << getpid() << "\n";
  }
  for (const auto& addr : (*server)->addresses()) spdlog::info("listening on {}", addr);
  if (metrics_endpoint) {
    spdlog::info("metrics: serving http://{}/metrics", MetricsUrlHost(args.metrics_address, metrics_endpoint->port()));
  }
  spdlog::info("serving with {} worker(s), io_uring flags {:#x}, busy poll {} us", args.workers,
               (*loops)->loop(0).ring_flags(), args.poll_us);

  int sig = 0;
  for (;;) {
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: {} connection(s) open", (*server)->connections());
      continue;
    }
    break;
  }
  quiesce_watches.clear();  // an unquiesce first if a snapshot was under way
  if (ublk_device) {
    if (auto r = ublk_device->Remove(); !r) spdlog::error("{}", r.error().message);
    ublk_device.reset();
  }
  spdlog::info("signal {}: draining {} connection(s)", strsignal(sig), (*server)->connections());
  int rc = (*server)->Shutdown();
  (*loops)->Stop();
  if (!args.pid_file.empty()) ::unlink(args.pid_file.c_str());
  spdlog::info("stopped{}", rc == 0 ? "" : " with a flush error");
  return rc == 0 ? 0 : 1;
}

}  // namespace rbdnbd
