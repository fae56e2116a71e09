// NodeService: csi.v1.Node, the gRPC boundary of the node operations.
//
// Contract: each RPC first checks that every required field is present
// (INVALID_ARGUMENT naming it, before anything else), converts the protobuf
// request into the plain structs of node_context.h, calls the stager,
// publisher, expander or volume stats, and converts a failed Result into a
// grpc::Status (csi_error.h). It logs the RPC, volume id, paths, outcome and
// duration; never secrets or mount flags. Unimplemented RPCs answer
// UNIMPLEMENTED (the generated base class does). NodeGetVolumeStats also
// returns the volume's condition (volume_condition.h; an abnormal one is
// logged at warn), and VOLUME_CONDITION is advertised. Called on gRPC threads,
// concurrently.
#pragma once

#include <cstdint>
#include <string>

#include "csi.grpc.pb.h"
#include "csi/expander.h"
#include "csi/publisher.h"
#include "csi/stager.h"
#include "csi/volume_stats.h"

namespace rbdnbd::csi {

struct NodeOptions {
  std::string node_id;
  int64_t max_volumes_per_node = 0;  // 0: not reported
};

class NodeService final : public ::csi::v1::Node::Service {
 public:
  NodeService(NodeOptions options, const NodeContext& ctx)
      : options_(std::move(options)), stager_(ctx), publisher_(ctx), expander_(ctx), stats_(ctx) {}

  grpc::Status NodeStageVolume(grpc::ServerContext*, const ::csi::v1::NodeStageVolumeRequest* request,
                               ::csi::v1::NodeStageVolumeResponse*) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext*, const ::csi::v1::NodeUnstageVolumeRequest* request,
                                 ::csi::v1::NodeUnstageVolumeResponse*) override;
  grpc::Status NodePublishVolume(grpc::ServerContext*, const ::csi::v1::NodePublishVolumeRequest* request,
                                 ::csi::v1::NodePublishVolumeResponse*) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*, const ::csi::v1::NodeUnpublishVolumeRequest* request,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*, const ::csi::v1::NodeGetVolumeStatsRequest* request,
                                  ::csi::v1::NodeGetVolumeStatsResponse* response) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext*, const ::csi::v1::NodeExpandVolumeRequest* request,
                                ::csi::v1::NodeExpandVolumeResponse* response) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext*, const ::csi::v1::NodeGetCapabilitiesRequest*,
                                   ::csi::v1::NodeGetCapabilitiesResponse* response) override;
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                           ::csi::v1::NodeGetInfoResponse* response) override;

 private:
  NodeOptions options_;
  Stager stager_;
  Publisher publisher_;
  Expander expander_;
  VolumeStats stats_;
};

// The checks on a volume_capability, shared by stage and publish: present,
// with an access_mode that is not UNKNOWN, and block or mount set; mount
// volumes cannot be MULTI_NODE_MULTI_WRITER. Returns the plain Capability.
Result<Capability> CapabilityFromProto(const ::csi::v1::VolumeCapability& capability, bool present);

}  // namespace rbdnbd::csi
