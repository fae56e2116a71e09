#include "control/client_command.h"

#include <getopt.h>
#include <stdlib.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/codec.h"
#include "api/socket.h"
#include "common/size_parse.h"
#include "control/ceph_options.h"
#include "control/control_protocol.h"
#include "ublk/ublk_params.h"

namespace rbdnbd {

void PrintClientHelp() {
  std::printf(R"(usage:
  rbd-nbdd map [options] POOL/[NS/]IMAGE[@SNAP]   map an image, print /dev/nbdX
                                                 (or /dev/ublkbN with -t ublk)
  rbd-nbdd unmap [--force] DEV|SPEC              unmap (refused while mounted);
                                                 DEV: /dev/nbdN, /dev/ublkbN, N (nbd)
  rbd-nbdd list-mapped [--format plain|json]
  rbd-nbdd attach --device DEV --cookie C [options] SPEC
                                                 take back a device the kernel kept
  rbd-nbdd detach DEV|SPEC                       stop serving, leave it in the kernel
  rbd-nbdd status

list-mapped and status show each device's health: ok; STALLED (reattaching, or
requests in flight and none completed for 30 s); errors:N (requests answered
with an error in the last 60 s). --format json gives it as a "health" object.

Map options:
  -t, --device-type nbd|ublk the kernel frontend (default nbd). ublk (Linux 6.0+,
                             ublk_drv) serves /dev/ublkbN through io_uring: one
                             hardware queue per daemon worker, depth 128 and
                             512K requests (--queue-depth, --max-io), 512-byte
                             blocks (4096 for LUKS), user recovery so a daemon
                             restart costs no I/O error
  --queue-depth N            with -t ublk: requests per hardware queue (1..4096,
                             default 128)
  --max-io SIZE              with -t ublk: the largest request, e.g. 256K or 1M (a
                             multiple of 4K from 4K to 32M, default 512K); each
                             request slot has a buffer of this size, and
                             queues x depth x SIZE may not exceed 4G nor a quarter
                             of the daemon's memory
  --device /dev/nbdN | N     use this device (default: the kernel picks one);
  --device /dev/ublkbN | N   with -t ublk, the ublk device id
  --connections N            sockets per device, one blk-mq queue each (1..16, 1)
  --io-timeout SEC           after this long the kernel resends a request on a
                             fresh connection (0 = never; default 30). Keep it
                             on: it is what lets a restarted daemon pick up
                             requests that were in flight
  --reattach-timeout SEC     how long the kernel holds I/O for a restarted
                             daemon to reattach (default 60)
  --cookie ID                backend identifier (default: random)
  --show-cookie              print the cookie after the device
  --nbds_max N, --max_part N used if the daemon must load the nbd module
  --control-socket PATH      the daemon's socket (default %s)
  --format plain|json        list-mapped output
  --force                    unmap even when in use
)",
              kDefaultControlSocket);
  PrintCephOptionsHelp();
}

namespace {

std::string Absolute(const std::string& path) {
  if (path.empty() || path == "-" || path.front() == '/') return path;
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) != nullptr) return buf;
  return path;  // the daemon reports the missing file
}

struct ClientArgs {
  CephArgs ceph;
  std::string control_socket = kDefaultControlSocket;
  std::string device, cookie, format = "plain";
  DeviceType type = DeviceType::kNbd;
  std::string queue_depth, max_io;  // ublk's shape as given; empty: not given
  uint32_t connections = 1;
  uint64_t io_timeout = 30, reattach_timeout = 60;
  bool show_cookie = false, force = false;
  std::vector<std::string> positional;
};

int Usage(const char* cmd, const std::string& msg) {
  std::fprintf(stderr, "rbd-nbdd %s: %s (see rbd-nbdd help)\n", cmd, msg.c_str());
  return 2;
}

