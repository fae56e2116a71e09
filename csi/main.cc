// rbd-nbdd-csi: the CSI node plugin. Parses flags, starts the gRPC server and
// waits for SIGTERM/SIGINT; on either it stops serving and exits 0, leaving
// every device and mount in place (the rbd-nbdd daemon keeps serving them).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include <spdlog/spdlog.h>

#include "csi/plugin_server.h"
#include "csi/process_main.h"

namespace {

constexpr const char* kUsage = R"(Usage: rbd-nbdd-csi [options]

CSI node plugin: stages RBD volumes as /dev/nbdX or /dev/ublkbX (volume_context deviceType:
nbd, ublk or auto) through the node's rbd-nbdd daemon.

  --endpoint URI               gRPC endpoint, unix:///path or /path (default unix:///csi/csi.sock)
  --node-id NAME               node id reported by NodeGetInfo (default: the host name)
  --driver-name NAME           CSI driver name (default rbd-nbdd.csi.ceph.io)
  --control-socket PATH        rbd-nbdd daemon control socket (default /run/rbd-nbdd/control.sock)
  --state-dir DIR              per-volume staging metadata (default /var/lib/rbd-nbdd-csi)
  --cluster-config FILE        ceph-csi style cluster list (default /etc/rbd-nbdd-csi/config.json)
  --max-volumes-per-node N     reported by NodeGetInfo (default: not reported)
  --metrics-address ADDR       serve Prometheus /metrics and /healthz over HTTP at ADDR
                               (IP:PORT, [IPv6]:PORT or :PORT; suggested :9482; default: off)
  --log-level LEVEL            trace|debug|info|warn|error|critical|off (default info)
  --log-target TARGET          stderr|syslog|file:/path (default stderr)
  --log-format FORMAT          text|json (default text; json: one object per line)
  --help, --version
)";

enum Option { kEndpoint = 256, kNodeId, kDriverName, kControlSocket, kStateDir, kClusterConfig, kMaxVolumes };

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  rbdnbd::csi::PluginOptions options;
  options.node_id = HostName();
  rbdnbd::csi::SharedFlags shared;
  auto exit_code = rbdnbd::csi::ParseFlags(
      "rbd-nbdd-csi", kUsage,
      {{"endpoint", kEndpoint},
       {"node-id", kNodeId},
       {"driver-name", kDriverName},
       {"control-socket", kControlSocket},
       {"state-dir", kStateDir},
       {"cluster-config", kClusterConfig},
       {"max-volumes-per-node", kMaxVolumes}},
      argc, argv, [&](int flag, const char* value) {
        switch (flag) {
          case kEndpoint: options.endpoint = value; break;
          case kNodeId: options.node_id = value; break;
          case kDriverName: options.driver_name = value; break;
          case kControlSocket: options.control_socket = value; break;
          case kStateDir: options.state_dir = value; break;
          case kClusterConfig: options.cluster_config = value; break;
          case kMaxVolumes:
            if (!rbdnbd::csi::ParseFlagNumber<int64_t>(value, 0, std::numeric_limits<int64_t>::max(),
                                                       &options.max_volumes_per_node)) {
              std::fprintf(stderr, "rbd-nbdd-csi: --max-volumes-per-node must be a non-negative number\n");
              return false;
            }
            break;
        }
        return true;
      },
      &shared);
  if (exit_code) return *exit_code;
  options.metrics_address = shared.metrics_address;

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
