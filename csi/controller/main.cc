// rbd-nbdd-csi-controller: the CSI controller (README.md here). Parses flags,
// starts the gRPC server with the librbd store and waits for SIGTERM/SIGINT;
// on either it stops accepting, lets the calls in flight finish (bounded)
// and exits 0. It keeps no state outside Ceph.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "csi/controller/controller_server.h"
#include "csi/controller/librbd_store.h"
#include "csi/process_main.h"

namespace {

constexpr const char* kUsage = R"(Usage: rbd-nbdd-csi-controller [options]

CSI controller: creates, deletes, snapshots, clones and expands RBD volumes through librbd,
with the credentials each call brings in its secrets.

  --endpoint URI                 gRPC endpoint, unix:///path or /path (default unix:///csi/csi.sock)
  --driver-name NAME             CSI driver name (default rbd-nbdd.csi.ceph.io)
  --cluster-config FILE          ceph-csi style cluster list (default /etc/rbd-nbdd-csi/config.json)
  --connection-idle-seconds N    keep a cluster connection this long after its last call (default 300)
  --max-clone-depth N            flatten a new clone whose parent chain is deeper (default 8)
  --metrics-address ADDR         serve Prometheus /metrics and /healthz over HTTP at ADDR
                                 (IP:PORT, [IPv6]:PORT or :PORT; suggested :9483; default: off)
  --log-level LEVEL              trace|debug|info|warn|error|critical|off (default info)
  --log-target TARGET            stderr|syslog|file:/path (default stderr)
  --log-format FORMAT            text|json (default text; json: one object per line)
  --help, --version
)";

enum Option { kEndpoint = 256, kDriverName, kClusterConfig, kIdleSeconds, kMaxCloneDepth };

}  // namespace

int main(int argc, char** argv) {
  rbdnbd::csi::ControllerServerOptions options;
  rbdnbd::csi::LibrbdStoreOptions store_options;
  rbdnbd::csi::SharedFlags shared;
  auto exit_code = rbdnbd::csi::ParseFlags(
      "rbd-nbdd-csi-controller", kUsage,
      {{"endpoint", kEndpoint},
       {"driver-name", kDriverName},
       {"cluster-config", kClusterConfig},
       {"connection-idle-seconds", kIdleSeconds},
       {"max-clone-depth", kMaxCloneDepth}},
      argc, argv, [&](int flag, const char* value) {
        uint32_t n = 0;
        switch (flag) {
          case kEndpoint: options.endpoint = value; break;
          case kDriverName: options.driver_name = value; break;
          case kClusterConfig: options.controller.cluster_config = value; break;
          case kIdleSeconds:
            if (!rbdnbd::csi::ParseFlagNumber<uint32_t>(value, 0, 86400, &n)) {
              std::fprintf(stderr, "rbd-nbdd-csi-controller: --connection-idle-seconds must be 0..86400\n");
              return false;
            }
            store_options.idle_keep = std::chrono::seconds(n);
            break;
          case kMaxCloneDepth:
            if (!rbdnbd::csi::ParseFlagNumber<uint32_t>(value, 0, 64, &options.controller.max_clone_depth)) {
              std::fprintf(stderr, "rbd-nbdd-csi-controller: --max-clone-depth must be 0..64\n");
              return false;
            }
            break;
        }
        return true;
      },
      &shared);
  if (exit_code) return *exit_code;
  options.metrics_address = shared.metrics_address;

  // Before gRPC and librados start their threads, so that only the wait below
  // sees them.
  rbdnbd::csi::BlockStopSignals();

  auto server = rbdnbd::csi::ControllerServer::Start(options, rbdnbd::csi::MakeLibrbdStore(store_options));
  if (!server) {
    spdlog::error("rbd-nbdd-csi-controller: {}", server.error().message);
    return 1;
  }
  int sig = rbdnbd::csi::WaitForStopSignal();
  spdlog::info("signal {}: stopping (finishing the calls in flight)", strsignal(sig));
  (*server)->Shutdown(std::chrono::seconds(30));
  return 0;
}
