// The controller's real gRPC server on a temporary Unix socket, driven
// through generated client stubs, with the FakeCephStore behind it.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include "csi.grpc.pb.h"
#include "csi/controller/controller_server.h"
#include "exposition_check.h"
#include "fake_ceph_store.h"
#include "http_get.h"

namespace rbdnbd::csi::testing {
namespace {

namespace fs = std::filesystem;
namespace pb = ::csi::v1;

constexpr int64_t kMiB = 1 << 20;

class ControllerGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path("/tmp") / ("rbd-nbdd-csi-ctl-grpc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "config.json") << R"([{"clusterID": "dev", "monitors": ["127.0.0.1:14200"]}])";
    auto store = std::make_unique<FakeCephStore>();
    store->AddPool("kube");
    store->AddUser("client.kube", kKubeKey);
    store_ = store.get();
    ControllerServerOptions options;
    options.endpoint = "unix://" + (dir_ / "sub" / "controller.sock").string();
    options.controller.cluster_config = (dir_ / "config.json").string();
    options.metrics_address = "127.0.0.1:0";  // any free port: metrics_port()
    auto server = ControllerServer::Start(options, std::move(store));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(server).value();
    auto channel = grpc::CreateChannel(options.endpoint, grpc::InsecureChannelCredentials());
    identity_ = pb::Identity::NewStub(channel);
    controller_ = pb::Controller::NewStub(channel);
    node_ = pb::Node::NewStub(channel);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    fs::remove_all(dir_);
  }

  static void AddSecrets(google::protobuf::Map<std::string, std::string>* secrets, const char* key = kKubeKey) {
    (*secrets)["userID"] = "kube";
    (*secrets)["userKey"] = key;
  }

  static pb::VolumeCapability MountCap(pb::VolumeCapability::AccessMode::Mode mode =
                                           pb::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
    pb::VolumeCapability c;
    c.mutable_mount()->set_fs_type("ext4");
    c.mutable_access_mode()->set_mode(mode);
    return c;
  }

