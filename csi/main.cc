// rbd-nbdd-csi: the CSI node plugin. Parses flags, starts the gRPC server and
// waits for SIGTERM/SIGINT; on either it stops serving and exits 0, leaving
// every device and mount in place (the rbd-nbdd daemon keeps serving them).
#include <getopt.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include <spdlog/spdlog.h>

#include "csi/plugin_server.h"
#include "csi/process_main.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace {

constexpr const char* kUsage = R"(Usage: rbd-nbdd-csi [options]

CSI node plugin: stages RBD volumes as /dev/nbdX through the node's rbd-nbdd daemon.

  --endpoint URI               gRPC endpoint, unix:///path or /path (default unix:///csi/csi.sock)
  --node-id NAME               node id reported by NodeGetInfo (default: the host name)
  --driver-name NAME           CSI driver name (default rbd-nbdd.csi.ceph.io)
  --control-socket PATH        rbd-nbdd daemon control socket (default /run/rbd-nbdd/control.sock)
  --state-dir DIR              per-volume staging metadata (default /var/lib/rbd-nbdd-csi)
  --cluster-config FILE        ceph-csi style cluster list (default /etc/rbd-nbdd-csi/config.json)
  --max-volumes-per-node N     reported by NodeGetInfo (default: not reported)
  --log-level LEVEL            trace|debug|info|warn|error|critical|off (default info)
  --log-target TARGET          stderr|syslog|file:/path (default stderr)
  --help, --version
)";

enum Option { kEndpoint = 256, kNodeId, kDriverName, kControlSocket, kStateDir, kClusterConfig, kMaxVolumes,
              kLogLevel, kLogTarget, kHelp, kVersion };

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  rbdnbd::csi::PluginOptions options;
  options.node_id = HostName();
  std::string log_level = "info";
  std::string log_target = "stderr";
  static const option kLong[] = {
      {"endpoint", required_argument, nullptr, kEndpoint},
      {"node-id", required_argument, nullptr, kNodeId},
      {"driver-name", required_argument, nullptr, kDriverName},
      {"control-socket", required_argument, nullptr, kControlSocket},
      {"state-dir", required_argument, nullptr, kStateDir},
      {"cluster-config", required_argument, nullptr, kClusterConfig},
      {"max-volumes-per-node", required_argument, nullptr, kMaxVolumes},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"log-target", required_argument, nullptr, kLogTarget},
      {"help", no_argument, nullptr, kHelp},
      {"version", no_argument, nullptr, kVersion},
      {nullptr, 0, nullptr, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "", kLong, nullptr);
    if (c == -1) break;
    switch (c) {
      case kEndpoint: options.endpoint = optarg; break;
      case kNodeId: options.node_id = optarg; break;
      case kDriverName: options.driver_name = optarg; break;
      case kControlSocket: options.control_socket = optarg; break;
      case kStateDir: options.state_dir = optarg; break;
      case kClusterConfig: options.cluster_config = optarg; break;
      case kMaxVolumes: {
        int64_t n = -1;
        if (!rbdnbd::csi::ParseFlagNumber<int64_t>(optarg, 0, std::numeric_limits<int64_t>::max(), &n)) {
          std::fprintf(stderr, "rbd-nbdd-csi: --max-volumes-per-node must be a non-negative number\n");
          return 2;
        }
        options.max_volumes_per_node = n;
        break;
      }
      case kLogLevel: log_level = optarg; break;
      case kLogTarget: log_target = optarg; break;
      case kHelp: std::fputs(kUsage, stdout); return 0;
      case kVersion: std::printf("rbd-nbdd-csi %s\n", RBDNBD_VERSION); return 0;
      default: std::fputs(kUsage, stderr); return 2;
    }
  }
  if (!rbdnbd::csi::FinishFlags("rbd-nbdd-csi", argc, argv, kUsage, log_level, log_target)) return 2;

  // Before gRPC starts its threads, so that only the wait below sees them.
  rbdnbd::csi::BlockStopSignals();

  auto server = rbdnbd::csi::PluginServer::Start(options);
  if (!server) {
    spdlog::error("rbd-nbdd-csi: {}", server.error().message);
    return 1;
  }
  int sig = rbdnbd::csi::WaitForStopSignal();
  spdlog::info("signal {}: stopping (devices and mounts stay in place)", strsignal(sig));
  (*server)->Shutdown();
  return 0;
}
