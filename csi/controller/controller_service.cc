#include "csi/controller/controller_service.h"

#include "csi/controller/controller_error.h"
#include "csi/node_service.h"
#include "csi/rpc_log.h"

namespace rbdnbd::csi {

namespace pb = ::csi::v1;

namespace {

template <typename M>
void FromMap(const StringMap& in, M* out) {
  for (const auto& [k, v] : in) (*out)[k] = v;
}

grpc::Status Unimplemented(const char* rpc) {
  RpcLog log(rpc, "-");
  return log.Done(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               std::string(rpc) + " is not supported by this driver (attachRequired: false)"));
}

void SetCreationTime(const SnapshotInfo& info, pb::Snapshot* snap) {
  snap->set_snapshot_id(info.snapshot_id);
  snap->set_source_volume_id(info.source_volume_id);
  snap->set_size_bytes(static_cast<int64_t>(info.size_bytes));
  snap->mutable_creation_time()->set_seconds(info.created_s);
  snap->mutable_creation_time()->set_nanos(info.created_nanos);
  snap->set_ready_to_use(true);
}

}  // namespace

grpc::Status ControllerService::CreateVolume(grpc::ServerContext*, const pb::CreateVolumeRequest* request,
                                             pb::CreateVolumeResponse* response) {
  RpcLog log("CreateVolume", request->name());
  if (request->name().empty()) return log.Done(MissingField("name"));
  if (request->volume_capabilities().empty()) return log.Done(MissingField("volume_capabilities"));
  for (const auto& capability : request->volume_capabilities()) {
    auto c = CapabilityFromProto(capability, true);
    if (!c) return log.Done(ToGrpcStatus(c.error()));
  }
  CreateVolumeArgs args;
  args.name = request->name();
  args.required_bytes = request->capacity_range().required_bytes();
  args.limit_bytes = request->capacity_range().limit_bytes();
  if (args.required_bytes < 0) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "capacity_range.required_bytes must not be negative"));
  }
  if (args.limit_bytes < 0) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "capacity_range.limit_bytes must not be negative"));
  }
  if (request->has_volume_content_source()) {
    const auto& source = request->volume_content_source();
    if (source.has_snapshot()) {
      if (source.snapshot().snapshot_id().empty()) {
        return log.Done(MissingField("volume_content_source.snapshot.snapshot_id"));
      }
      args.source_snapshot_id = source.snapshot().snapshot_id();
    } else if (source.has_volume()) {
      if (source.volume().volume_id().empty()) return log.Done(MissingField("volume_content_source.volume.volume_id"));
      args.source_volume_id = source.volume().volume_id();
    } else {
      return log.Done(MissingField("volume_content_source.snapshot or .volume"));
    }
  }
  args.parameters = ToStringMap(request->parameters());
  args.secrets = ToStringMap(request->secrets());
  auto volume = ops_->CreateVolume(args);
  if (!volume) return log.Done(ToControllerStatus(volume.error(), "provisioner"));
  pb::Volume* v = response->mutable_volume();
  v->set_volume_id(volume->volume_id);
  v->set_capacity_bytes(static_cast<int64_t>(volume->capacity_bytes));
  FromMap(volume->context, v->mutable_volume_context());
  if (request->has_volume_content_source()) *v->mutable_content_source() = request->volume_content_source();
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::DeleteVolume(grpc::ServerContext*, const pb::DeleteVolumeRequest* request,
                                             pb::DeleteVolumeResponse*) {
  RpcLog log("DeleteVolume", request->volume_id());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  auto r = ops_->DeleteVolume(request->volume_id(), ToStringMap(request->secrets()));
  if (!r) return log.Done(ToControllerStatus(r.error(), "provisioner"));
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::ControllerPublishVolume(grpc::ServerContext*,
                                                        const pb::ControllerPublishVolumeRequest*,
                                                        pb::ControllerPublishVolumeResponse*) {
  return Unimplemented("ControllerPublishVolume");
}

grpc::Status ControllerService::ControllerUnpublishVolume(grpc::ServerContext*,
                                                          const pb::ControllerUnpublishVolumeRequest*,
                                                          pb::ControllerUnpublishVolumeResponse*) {
  return Unimplemented("ControllerUnpublishVolume");
}

grpc::Status ControllerService::ControllerGetVolume(grpc::ServerContext*, const pb::ControllerGetVolumeRequest*,
                                                    pb::ControllerGetVolumeResponse*) {
  return Unimplemented("ControllerGetVolume");
}

grpc::Status ControllerService::ControllerModifyVolume(grpc::ServerContext*, const pb::ControllerModifyVolumeRequest*,
                                                       pb::ControllerModifyVolumeResponse*) {
  return Unimplemented("ControllerModifyVolume");
}

grpc::Status ControllerService::ValidateVolumeCapabilities(grpc::ServerContext*,
                                                           const pb::ValidateVolumeCapabilitiesRequest* request,
                                                           pb::ValidateVolumeCapabilitiesResponse* response) {
  RpcLog log("ValidateVolumeCapabilities", request->volume_id());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (request->volume_capabilities().empty()) return log.Done(MissingField("volume_capabilities"));
  auto exists = ops_->CheckVolumeExists(request->volume_id(), ToStringMap(request->secrets()));
  if (!exists) return log.Done(ToControllerStatus(exists.error(), "provisioner"));
  // Not confirmed (no error): the message says why, as CSI asks.
  for (const auto& capability : request->volume_capabilities()) {
    auto c = CapabilityFromProto(capability, true);
    if (!c) {
      response->set_message(c.error().message);
      return log.Done(grpc::Status::OK);
    }
  }
  if (!request->parameters().empty()) {
    if (auto r = ops_->CheckCreateParameters(ToStringMap(request->parameters())); !r) {
      response->set_message(r.error().message);
      return log.Done(grpc::Status::OK);
    }
  }
  auto* confirmed = response->mutable_confirmed();
  *confirmed->mutable_volume_context() = request->volume_context();
  *confirmed->mutable_volume_capabilities() = request->volume_capabilities();
  *confirmed->mutable_parameters() = request->parameters();
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::ListVolumes(grpc::ServerContext*, const pb::ListVolumesRequest* request,
                                            pb::ListVolumesResponse* response) {
  RpcLog log("ListVolumes", request->starting_token().empty() ? "-" : request->starting_token());
  auto page = ops_->ListVolumes(request->max_entries(), request->starting_token());
  if (!page) return log.Done(ToControllerStatus(page.error(), "provisioner"));
  for (const auto& v : page->entries) {
    pb::Volume* volume = response->add_entries()->mutable_volume();
    volume->set_volume_id(v.volume_id);
    volume->set_capacity_bytes(static_cast<int64_t>(v.capacity_bytes));
    FromMap(v.context, volume->mutable_volume_context());
  }
  response->set_next_token(page->next_token);
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::GetCapacity(grpc::ServerContext*, const pb::GetCapacityRequest* request,
                                            pb::GetCapacityResponse* response) {
  auto params = ToStringMap(request->parameters());
  RpcLog log("GetCapacity", params.count("pool") != 0 ? params["pool"] : "-");
  for (const auto& capability : request->volume_capabilities()) {
    // CSI: capacity for capabilities this plugin cannot serve is 0.
    if (!CapabilityFromProto(capability, true)) {
      response->set_available_capacity(0);
      return log.Done(grpc::Status::OK);
    }
  }
  auto bytes = ops_->GetCapacity(params);
  if (!bytes) return log.Done(ToControllerStatus(bytes.error(), "provisioner"));
  response->set_available_capacity(static_cast<int64_t>(*bytes));
  response->mutable_maximum_volume_size()->set_value(static_cast<int64_t>(kMaxVolumeBytes));
  response->mutable_minimum_volume_size()->set_value(static_cast<int64_t>(kMiB));
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::ControllerGetCapabilities(grpc::ServerContext*,
                                                          const pb::ControllerGetCapabilitiesRequest*,
                                                          pb::ControllerGetCapabilitiesResponse* response) {
  RpcLog log("ControllerGetCapabilities", "-");
  using Rpc = pb::ControllerServiceCapability::RPC;
  for (auto type : {Rpc::CREATE_DELETE_VOLUME, Rpc::CREATE_DELETE_SNAPSHOT, Rpc::CLONE_VOLUME, Rpc::EXPAND_VOLUME,
                    Rpc::LIST_VOLUMES, Rpc::LIST_SNAPSHOTS, Rpc::GET_CAPACITY, Rpc::SINGLE_NODE_MULTI_WRITER}) {
    response->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::CreateSnapshot(grpc::ServerContext*, const pb::CreateSnapshotRequest* request,
                                               pb::CreateSnapshotResponse* response) {
  RpcLog log("CreateSnapshot", request->name());
  if (request->name().empty()) return log.Done(MissingField("name"));
  if (request->source_volume_id().empty()) return log.Done(MissingField("source_volume_id"));
  auto snap = ops_->CreateSnapshot(request->source_volume_id(), request->name(), ToStringMap(request->parameters()),
                                   ToStringMap(request->secrets()));
  if (!snap) return log.Done(ToControllerStatus(snap.error(), "snapshotter"));
  SetCreationTime(*snap, response->mutable_snapshot());
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::DeleteSnapshot(grpc::ServerContext*, const pb::DeleteSnapshotRequest* request,
                                               pb::DeleteSnapshotResponse*) {
  RpcLog log("DeleteSnapshot", request->snapshot_id());
  if (request->snapshot_id().empty()) return log.Done(MissingField("snapshot_id"));
  auto r = ops_->DeleteSnapshot(request->snapshot_id(), ToStringMap(request->secrets()));
  if (!r) return log.Done(ToControllerStatus(r.error(), "snapshotter"));
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::ListSnapshots(grpc::ServerContext*, const pb::ListSnapshotsRequest* request,
                                              pb::ListSnapshotsResponse* response) {
  RpcLog log("ListSnapshots", !request->snapshot_id().empty()        ? request->snapshot_id()
                              : !request->source_volume_id().empty() ? request->source_volume_id()
                                                                     : "-");
  auto page = ops_->ListSnapshots(request->snapshot_id(), request->source_volume_id(), request->max_entries(),
                                  request->starting_token(), ToStringMap(request->secrets()));
  if (!page) return log.Done(ToControllerStatus(page.error(), "snapshotter"));
  for (const auto& s : page->entries) SetCreationTime(s, response->add_entries()->mutable_snapshot());
  response->set_next_token(page->next_token);
  return log.Done(grpc::Status::OK);
}

grpc::Status ControllerService::ControllerExpandVolume(grpc::ServerContext*,
                                                       const pb::ControllerExpandVolumeRequest* request,
                                                       pb::ControllerExpandVolumeResponse* response) {
  RpcLog log("ControllerExpandVolume", request->volume_id());
  if (request->volume_id().empty()) return log.Done(MissingField("volume_id"));
  if (!request->has_capacity_range()) return log.Done(MissingField("capacity_range"));
  if (request->has_volume_capability()) {
    auto c = CapabilityFromProto(request->volume_capability(), true);
    if (!c) return log.Done(ToGrpcStatus(c.error()));
  }
  auto size = ops_->ExpandVolume(request->volume_id(), request->capacity_range().required_bytes(),
                                 request->capacity_range().limit_bytes(), ToStringMap(request->secrets()));
  if (!size) return log.Done(ToControllerStatus(size.error(), "controller-expand"));
  response->set_capacity_bytes(static_cast<int64_t>(*size));
  // A block volume is the image itself: nothing for the node to grow.
  response->set_node_expansion_required(!(request->has_volume_capability() && request->volume_capability().has_block()));
  return log.Done(grpc::Status::OK);
}

}  // namespace rbdnbd::csi