int Parse(const char* cmd, int argc, char** argv, ClientArgs* a) {
  enum { kDevice = 1000, kDeviceType, kConnections, kIoTimeout, kReattach, kCookie, kShowCookie, kNbdsMax, kMaxPart,
         kControl, kFormat, kForce, kQueueDepth, kMaxIo };
  std::vector<option> options = {
      {"device", required_argument, nullptr, kDevice},
      {"device-type", required_argument, nullptr, kDeviceType},
      {"connections", required_argument, nullptr, kConnections},
      {"queue-depth", required_argument, nullptr, kQueueDepth},
      {"max-io", required_argument, nullptr, kMaxIo},
      {"io-timeout", required_argument, nullptr, kIoTimeout},
      {"timeout", required_argument, nullptr, kIoTimeout},
      {"reattach-timeout", required_argument, nullptr, kReattach},
      {"cookie", required_argument, nullptr, kCookie},
      {"show-cookie", no_argument, nullptr, kShowCookie},
      {"nbds_max", required_argument, nullptr, kNbdsMax},
      {"max_part", required_argument, nullptr, kMaxPart},
      {"control-socket", required_argument, nullptr, kControl},
      {"format", required_argument, nullptr, kFormat},
      {"force", no_argument, nullptr, kForce},
      {"help", no_argument, nullptr, 'h'},
  };
  for (const option& o : CephOptionTable()) options.push_back(o);
  options.push_back({nullptr, 0, nullptr, 0});
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":hm:c:n:k:t:", options.data(), nullptr)) != -1) {
    auto ceph = HandleCephOption(c, optarg, &a->ceph);
    if (!ceph) return Usage(cmd, ceph.error().message);
    if (*ceph) continue;
    auto num = [&](const char* name, uint64_t lo, uint64_t hi, auto* out) {
      auto n = ParseUint(optarg, lo, hi);
      if (!n) return Usage(cmd, std::string(name) + ": " + n.error().message);
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(*n);
      return -1;
    };
    int rc = -1;
    switch (c) {
      case kDevice: a->device = optarg; break;
      case 't':
      case kDeviceType: {
        auto t = ParseDeviceTypeOption(optarg);
        if (!t) return Usage(cmd, t.error().message);
        a->type = *t;
        break;
      }
      case kConnections: rc = num("--connections", 1, 16, &a->connections); break;
      case kQueueDepth: a->queue_depth = optarg; break;  // checked with the type, once all are read
      case kMaxIo: a->max_io = optarg; break;
      case kIoTimeout: rc = num("--io-timeout", 0, 86400, &a->io_timeout); break;
      case kReattach: rc = num("--reattach-timeout", 0, 86400, &a->reattach_timeout); break;
      case kCookie: a->cookie = optarg; break;
      case kShowCookie: a->show_cookie = true; break;
      case kNbdsMax: case kMaxPart: break;  // the daemon loads the module with its own settings
      case kControl: a->control_socket = optarg; break;
      case kFormat:
        a->format = optarg;
        if (a->format != "plain" && a->format != "json") return Usage(cmd, "--format must be plain or json");
        break;
      case kForce: a->force = true; break;
      case 'h': PrintClientHelp(); return 0;
      case ':': return Usage(cmd, std::string("option '") + argv[optind - 1] + "' needs a value");
      default: return Usage(cmd, std::string("unknown option '") + argv[optind - 1] + "'");
    }
    if (rc >= 0) return rc;
  }
  for (int i = optind; i < argc; i++) a->positional.emplace_back(argv[i]);
  return -1;
}

// Builds the map/attach request: cluster where/who, and the key if it was
// given in memory (stdin or --key-fd); key files travel as paths.
Result<api::MapRequest> BuildMapRequest(ClientArgs* a, const std::string& spec) {
  MapRequest r;
  std::string keyfile = a->ceph.keyfile;
  a->ceph.keyfile.clear();
  if (keyfile == "-") a->ceph.key_fd = 0;
  if (auto f = FinishCephArgs(&a->ceph); !f) return Unexpected(f.error());
  r.spec = spec;
  r.type = a->type;
  r.cluster = std::move(a->ceph.cluster);
  r.cluster.conf_path = Absolute(r.cluster.conf_path);
  r.cluster.keyring_path = Absolute(r.cluster.keyring_path);
  if (keyfile != "-") r.keyfile_path = Absolute(keyfile);
  r.image = std::move(a->ceph.image);
  r.image.passphrase = Secret();  // the daemon reads the file itself
  r.passphrase_file = Absolute(a->ceph.passphrase_file);
  auto shape = ParseUblkShapeOptions(a->type, a->queue_depth, a->max_io);
  if (!shape) return Unexpected(shape.error());
  r.ublk_queue_depth = shape->queue_depth;
  r.ublk_max_io_bytes = shape->max_io_bytes;
  r.device.connections = a->connections;
  r.device.io_timeout_s = a->io_timeout;
  r.device.reattach_timeout_s = a->reattach_timeout;
  r.device.cookie = a->cookie;
  if (!a->device.empty()) {
    auto index = ParseDeviceIndex(a->device, a->type);
    if (!index) return Unexpected(index.error());
    r.device.index = *index;
  }
  return ToWire(r);
}