  static pb::VolumeCapability BlockCap() {
    pb::VolumeCapability c;
    c.mutable_block();
    c.mutable_access_mode()->set_mode(pb::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    return c;
  }

  pb::CreateVolumeRequest CreateRequest(const std::string& name, int64_t bytes) {
    pb::CreateVolumeRequest req;
    req.set_name(name);
    req.mutable_capacity_range()->set_required_bytes(bytes);
    *req.add_volume_capabilities() = MountCap();
    (*req.mutable_parameters())["clusterID"] = "dev";
    (*req.mutable_parameters())["pool"] = "kube";
    AddSecrets(req.mutable_secrets());
    return req;
  }

  grpc::Status Create(const pb::CreateVolumeRequest& req, pb::CreateVolumeResponse* resp) {
    grpc::ClientContext ctx;
    return controller_->CreateVolume(&ctx, req, resp);
  }

  fs::path dir_;
  FakeCephStore* store_ = nullptr;
  std::unique_ptr<ControllerServer> server_;
  std::unique_ptr<pb::Identity::Stub> identity_;
  std::unique_ptr<pb::Controller::Stub> controller_;
  std::unique_ptr<pb::Node::Stub> node_;
};

TEST_F(ControllerGrpcTest, IdentityAdvertisesTheControllerAndOnlineExpansion) {
  grpc::ClientContext c1;
  pb::GetPluginInfoResponse info;
  ASSERT_TRUE(identity_->GetPluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.name(), "rbd-nbdd.csi.ceph.io");
  grpc::ClientContext c2;
  pb::GetPluginCapabilitiesResponse caps;
  ASSERT_TRUE(identity_->GetPluginCapabilities(&c2, {}, &caps).ok());
  bool controller = false, online = false;
  for (const auto& c : caps.capabilities()) {
    controller |= c.has_service() && c.service().type() == pb::PluginCapability::Service::CONTROLLER_SERVICE;
    online |= c.has_volume_expansion() && c.volume_expansion().type() == pb::PluginCapability::VolumeExpansion::ONLINE;
  }
  EXPECT_TRUE(controller);
  EXPECT_TRUE(online);
  grpc::ClientContext c3;
  pb::ProbeResponse probe;
  ASSERT_TRUE(identity_->Probe(&c3, {}, &probe).ok());
  EXPECT_TRUE(probe.ready().value());
}

TEST_F(ControllerGrpcTest, ControllerCapabilitiesAreTheReadmeList) {
  grpc::ClientContext ctx;
  pb::ControllerGetCapabilitiesResponse resp;
  ASSERT_TRUE(controller_->ControllerGetCapabilities(&ctx, {}, &resp).ok());
  std::set<int> types;
  for (const auto& c : resp.capabilities()) types.insert(c.rpc().type());
  using Rpc = pb::ControllerServiceCapability::RPC;
  EXPECT_EQ(types, (std::set<int>{Rpc::CREATE_DELETE_VOLUME, Rpc::CREATE_DELETE_SNAPSHOT, Rpc::CLONE_VOLUME,
                                  Rpc::EXPAND_VOLUME, Rpc::LIST_VOLUMES, Rpc::LIST_SNAPSHOTS, Rpc::GET_CAPACITY,
                                  Rpc::SINGLE_NODE_MULTI_WRITER}));
}

TEST_F(ControllerGrpcTest, UnadvertisedRpcsAndTheNodeServiceAreUnimplemented) {
  grpc::ClientContext c1;
  pb::ControllerPublishVolumeResponse r1;
  EXPECT_EQ(controller_->ControllerPublishVolume(&c1, {}, &r1).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext c2;
  pb::ControllerUnpublishVolumeResponse r2;
  EXPECT_EQ(controller_->ControllerUnpublishVolume(&c2, {}, &r2).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext c3;
  pb::ControllerGetVolumeResponse r3;
  EXPECT_EQ(controller_->ControllerGetVolume(&c3, {}, &r3).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext c4;
  pb::ControllerModifyVolumeResponse r4;
  EXPECT_EQ(controller_->ControllerModifyVolume(&c4, {}, &r4).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext c5;
  pb::NodeGetInfoResponse r5;
  EXPECT_EQ(node_->NodeGetInfo(&c5, {}, &r5).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(ControllerGrpcTest, MissingFieldsAreInvalidArgumentFirst) {
  pb::CreateVolumeResponse resp;
  auto req = CreateRequest("", kMiB);
  req.clear_secrets();  // the name is checked before anything else
  auto s = Create(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "name is required");
  req = CreateRequest("pvc-1", kMiB);
  req.clear_volume_capabilities();
  s = Create(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "volume_capabilities is required");
  req = CreateRequest("pvc-1", kMiB);
  *req.mutable_volume_capabilities(0) = MountCap(pb::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_EQ(Create(req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req = CreateRequest("pvc-1", -1);
  EXPECT_EQ(Create(req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req = CreateRequest("pvc-1", kMiB);
  (*req.mutable_parameters())["thinProvisioning"] = "true";
  s = Create(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("'thinProvisioning'"), std::string::npos);

  grpc::ClientContext c1;
  pb::DeleteVolumeResponse d;
  EXPECT_EQ(controller_->DeleteVolume(&c1, {}, &d).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c2;
  pb::CreateSnapshotRequest snap;
  snap.set_name("s");
  pb::CreateSnapshotResponse sr;
  EXPECT_EQ(controller_->CreateSnapshot(&c2, snap, &sr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c3;
  pb::DeleteSnapshotResponse dsr;
  EXPECT_EQ(controller_->DeleteSnapshot(&c3, {}, &dsr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c4;
  pb::ControllerExpandVolumeRequest ex;
  ex.set_volume_id("x");
  pb::ControllerExpandVolumeResponse er;
  EXPECT_EQ(controller_->ControllerExpandVolume(&c4, ex, &er).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c5;
  pb::ValidateVolumeCapabilitiesRequest vr;
  vr.set_volume_id("x");
  pb::ValidateVolumeCapabilitiesResponse vresp;
  EXPECT_EQ(controller_->ValidateVolumeCapabilities(&c5, vr, &vresp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControllerGrpcTest, DeviceTypeReachesTheVolumeContextAndABadOneFailsCreate) {
  pb::CreateVolumeResponse created;
  auto req = CreateRequest("pvc-ublk", kMiB);
  (*req.mutable_parameters())["deviceType"] = "auto";
  ASSERT_TRUE(Create(req, &created).ok());
  EXPECT_EQ(created.volume().volume_context().at("deviceType"), "auto");
  req = CreateRequest("pvc-bad", kMiB);
  (*req.mutable_parameters())["deviceType"] = "ubbd";
  auto s = Create(req, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("'deviceType' must be nbd, ublk or auto, not 'ubbd'"), std::string::npos)
      << s.error_message();
}

TEST_F(ControllerGrpcTest, LifecycleThroughTheSocket) {
  pb::CreateVolumeResponse created;
  auto req = CreateRequest("pvc-1", 100 * kMiB + 1);
  ASSERT_TRUE(Create(req, &created).ok());
  const pb::Volume& v = created.volume();
  EXPECT_EQ(v.capacity_bytes(), 101 * kMiB);
  EXPECT_LE(v.volume_id().size(), 128u);
  EXPECT_EQ(v.volume_context().at("imageName").rfind("csi-vol-", 0), 0u);
  EXPECT_EQ(v.volume_context().at("clusterID"), "dev");
  EXPECT_EQ(v.volume_context().at("pool"), "kube");
  pb::CreateVolumeResponse again;
  ASSERT_TRUE(Create(req, &again).ok());
  EXPECT_EQ(again.volume().volume_id(), v.volume_id());
  req.mutable_capacity_range()->set_required_bytes(300 * kMiB);
  EXPECT_EQ(Create(req, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  {  // Validate: confirmed for supported capabilities, not for unsupported ones.
    grpc::ClientContext ctx;
    pb::ValidateVolumeCapabilitiesRequest vr;
    vr.set_volume_id(v.volume_id());
    *vr.add_volume_capabilities() = MountCap();
    *vr.add_volume_capabilities() = BlockCap();
    pb::ValidateVolumeCapabilitiesResponse resp;
    ASSERT_TRUE(controller_->ValidateVolumeCapabilities(&ctx, vr, &resp).ok());
    EXPECT_TRUE(resp.has_confirmed());
    EXPECT_EQ(resp.confirmed().volume_capabilities_size(), 2);
    grpc::ClientContext ctx2;
    *vr.add_volume_capabilities() = MountCap(pb::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
    ASSERT_TRUE(controller_->ValidateVolumeCapabilities(&ctx2, vr, &resp).ok());
    EXPECT_FALSE(resp.has_confirmed());
    EXPECT_FALSE(resp.message().empty());
    grpc::ClientContext ctx4;
    vr.mutable_volume_capabilities()->RemoveLast();
    (*vr.mutable_parameters())["color"] = "blue";
    ASSERT_TRUE(controller_->ValidateVolumeCapabilities(&ctx4, vr, &resp).ok());
    EXPECT_FALSE(resp.has_confirmed());
    EXPECT_NE(resp.message().find("'color'"), std::string::npos);
    grpc::ClientContext ctx3;
    vr.set_volume_id("rnv1.cdev.kube..0123456789abcdef0123456789abcdef");
    EXPECT_EQ(controller_->ValidateVolumeCapabilities(&ctx3, vr, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  pb::CreateSnapshotResponse snap;
  {
    grpc::ClientContext ctx;
    pb::CreateSnapshotRequest sr;
    sr.set_name("snap-1");
    sr.set_source_volume_id(v.volume_id());
    (*sr.mutable_parameters())["quiesce"] = "required";
    AddSecrets(sr.mutable_secrets());
    ASSERT_TRUE(controller_->CreateSnapshot(&ctx, sr, &snap).ok());
    EXPECT_TRUE(snap.snapshot().ready_to_use());
    EXPECT_EQ(snap.snapshot().size_bytes(), 101 * kMiB);
    EXPECT_EQ(snap.snapshot().source_volume_id(), v.volume_id());
    EXPECT_GT(snap.snapshot().creation_time().seconds(), 0);
  }
  {
    pb::CreateVolumeRequest restore = CreateRequest("pvc-restore", 0);
    restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot().snapshot_id());
    pb::CreateVolumeResponse r;
    ASSERT_TRUE(Create(restore, &r).ok());
    EXPECT_EQ(r.volume().capacity_bytes(), 101 * kMiB);
    EXPECT_EQ(r.volume().content_source().snapshot().snapshot_id(), snap.snapshot().snapshot_id());
    grpc::ClientContext ctx;
    pb::DeleteVolumeRequest d;
    d.set_volume_id(r.volume().volume_id());
    AddSecrets(d.mutable_secrets());
    pb::DeleteVolumeResponse dr;
    EXPECT_TRUE(controller_->DeleteVolume(&ctx, d, &dr).ok());
  }
  {
    grpc::ClientContext ctx;
    pb::ListSnapshotsRequest lr;
    lr.set_source_volume_id(v.volume_id());
    pb::ListSnapshotsResponse resp;
    ASSERT_TRUE(controller_->ListSnapshots(&ctx, lr, &resp).ok());
    ASSERT_EQ(resp.entries_size(), 1);
    EXPECT_EQ(resp.entries(0).snapshot().snapshot_id(), snap.snapshot().snapshot_id());
    grpc::ClientContext ctx2;
    lr.set_starting_token("nonsense");
    EXPECT_EQ(controller_->ListSnapshots(&ctx2, lr, &resp).error_code(), grpc::StatusCode::ABORTED);
  }
  {  // Expand: a filesystem needs the node, a block volume does not; shrink is OUT_OF_RANGE.
    grpc::ClientContext ctx;
    pb::ControllerExpandVolumeRequest ex;
    ex.set_volume_id(v.volume_id());
    ex.mutable_capacity_range()->set_required_bytes(200 * kMiB);
    *ex.mutable_volume_capability() = MountCap();
    AddSecrets(ex.mutable_secrets());
    pb::ControllerExpandVolumeResponse er;
    ASSERT_TRUE(controller_->ControllerExpandVolume(&ctx, ex, &er).ok());
    EXPECT_EQ(er.capacity_bytes(), 200 * kMiB);
    EXPECT_TRUE(er.node_expansion_required());
    grpc::ClientContext ctx2;
    *ex.mutable_volume_capability() = BlockCap();
    ASSERT_TRUE(controller_->ControllerExpandVolume(&ctx2, ex, &er).ok());
    EXPECT_FALSE(er.node_expansion_required());
    grpc::ClientContext ctx3;
    ex.mutable_capacity_range()->set_required_bytes(50 * kMiB);
    EXPECT_EQ(controller_->ControllerExpandVolume(&ctx3, ex, &er).error_code(), grpc::StatusCode::OUT_OF_RANGE);
    grpc::ClientContext ctx4;
    ex.set_volume_id("nope");
    EXPECT_EQ(controller_->ControllerExpandVolume(&ctx4, ex, &er).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {  // ListVolumes and GetCapacity without secrets: the remembered credentials.
    grpc::ClientContext ctx;
    pb::ListVolumesResponse lv;
    ASSERT_TRUE(controller_->ListVolumes(&ctx, {}, &lv).ok());
    ASSERT_EQ(lv.entries_size(), 1);
    EXPECT_EQ(lv.entries(0).volume().volume_id(), v.volume_id());
    grpc::ClientContext ctx2;
    pb::ListVolumesRequest bad;
    bad.set_starting_token("nonsense");
    EXPECT_EQ(controller_->ListVolumes(&ctx2, bad, &lv).error_code(), grpc::StatusCode::ABORTED);
    grpc::ClientContext ctx3;
    pb::GetCapacityRequest gc;
    (*gc.mutable_parameters())["clusterID"] = "dev";
    (*gc.mutable_parameters())["pool"] = "kube";
    pb::GetCapacityResponse gr;
    ASSERT_TRUE(controller_->GetCapacity(&ctx3, gc, &gr).ok());
    EXPECT_EQ(gr.available_capacity(), int64_t{100} << 30);
    EXPECT_EQ(gr.maximum_volume_size().value(), int64_t{1} << 50);
  }
  {  // Delete: mapped -> FAILED_PRECONDITION; then OK, twice; the snapshot too.
    store_->SetWatchers("kube", "", v.volume_context().at("imageName"), 2);
    grpc::ClientContext ctx;
    pb::DeleteVolumeRequest d;
    d.set_volume_id(v.volume_id());
    AddSecrets(d.mutable_secrets());
    pb::DeleteVolumeResponse dr;
    auto s = controller_->DeleteVolume(&ctx, d, &dr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("still mapped"), std::string::npos);
    store_->SetWatchers("kube", "", v.volume_context().at("imageName"), 0);
    grpc::ClientContext ctx2;
    EXPECT_TRUE(controller_->DeleteVolume(&ctx2, d, &dr).ok());
    grpc::ClientContext ctx3;
    EXPECT_TRUE(controller_->DeleteVolume(&ctx3, d, &dr).ok());
    grpc::ClientContext ctx4;
    pb::DeleteSnapshotRequest ds;
    ds.set_snapshot_id(snap.snapshot().snapshot_id());
    AddSecrets(ds.mutable_secrets());
    pb::DeleteSnapshotResponse dsr;
    EXPECT_TRUE(controller_->DeleteSnapshot(&ctx4, ds, &dsr).ok());
  }
  EXPECT_TRUE(store_->Images("kube").empty());
  EXPECT_EQ(store_->TrashCount("kube"), 0);
}

TEST_F(ControllerGrpcTest, CephxRefusalIsPermissionDeniedNamingTheSecretNeverTheKey) {
  auto req = CreateRequest("pvc-1", kMiB);
  AddSecrets(req.mutable_secrets(), "AQCwrongWRONGwrong==");
  pb::CreateVolumeResponse resp;
  auto s = Create(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("check the provisioner secret's userID and userKey"), std::string::npos);
  EXPECT_EQ(s.error_message().find("AQCwrong"), std::string::npos);

  grpc::ClientContext ctx;
  pb::CreateSnapshotRequest sr;
  sr.set_name("s");
  sr.set_source_volume_id("rnv1.cdev.kube..0123456789abcdef0123456789abcdef");
  AddSecrets(sr.mutable_secrets(), "AQCwrongWRONGwrong==");
  pb::CreateSnapshotResponse snap;
  s = controller_->CreateSnapshot(&ctx, sr, &snap);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("snapshotter secret"), std::string::npos);

  grpc::ClientContext ctx2;
  pb::ControllerExpandVolumeRequest ex;
  ex.set_volume_id("rnv1.cdev.kube..0123456789abcdef0123456789abcdef");
  ex.mutable_capacity_range()->set_required_bytes(kMiB);
  AddSecrets(ex.mutable_secrets(), "AQCwrongWRONGwrong==");
  pb::ControllerExpandVolumeResponse er;
  s = controller_->ControllerExpandVolume(&ctx2, ex, &er);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("controller-expand secret"), std::string::npos);
}

TEST_F(ControllerGrpcTest, UnreachableMonitorsAreDeadlineExceeded) {
  auto req = CreateRequest("pvc-1", kMiB);
  req.mutable_parameters()->erase("clusterID");
  (*req.mutable_parameters())["monitors"] = "192.0.2.9:6789";
  pb::CreateVolumeResponse resp;
  EXPECT_EQ(Create(req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Every RPC once, by method and final code, on the controller's /metrics.
TEST_F(ControllerGrpcTest, MetricsCountEveryCallByMethodAndCode) {
  pb::CreateVolumeResponse created;
  ASSERT_TRUE(Create(CreateRequest("pvc-m1", 64 * kMiB), &created).ok());
  ASSERT_TRUE(Create(CreateRequest("pvc-m1", 64 * kMiB), &created).ok());  // idempotent: OK again
  pb::CreateVolumeRequest nameless = CreateRequest("", 64 * kMiB);
  EXPECT_EQ(Create(nameless, &created).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c1;
  pb::DeleteVolumeRequest del;
  del.set_volume_id(created.volume().volume_id());
  AddSecrets(del.mutable_secrets());
  pb::DeleteVolumeResponse deleted;
  ASSERT_TRUE(controller_->DeleteVolume(&c1, del, &deleted).ok());
  grpc::ClientContext c2;
  pb::ControllerPublishVolumeResponse unpublished;
  EXPECT_EQ(controller_->ControllerPublishVolume(&c2, {}, &unpublished).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext c3;
  pb::NodeGetInfoResponse info;  // not a service of this binary: not counted
  EXPECT_EQ(node_->NodeGetInfo(&c3, {}, &info).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  const RpcMetrics& m = server_->rpc_metrics();
  EXPECT_EQ(m.Count("CreateVolume", grpc::StatusCode::OK), 2u);
  EXPECT_EQ(m.Count("CreateVolume", grpc::StatusCode::INVALID_ARGUMENT), 1u);
  EXPECT_EQ(m.Count("DeleteVolume", grpc::StatusCode::OK), 1u);
  EXPECT_EQ(m.Count("ControllerPublishVolume", grpc::StatusCode::UNIMPLEMENTED), 1u);
  EXPECT_EQ(m.Count("NodeGetInfo", grpc::StatusCode::UNIMPLEMENTED), 0u);

  ASSERT_GT(server_->metrics_port(), 0);
  auto scrape = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(scrape.status, 200);
  Exposition e = ParseExposition(scrape.body);
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "CreateVolume"}, {"code", "OK"}}), 2.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "CreateVolume"}, {"code", "INVALID_ARGUMENT"}}), 1.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "DeleteVolume"}, {"code", "OK"}}), 1.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpc_duration_seconds_count", {{"method", "CreateVolume"}}), 3.0);
  EXPECT_EQ(scrape.body.find("NodeGetInfo"), std::string::npos);
  for (const auto& [name, family] : ContractSection(MetricsContractPath(), "CSI plugins")) {
    EXPECT_EQ(e.types[name], family.type) << name;
  }
  EXPECT_EQ(HttpGet(server_->metrics_port(), "/healthz").body, "ok\n");
}

TEST_F(ControllerGrpcTest, StartRejectsABadDriverNameAndAFileAtTheSocketPath) {
  ControllerServerOptions options;
  options.endpoint = "unix://" + (dir_ / "other.sock").string();
  options.driver_name = "-bad-";
  EXPECT_FALSE(ControllerServer::Start(options, std::make_unique<FakeCephStore>()));
  options.driver_name = "rbd-nbdd.csi.ceph.io";
  std::ofstream(dir_ / "other.sock") << "not a socket";
  auto r = ControllerServer::Start(options, std::make_unique<FakeCephStore>());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EEXIST);
  options.endpoint = "relative/path.sock";
  EXPECT_FALSE(ControllerServer::Start(options, std::make_unique<FakeCephStore>()));
}

}  // namespace
}  // namespace rbdnbd::csi::testing
