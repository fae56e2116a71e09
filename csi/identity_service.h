// IdentityService: csi.v1.Identity (GetPluginInfo, GetPluginCapabilities,
// Probe). The gRPC boundary only: no logic beyond the daemon health check.
//
// Contract: Probe asks the rbd-nbdd daemon for its status. Unreachable, or a
// daemon that reports no NBD driver (nbd_driver=false; when a daemon does not
// report the field, /sys/module/nbd missing) is FAILED_PRECONDITION with the
// reason, unless the node has the ublk driver (`ublk`, when given, finds
// /dev/ublk-control: deviceType ublk volumes can be served); otherwise ready=true. Called on gRPC threads, concurrently.
//
// Shared by both binaries. The node plugin passes its daemon client and
// controller_service=false. The controller (rbd-nbdd-csi-controller) passes
// no daemon (null: it has none to check, and the cluster is asked per call
// with each call's own credentials, so Probe is ready at once) and
// controller_service=true, which adds CONTROLLER_SERVICE to the plugin
// capabilities. Both advertise online volume expansion.
#pragma once

#include <string>

#include "csi.grpc.pb.h"
#include "csi/daemon_client.h"
#include "csi/device_type.h"

namespace rbdnbd::csi {

struct IdentityOptions {
  std::string driver_name;
  std::string version;
  std::string nbd_module_path = "/sys/module/nbd";
  bool controller_service = false;  // advertise CONTROLLER_SERVICE (the controller binary)
};

class IdentityService final : public ::csi::v1::Identity::Service {
 public:
  // `daemon` may be null (the controller): Probe is then ready without a check.
  // `ublk` may be null: only the nbd driver counts.
  IdentityService(IdentityOptions options, DaemonClient* daemon, UblkProbe* ublk = nullptr)
      : options_(std::move(options)), daemon_(daemon), ublk_(ublk) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const ::csi::v1::GetPluginInfoRequest*,
                             ::csi::v1::GetPluginInfoResponse* response) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext*, const ::csi::v1::GetPluginCapabilitiesRequest*,
                                     ::csi::v1::GetPluginCapabilitiesResponse* response) override;
  grpc::Status Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest*, ::csi::v1::ProbeResponse* response) override;

 private:
  IdentityOptions options_;
  DaemonClient* daemon_;
  UblkProbe* ublk_;
};

// The rule for plugin names (CSI: domain style, at most 63 characters,
// alphanumeric at both ends, [-.a-zA-Z0-9] between).
bool IsValidDriverName(const std::string& name);

}  // namespace rbdnbd::csi