// The daemon's answer to `request`, decoded by `decode`.
template <typename Decode>
auto Call(const std::string& socket, std::string request, Decode decode,
          std::chrono::seconds reply_timeout = api::kDefaultReplyTimeout) -> decltype(decode(std::string_view())) {
  auto line = api::CallDaemon(socket, std::move(request), reply_timeout);
  if (!line) return Unexpected(line.error());
  return decode(*line);
}

// The health column: "ok", "STALLED", "errors:N" (answered with an error in
// the last 60 s), or "-" from a daemon that does not report health.
std::string HealthWord(const api::DeviceEntry& d) {
  if (!d.health) return "-";
  if (d.health->stalled) return "STALLED";
  if (d.health->recent_errors > 0) return "errors:" + std::to_string(d.health->recent_errors);
  return "ok";
}

// 0, or prints why the call failed and returns 1.
template <typename T>
int Report(const Result<T>& reply) {
  if (reply) return 0;
  std::fprintf(stderr, "rbd-nbdd: %s\n", reply.error().message.c_str());
  return 1;
}

}  // namespace

Result<DeviceType> ParseDeviceTypeOption(const std::string& arg) {
  auto t = ParseDeviceType(arg);
  if (!t || arg.empty()) return Err(EINVAL, "-t/--device-type: '{}' is not nbd or ublk", arg);
  return t;
}

Result<UblkShapeOptions> ParseUblkShapeOptions(DeviceType type, const std::string& queue_depth,
                                               const std::string& max_io) {
  UblkShapeOptions shape;
  if (queue_depth.empty() && max_io.empty()) return shape;
  if (type != DeviceType::kUblk) {
    return Err(EINVAL, "{} applies to -t ublk only (an nbd device's queue is the kernel's)",
               queue_depth.empty() ? "--max-io" : "--queue-depth");
  }
  if (!queue_depth.empty()) {
    auto n = ParseUint(queue_depth, 1, kUblkMaxDepth);
    if (!n) return Err(EINVAL, "--queue-depth: '{}' is not a number of requests in 1..{} (UBLK_MAX_QUEUE_DEPTH)",
                       queue_depth, kUblkMaxDepth);
    shape.queue_depth = static_cast<uint32_t>(*n);
  }
  if (!max_io.empty()) {
    auto n = ParseSize(max_io);
    if (!n || !api::IsUblkMaxIoBytes(*n)) {
      return Err(EINVAL, "--max-io: '{}' is not a size that is a multiple of 4K from 4K to 32M (e.g. 256K, 1M)",
                 max_io);
    }
    shape.max_io_bytes = static_cast<uint32_t>(*n);
  }
  return shape;
}

Result<uint32_t> ParseDeviceIndex(const std::string& dev, DeviceType type) {
  const std::string prefix = type == DeviceType::kUblk ? "/dev/ublkb" : "/dev/nbd";
  std::string s = dev.starts_with(prefix) ? dev.substr(prefix.size()) : dev;
  auto n = ParseUint(s, 0, 1u << 20);
  if (!n) {
    const char* other = type == DeviceType::kUblk ? "/dev/nbd" : "/dev/ublkb";
    if (dev.starts_with(other)) {
      return Err(EINVAL, "'{}' is not a{} device: give -t {} to map one", dev,
                 type == DeviceType::kUblk ? "ublk" : "n nbd", type == DeviceType::kUblk ? "nbd" : "ublk");
    }
    return Err(EINVAL, "'{}' is not a{} device ({}N or N)", dev, type == DeviceType::kUblk ? " ublk" : "n nbd",
               prefix);
  }
  return static_cast<uint32_t>(*n);
}

