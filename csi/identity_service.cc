#include "csi/identity_service.h"

#include <unistd.h>

#include <cctype>

#include <spdlog/spdlog.h>

namespace rbdnbd::csi {

namespace pb = ::csi::v1;

bool IsValidDriverName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

grpc::Status IdentityService::GetPluginInfo(grpc::ServerContext*, const pb::GetPluginInfoRequest*,
                                            pb::GetPluginInfoResponse* response) {
  response->set_name(options_.driver_name);
  response->set_vendor_version(options_.version);
  return grpc::Status::OK;
}

grpc::Status IdentityService::GetPluginCapabilities(grpc::ServerContext*, const pb::GetPluginCapabilitiesRequest*,
                                                    pb::GetPluginCapabilitiesResponse* response) {
  // The node plugin has no CONTROLLER_SERVICE; the controller binary does.
  // Volumes grow while in use, in both.
  if (options_.controller_service) {
    response->add_capabilities()->mutable_service()->set_type(pb::PluginCapability::Service::CONTROLLER_SERVICE);
  }
  response->add_capabilities()->mutable_volume_expansion()->set_type(
      pb::PluginCapability::VolumeExpansion::ONLINE);
  return grpc::Status::OK;
}

grpc::Status IdentityService::Probe(grpc::ServerContext*, const pb::ProbeRequest*, pb::ProbeResponse* response) {
  if (daemon_ == nullptr) {
    response->mutable_ready()->set_value(true);
    return grpc::Status::OK;
  }
  auto status = daemon_->Status();
  if (!status) {
    spdlog::warn("Probe: {}", status.error().message);
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, status.error().message);
  }
  bool has_nbd = status->nbd_driver.has_value() ? *status->nbd_driver
                                                 : ::access(options_.nbd_module_path.c_str(), F_OK) == 0;
  if (!has_nbd && ublk_ != nullptr && ublk_->Probe().driver) {
    spdlog::debug("Probe: no nbd driver, but ublk: only deviceType ublk (or auto) volumes can be staged");
  } else if (!has_nbd) {
    std::string message = ublk_ == nullptr
                              ? "the nbd kernel driver is not available on this node (modprobe nbd)"
                              : "neither the nbd nor the ublk kernel driver is available on this node (modprobe nbd; "
                                "modprobe ublk_drv for deviceType ublk)";
    spdlog::warn("Probe: {}", message);
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, message);
  }
  response->mutable_ready()->set_value(true);
  return grpc::Status::OK;
}

}  // namespace rbdnbd::csi
