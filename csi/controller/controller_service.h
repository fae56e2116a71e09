// ControllerService: csi.v1.Controller, the gRPC boundary of the controller.
// It checks the request's fields (a missing one is INVALID_ARGUMENT naming
// it, before anything else), hands the work to ControllerOps, converts the
// outcome to a grpc::Status in one place (ToControllerStatus) and logs each
// RPC once at info with its outcome and duration: names and ids only, never
// a secret, a parameter value or a mount flag.
//
// Contract: called on gRPC's threads, concurrently; ControllerOps serialises
// per name and id. ControllerPublish/Unpublish, ControllerGetVolume and
// ControllerModifyVolume answer UNIMPLEMENTED (not advertised).
#pragma once

#include "csi.grpc.pb.h"
#include "csi/controller/controller_ops.h"

namespace rbdnbd::csi {

class ControllerService final : public ::csi::v1::Controller::Service {
 public:
  explicit ControllerService(ControllerOps* ops) : ops_(ops) {}

  grpc::Status CreateVolume(grpc::ServerContext*, const ::csi::v1::CreateVolumeRequest*,
                            ::csi::v1::CreateVolumeResponse*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const ::csi::v1::DeleteVolumeRequest*,
                            ::csi::v1::DeleteVolumeResponse*) override;
  grpc::Status ControllerPublishVolume(grpc::ServerContext*, const ::csi::v1::ControllerPublishVolumeRequest*,
                                       ::csi::v1::ControllerPublishVolumeResponse*) override;
  grpc::Status ControllerUnpublishVolume(grpc::ServerContext*, const ::csi::v1::ControllerUnpublishVolumeRequest*,
                                         ::csi::v1::ControllerUnpublishVolumeResponse*) override;
  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*, const ::csi::v1::ValidateVolumeCapabilitiesRequest*,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const ::csi::v1::ListVolumesRequest*,
                           ::csi::v1::ListVolumesResponse*) override;
  grpc::Status GetCapacity(grpc::ServerContext*, const ::csi::v1::GetCapacityRequest*,
                           ::csi::v1::GetCapacityResponse*) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext*, const ::csi::v1::ControllerGetCapabilitiesRequest*,
                                         ::csi::v1::ControllerGetCapabilitiesResponse*) override;
  grpc::Status CreateSnapshot(grpc::ServerContext*, const ::csi::v1::CreateSnapshotRequest*,
                              ::csi::v1::CreateSnapshotResponse*) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext*, const ::csi::v1::DeleteSnapshotRequest*,
                              ::csi::v1::DeleteSnapshotResponse*) override;
  grpc::Status ListSnapshots(grpc::ServerContext*, const ::csi::v1::ListSnapshotsRequest*,
                             ::csi::v1::ListSnapshotsResponse*) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext*, const ::csi::v1::ControllerExpandVolumeRequest*,
                                      ::csi::v1::ControllerExpandVolumeResponse*) override;
  grpc::Status ControllerGetVolume(grpc::ServerContext*, const ::csi::v1::ControllerGetVolumeRequest*,
                                   ::csi::v1::ControllerGetVolumeResponse*) override;
  grpc::Status ControllerModifyVolume(grpc::ServerContext*, const ::csi::v1::ControllerModifyVolumeRequest*,
                                      ::csi::v1::ControllerModifyVolumeResponse*) override;

 private:
  ControllerOps* ops_;
};

}  // namespace rbdnbd::csi