int RunClientCommand(const char* cmd, int argc, char** argv) {
  ClientArgs a;
  if (int rc = Parse(cmd, argc, argv, &a); rc >= 0) return rc;
  std::string command = cmd;
  if (command == "map" || command == "attach") {
    if (a.positional.size() != 1) return Usage(cmd, "expected exactly one image spec");
    if (command == "attach" && (a.device.empty() || a.cookie.empty())) {
      return Usage(cmd, "attach needs --device and --cookie");
    }
    auto req = BuildMapRequest(&a, a.positional[0]);
    if (!req) {
      std::fprintf(stderr, "rbd-nbdd %s: %s\n", cmd, req.error().message.c_str());
      return 2;
    }
    if (command == "attach" && !req->key.empty()) {
      // An attach is what a daemon restart does from its state file, which names files only.
      return Usage(cmd, "attach takes the key from --keyring or --keyfile PATH, not from stdin or --key-fd");
    }
    auto reply_timeout = api::MapReplyTimeout(req->connect_timeout_s);
    std::string text = command == "attach" ? api::EncodeRequest(api::AttachRequest{std::move(*req)})
                                           : api::EncodeRequest(*req);
    auto reply = Call(a.control_socket, std::move(text), api::DecodeMappedReply, reply_timeout);
    if (int rc = Report(reply); rc != 0) return rc;
    std::printf("%s\n", reply->device.c_str());
    if (a.show_cookie) std::printf("%s\n", reply->cookie.c_str());
    return 0;
  }
  if (command == "unmap" || command == "detach") {
    if (a.positional.size() != 1) return Usage(cmd, "expected one device or image spec");
    std::string text = command == "unmap" ? api::EncodeRequest(api::UnmapRequest{a.positional[0], a.force})
                                          : api::EncodeRequest(api::DetachRequest{a.positional[0]});
    return Report(Call(a.control_socket, std::move(text), api::DecodeOkReply));
  }
  if (command == "list-mapped" || command == "status") {
    std::string text = command == "status" ? api::EncodeRequest(api::StatusRequest{})
                                           : api::EncodeRequest(api::ListRequest{});
    auto reply = Call(a.control_socket, std::move(text), api::DecodeStatusReply);
    if (int rc = Report(reply); rc != 0) return rc;
    const std::vector<api::DeviceEntry>& devices = reply->devices;
    if (a.format == "json") {
      std::printf("%s\n", command == "status" ? api::FormatStatus(*reply, 2).c_str() : api::FormatDevices(devices, 2).c_str());
      return 0;
    }
    if (command == "status") std::printf("daemon pid %d, %zu device(s) mapped\n", reply->pid, devices.size());
    if (!devices.empty()) {
      // health last: the columns before it keep the places scripts of older versions read
      std::printf("%-4s %-12s %-40s %-12s %-6s %-41s %s\n", "id", "device", "image", "state", "conns", "cookie",
                  "health");
    }
    for (const api::DeviceEntry& d : devices) {
      std::string conns = fmt::format("{}/{}", d.live_connections, d.connections);
      std::printf("%-4u %-12s %-40s %-12s %-6s %-41s %s\n", d.index, d.device.c_str(), d.spec.c_str(),
                  api::DeviceStateName(d.state), conns.c_str(), d.cookie.c_str(), HealthWord(d).c_str());
      if (command == "status" && d.health) {
        const api::DeviceHealth& h = *d.health;
        std::string last_io = h.seconds_since_last_io < 0 ? std::string("none yet")
                                                          : std::to_string(h.seconds_since_last_io) + " s ago";
        std::printf("     last I/O %s, %llu in flight, %llu error(s) in the last 60 s\n", last_io.c_str(),
                    static_cast<unsigned long long>(h.inflight), static_cast<unsigned long long>(h.recent_errors));
      }
      if (command == "status" && d.queue_depth != 0) {
        std::printf("     ublk queue depth %u, max I/O %u KiB\n", d.queue_depth, d.max_io_bytes >> 10);
      }
      // Why it is not served yet, for the admin who looks.
      if (!d.last_error.empty()) {
        std::printf("     last error (attempt %u): %s\n", d.reattach_attempts, d.last_error.c_str());
      }
    }
    return 0;
  }
  return Usage(cmd, "unknown command");
}

}  // namespace rbdnbd
