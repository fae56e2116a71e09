// rbd-nbdd-csi-controller: the CSI controller (README.md here). Parses flags,
// starts the gRPC server with the librbd store and waits for SIGTERM/SIGINT;
// on either it stops accepting, lets the calls in flight finish (bounded)
// and exits 0. It keeps no state outside Ceph.
#include <getopt.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "csi/controller/controller_server.h"
#include "csi/controller/librbd_store.h"
#include "csi/process_main.h"

#ifndef RBDNBD_VERSION
#define RBDNBD_VERSION "unknown"
#endif

namespace {

constexpr const char* kUsage = R"(Usage: rbd-nbdd-csi-controller [options]

CSI controller: creates, deletes, snapshots, clones and expands RBD volumes through librbd,
with the credentials each call brings in its secrets.

  --endpoint URI                 gRPC endpoint, unix:///path or /path (default unix:///csi/csi.sock)
  --driver-name NAME             CSI driver name (default rbd-nbdd.csi.ceph.io)
  --cluster-config FILE          ceph-csi style cluster list (default /etc/rbd-nbdd-csi/config.json)
  --connection-idle-seconds N    keep a cluster connection this long after its last call (default 300)
  --max-clone-depth N            flatten a new clone whose parent chain is deeper (default 8)
  --log-level LEVEL              trace|debug|info|warn|error|critical|off (default info)
  --log-target TARGET            stderr|syslog|file:/path (default stderr)
  --help, --version
)";

enum Option { kEndpoint = 256, kDriverName, kClusterConfig, kIdleSeconds, kMaxCloneDepth, kLogLevel, kLogTarget,
              kHelp, kVersion };

}  // namespace

int main(int argc, char** argv) {
  rbdnbd::csi::ControllerServerOptions options;
  rbdnbd::csi::LibrbdStoreOptions store_options;
  std::string log_level = "info";
  std::string log_target = "stderr";
  static const option kLong[] = {
      {"endpoint", required_argument, nullptr, kEndpoint},
      {"driver-name", required_argument, nullptr, kDriverName},
      {"cluster-config", required_argument, nullptr, kClusterConfig},
      {"connection-idle-seconds", required_argument, nullptr, kIdleSeconds},
      {"max-clone-depth", required_argument, nullptr, kMaxCloneDepth},
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
      case kDriverName: options.driver_name = optarg; break;
      case kClusterConfig: options.controller.cluster_config = optarg; break;
      case kIdleSeconds: {
        uint32_t n = 0;
        if (!rbdnbd::csi::ParseFlagNumber<uint32_t>(optarg, 0, 86400, &n)) {
          std::fprintf(stderr, "rbd-nbdd-csi-controller: --connection-idle-seconds must be 0..86400\n");
          return 2;
        }
        store_options.idle_keep = std::chrono::seconds(n);
        break;
      }
      case kMaxCloneDepth: {
        uint32_t n = 0;
        if (!rbdnbd::csi::ParseFlagNumber<uint32_t>(optarg, 0, 64, &n)) {
          std::fprintf(stderr, "rbd-nbdd-csi-controller: --max-clone-depth must be 0..64\n");
          return 2;
        }
        options.controller.max_clone_depth = n;
        break;
      }
      case kLogLevel: log_level = optarg; break;
      case kLogTarget: log_target = optarg; break;
      case kHelp: std::fputs(kUsage, stdout); return 0;
      case kVersion: std::printf("rbd-nbdd-csi-controller %s\n", RBDNBD_VERSION); return 0;
      default: std::fputs(kUsage, stderr); return 2;
    }
  }
  if (!rbdnbd::csi::FinishFlags("rbd-nbdd-csi-controller", argc, argv, kUsage, log_level, log_target)) return 2;

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
