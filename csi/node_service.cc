#include "csi/node_service.h"

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"
#include "csi/rpc_log.h"

namespace rbdnbd::csi {

namespace pb = ::csi::v1;

Result<Capability> CapabilityFromProto(const pb::VolumeCapability& capability, bool present) {
  if (!present) return Err(kInvalidArgument, "volume_capability is required");
  if (!capability.has_access_mode()) return Err(kInvalidArgument, "volume_capability.access_mode is required");
  Capability c;
  c.access_mode = capability.access_mode().mode();
  if (c.access_mode == pb::VolumeCapability::AccessMode::UNKNOWN) {
    return Err(kInvalidArgument, "volume_capability.access_mode.mode is required");
  }
  if (capability.has_block()) {
    c.mode = VolumeMode::kBlock;
  } else if (capability.has_mount()) {
    c.mode = VolumeMode::kMount;
    c.fs_type = capability.mount().fs_type();
    c.mount_flags.assign(capability.mount().mount_flags().begin(), capability.mount().mount_flags().end());
    if (c.access_mode == pb::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER) {
      return Err(kInvalidArgument, "a mount volume cannot be MULTI_NODE_MULTI_WRITER (ext4/xfs are single-node)");
    }
  } else {
    return Err(kInvalidArgument, "volume_capability needs block or mount");
  }
  return c;
}

grpc::Status NodeService::NodeStageVolume(grpc::ServerContext*, const pb::NodeStageVolumeRequest* request,
                                          pb::NodeStageVolumeResponse*) {
  RpcLog log("NodeStageVolume", request->volume_id(), request->staging_target_path());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->staging_target_path().empty()) return log.Done(MissingField("staging_target_path"));
  auto capability = CapabilityFromProto(request->volume_capability(), request->has_volume_capability());
  if (!capability) return log.Done(ToGrpcStatus(capability.error()));
  StageRequest stage;
  stage.volume_id = request->volume_id();
  stage.staging_path = request->staging_target_path();
  stage.capability = std::move(capability).value();
  stage.context = ToStringMap(request->volume_context());
  stage.secrets = ToStringMap(request->secrets());
  auto r = stager_.Stage(stage);
  return log.Done(ToGrpcStatus(r));
}

grpc::Status NodeService::NodeUnstageVolume(grpc::ServerContext*, const pb::NodeUnstageVolumeRequest* request,
                                            pb::NodeUnstageVolumeResponse*) {
  RpcLog log("NodeUnstageVolume", request->volume_id(), request->staging_target_path());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->staging_target_path().empty()) return log.Done(MissingField("staging_target_path"));
  return log.Done(ToGrpcStatus(stager_.Unstage(request->volume_id(), request->staging_target_path())));
}

grpc::Status NodeService::NodePublishVolume(grpc::ServerContext*, const pb::NodePublishVolumeRequest* request,
                                            pb::NodePublishVolumeResponse*) {
  RpcLog log("NodePublishVolume", request->volume_id(), request->target_path());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->target_path().empty()) return log.Done(MissingField("target_path"));
  auto capability = CapabilityFromProto(request->volume_capability(), request->has_volume_capability());
  if (!capability) return log.Done(ToGrpcStatus(capability.error()));
  if (request->staging_target_path().empty()) {
    // STAGE_UNSTAGE_VOLUME is advertised, so a CO must stage first.
    return log.Done(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "staging_target_path is required (this plugin stages volumes)"));
  }
  PublishRequest publish;
  publish.volume_id = request->volume_id();
  publish.staging_path = request->staging_target_path();
  publish.target_path = request->target_path();
  publish.capability = std::move(capability).value();
  publish.readonly = request->readonly();
  return log.Done(ToGrpcStatus(publisher_.Publish(publish)));
}

grpc::Status NodeService::NodeUnpublishVolume(grpc::ServerContext*, const pb::NodeUnpublishVolumeRequest* request,
                                              pb::NodeUnpublishVolumeResponse*) {
  RpcLog log("NodeUnpublishVolume", request->volume_id(), request->target_path());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->target_path().empty()) return log.Done(MissingField("target_path"));
  return log.Done(ToGrpcStatus(publisher_.Unpublish(request->volume_id(), request->target_path())));
}

grpc::Status NodeService::NodeGetVolumeStats(grpc::ServerContext*, const pb::NodeGetVolumeStatsRequest* request,
                                             pb::NodeGetVolumeStatsResponse* response) {
  if (request->volume_id().empty()) return MissingField("volume_id");
  if (request->volume_path().empty()) return MissingField("volume_path");
  auto stats = stats_.Get(request->volume_id(), request->volume_path());
  if (!stats) {
    spdlog::debug("NodeGetVolumeStats {} {}: {}", request->volume_id(), request->volume_path(), stats.error().message);
    return ToGrpcStatus(stats.error());
  }
  auto* bytes = response->add_usage();
  bytes->set_unit(pb::VolumeUsage::BYTES);
  bytes->set_total(stats->bytes_total);
  bytes->set_available(stats->bytes_available);
  bytes->set_used(stats->bytes_used);
  if (stats->has_inodes) {
    auto* inodes = response->add_usage();
    inodes->set_unit(pb::VolumeUsage::INODES);
    inodes->set_total(stats->inodes_total);
    inodes->set_available(stats->inodes_available);
    inodes->set_used(stats->inodes_used);
  }
  response->mutable_volume_condition()->set_abnormal(stats->condition.abnormal);
  response->mutable_volume_condition()->set_message(stats->condition.message);
  if (stats->condition.abnormal) {
    spdlog::warn("NodeGetVolumeStats {}: abnormal: {}", request->volume_id(), stats->condition.message);
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeExpandVolume(grpc::ServerContext*, const pb::NodeExpandVolumeRequest* request,
                                           pb::NodeExpandVolumeResponse* response) {
  RpcLog log("NodeExpandVolume", request->volume_id(), request->volume_path());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->volume_path().empty()) return log.Done(MissingField("volume_path"));
  const auto& range = request->capacity_range();
  if (range.required_bytes() < 0 || range.limit_bytes() < 0 ||
      (range.limit_bytes() > 0 && range.required_bytes() > range.limit_bytes())) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "capacity_range is inconsistent"));
  }
  auto size = expander_.Expand(request->volume_id(), request->volume_path(),
                               static_cast<uint64_t>(range.required_bytes()));
  if (!size) return log.Done(ToGrpcStatus(size.error()));
  response->set_capacity_bytes(static_cast<int64_t>(*size));
  return log.Done(grpc::Status::OK);
}

grpc::Status NodeService::NodeGetCapabilities(grpc::ServerContext*, const pb::NodeGetCapabilitiesRequest*,
                                              pb::NodeGetCapabilitiesResponse* response) {
  for (auto type : {pb::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME, pb::NodeServiceCapability::RPC::GET_VOLUME_STATS,
                    pb::NodeServiceCapability::RPC::EXPAND_VOLUME, pb::NodeServiceCapability::RPC::VOLUME_CONDITION}) {
    response->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext*, const pb::NodeGetInfoRequest*,
                                      pb::NodeGetInfoResponse* response) {
  response->set_node_id(options_.node_id);
  if (options_.max_volumes_per_node > 0) response->set_max_volumes_per_node(options_.max_volumes_per_node);
  return grpc::Status::OK;
}

}  // namespace rbdnbd::csi
