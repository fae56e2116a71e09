// The real gRPC server on a temporary Unix socket, driven through generated
// client stubs, with the real DaemonClient talking to a fake control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include "csi.grpc.pb.h"
#include "csi/plugin_server.h"
#include "exposition_check.h"
#include "fake_daemon.h"
#include "fakes.h"
#include "http_get.h"

namespace rbdnbd::csi {
namespace {

namespace fs = std::filesystem;
namespace pb = ::csi::v1;

constexpr const char* kGrpcKey = "AQCgrpcTESTKEYgrpcTESTKEYgrpcTESTKEY0==";

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path("/tmp") / ("rbd-nbdd-csi-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    daemon_ = std::make_unique<testing::FakeDaemon>((dir_ / "control.sock").string());
    std::ofstream(dir_ / "config.json") << R"([{"clusterID": "dev", "monitors": ["127.0.0.1:14200"]}])";
    options_.endpoint = "unix://" + (dir_ / "csi.sock").string();
    options_.node_id = "node-a";
    options_.driver_name = "rbd-nbdd.csi.ceph.io";
    options_.control_socket = daemon_->socket_path();
    options_.state_dir = (dir_ / "state").string();
    options_.cluster_config = (dir_ / "config.json").string();
    options_.max_volumes_per_node = 16;
    options_.nbd_module_path = (dir_ / "sys-module-nbd").string();
  }

  void StartServer() {
    PluginDeps deps;
    auto mounter = std::make_unique<testing::FakeMounter>();
    auto devices = std::make_unique<testing::FakeBlockDevices>();
    devices->sizes["/dev/nbd0"] = 1 << 30;
    mounter_ = mounter.get();
    deps.mounter = std::move(mounter);
    deps.fs = std::make_unique<testing::FakeFsTools>();
    deps.devices = std::move(devices);
    // The node's ublk as a test sets it; by default none (this host's
    // /dev/ublk-control must not decide a test).
    deps.ublk = ublk_ ? std::move(ublk_) : std::make_unique<testing::FakeUblkProbe>();
    auto server = PluginServer::Start(options_, std::move(deps));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(server).value();
    auto channel = grpc::CreateChannel(options_.endpoint, grpc::InsecureChannelCredentials());
    identity_ = pb::Identity::NewStub(channel);
    node_ = pb::Node::NewStub(channel);
    controller_ = pb::Controller::NewStub(channel);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    daemon_.reset();
    fs::remove_all(dir_);
  }

  static pb::VolumeCapability MountCapability(pb::VolumeCapability::AccessMode::Mode mode =
                                                  pb::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
    pb::VolumeCapability c;
    c.mutable_mount()->set_fs_type("ext4");
    c.mutable_access_mode()->set_mode(mode);
    return c;
  }

  static pb::VolumeCapability BlockCapability() {
    pb::VolumeCapability c;
    c.mutable_block();
    c.mutable_access_mode()->set_mode(pb::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    return c;
  }

  pb::NodeStageVolumeRequest StageRequest(const pb::VolumeCapability& cap) {
    pb::NodeStageVolumeRequest r;
    r.set_volume_id("vol-1");
    r.set_staging_target_path((dir_ / "staging").string());
    *r.mutable_volume_capability() = cap;
    (*r.mutable_volume_context())["clusterID"] = "dev";
    (*r.mutable_volume_context())["pool"] = "kube";
    (*r.mutable_volume_context())["imageName"] = "img-1";
    (*r.mutable_secrets())["userID"] = "kube";
    (*r.mutable_secrets())["userKey"] = kGrpcKey;
    return r;
  }

  grpc::Status Stage(const pb::NodeStageVolumeRequest& r) {
    grpc::ClientContext ctx;
    pb::NodeStageVolumeResponse resp;
    return node_->NodeStageVolume(&ctx, r, &resp);
  }
  grpc::Status Unstage(const std::string& id, const std::string& path) {
    grpc::ClientContext ctx;
    pb::NodeUnstageVolumeRequest r;
    r.set_volume_id(id);
    r.set_staging_target_path(path);
    pb::NodeUnstageVolumeResponse resp;
    return node_->NodeUnstageVolume(&ctx, r, &resp);
  }
  grpc::Status Publish(const pb::NodePublishVolumeRequest& r) {
    grpc::ClientContext ctx;
    pb::NodePublishVolumeResponse resp;
    return node_->NodePublishVolume(&ctx, r, &resp);
  }
  grpc::Status Unpublish(const std::string& id, const std::string& path) {
    grpc::ClientContext ctx;
    pb::NodeUnpublishVolumeRequest r;
    r.set_volume_id(id);
    r.set_target_path(path);
    pb::NodeUnpublishVolumeResponse resp;
    return node_->NodeUnpublishVolume(&ctx, r, &resp);
  }
  grpc::Status Stats(const std::string& id, const std::string& path, pb::NodeGetVolumeStatsResponse* resp) {
    grpc::ClientContext ctx;
    pb::NodeGetVolumeStatsRequest r;
    r.set_volume_id(id);
    r.set_volume_path(path);
    return node_->NodeGetVolumeStats(&ctx, r, resp);
  }
  grpc::Status Expand(const std::string& id, const std::string& path, pb::NodeExpandVolumeResponse* resp) {
    grpc::ClientContext ctx;
    pb::NodeExpandVolumeRequest r;
    r.set_volume_id(id);
    r.set_volume_path(path);
    return node_->NodeExpandVolume(&ctx, r, resp);
  }
  grpc::Status Probe(pb::ProbeResponse* resp) {
    grpc::ClientContext ctx;
    return identity_->Probe(&ctx, pb::ProbeRequest(), resp);
  }

  std::string StateText() {
    std::string all;
    for (const auto& e : fs::directory_iterator(options_.state_dir)) {
      std::ifstream in(e.path());
      std::stringstream ss;
      ss << in.rdbuf();
      all += ss.str();
    }
    return all;
  }

  fs::path dir_;
  PluginOptions options_;
  std::unique_ptr<testing::FakeDaemon> daemon_;
  testing::FakeMounter* mounter_ = nullptr;
  std::unique_ptr<UblkProbe> ublk_;  // handed to the server by StartServer()
  std::unique_ptr<PluginServer> server_;
  std::unique_ptr<pb::Identity::Stub> identity_;
  std::unique_ptr<pb::Node::Stub> node_;
  std::unique_ptr<pb::Controller::Stub> controller_;
};

void ExpectCode(const grpc::Status& s, grpc::StatusCode code, const std::string& mention = "") {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  if (!mention.empty()) {
    EXPECT_NE(s.error_message().find(mention), std::string::npos) << s.error_message();
  }
}

TEST_F(GrpcServerTest, PluginInfoAndCapabilities) {
  StartServer();
  grpc::ClientContext ctx;
  pb::GetPluginInfoResponse info;
  ASSERT_TRUE(identity_->GetPluginInfo(&ctx, pb::GetPluginInfoRequest(), &info).ok());
  EXPECT_EQ(info.name(), "rbd-nbdd.csi.ceph.io");
  EXPECT_FALSE(info.vendor_version().empty());
  EXPECT_NE(info.vendor_version(), "unknown");

  grpc::ClientContext ctx2;
  pb::GetPluginCapabilitiesResponse caps;
  ASSERT_TRUE(identity_->GetPluginCapabilities(&ctx2, pb::GetPluginCapabilitiesRequest(), &caps).ok());
  for (const auto& c : caps.capabilities()) {
    EXPECT_NE(c.service().type(), pb::PluginCapability::Service::CONTROLLER_SERVICE);
  }
}

TEST_F(GrpcServerTest, ProbeFollowsTheDaemon) {
  StartServer();
  pb::ProbeResponse resp;
  ASSERT_TRUE(Probe(&resp).ok());
  EXPECT_TRUE(resp.has_ready());
  EXPECT_TRUE(resp.ready().value());

  daemon_->nbd_driver = 0;
  ExpectCode(Probe(&resp), grpc::StatusCode::FAILED_PRECONDITION, "nbd");

  daemon_->nbd_driver = -1;  // an older daemon: the plugin looks at /sys/module/nbd itself
  ExpectCode(Probe(&resp), grpc::StatusCode::FAILED_PRECONDITION, "nbd");
  fs::create_directories(options_.nbd_module_path);
  EXPECT_TRUE(Probe(&resp).ok());

  daemon_.reset();  // the daemon is gone
  ExpectCode(Probe(&resp), grpc::StatusCode::FAILED_PRECONDITION, "unreachable");
}

TEST_F(GrpcServerTest, NodeCapabilitiesAndInfo) {
  StartServer();
  grpc::ClientContext ctx;
  pb::NodeGetCapabilitiesResponse caps;
  ASSERT_TRUE(node_->NodeGetCapabilities(&ctx, pb::NodeGetCapabilitiesRequest(), &caps).ok());
  std::vector<int> types;
  for (const auto& c : caps.capabilities()) types.push_back(c.rpc().type());
  EXPECT_EQ(types, (std::vector<int>{pb::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME,
                                     pb::NodeServiceCapability::RPC::GET_VOLUME_STATS,
                                     pb::NodeServiceCapability::RPC::EXPAND_VOLUME,
                                     pb::NodeServiceCapability::RPC::VOLUME_CONDITION}));
  grpc::ClientContext ctx2;
  pb::NodeGetInfoResponse info;
  ASSERT_TRUE(node_->NodeGetInfo(&ctx2, pb::NodeGetInfoRequest(), &info).ok());
  EXPECT_EQ(info.node_id(), "node-a");
  EXPECT_EQ(info.max_volumes_per_node(), 16);
}

TEST_F(GrpcServerTest, MissingFieldsAreInvalidArgumentAndNamed) {
  StartServer();
  pb::NodeStageVolumeRequest stage = StageRequest(MountCapability());
  stage.clear_volume_id();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  stage = StageRequest(MountCapability());
  stage.clear_staging_target_path();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "staging_target_path");
  stage = StageRequest(MountCapability());
  stage.clear_volume_capability();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "volume_capability");
  stage = StageRequest(MountCapability());
  stage.mutable_volume_capability()->clear_access_mode();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "access_mode");
  stage = StageRequest(MountCapability());
  stage.mutable_volume_capability()->clear_mount();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "block or mount");
  stage = StageRequest(MountCapability(pb::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER));
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "MULTI_NODE_MULTI_WRITER");
  stage = StageRequest(MountCapability());
  stage.mutable_secrets()->erase("userKey");
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "userKey");
  stage = StageRequest(MountCapability());
  stage.mutable_secrets()->clear();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "userID");
  stage = StageRequest(MountCapability());
  stage.mutable_volume_context()->erase("pool");
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "pool");
  stage = StageRequest(MountCapability());
  (*stage.mutable_volume_context())["connections"] = "abc";
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "connections");
  stage = StageRequest(MountCapability());
  (*stage.mutable_volume_context())["clusterID"] = "nope";
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "clusterID");
  stage = StageRequest(MountCapability());
  stage.mutable_volume_capability()->mutable_mount()->set_fs_type("ntfs");
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "fs_type");

  ExpectCode(Unstage("", "/x"), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  ExpectCode(Unstage("v", ""), grpc::StatusCode::INVALID_ARGUMENT, "staging_target_path");

  pb::NodePublishVolumeRequest pub;
  pub.set_target_path("/x");
  *pub.mutable_volume_capability() = MountCapability();
  ExpectCode(Publish(pub), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  pub.set_volume_id("v");
  pub.clear_target_path();
  ExpectCode(Publish(pub), grpc::StatusCode::INVALID_ARGUMENT, "target_path");
  pub.set_target_path("/x");
  pub.clear_volume_capability();
  ExpectCode(Publish(pub), grpc::StatusCode::INVALID_ARGUMENT, "volume_capability");

  ExpectCode(Unpublish("", "/x"), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  ExpectCode(Unpublish("v", ""), grpc::StatusCode::INVALID_ARGUMENT, "target_path");

  pb::NodeGetVolumeStatsResponse stats;
  ExpectCode(Stats("", "/x", &stats), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  ExpectCode(Stats("v", "", &stats), grpc::StatusCode::INVALID_ARGUMENT, "volume_path");
  pb::NodeExpandVolumeResponse expand;
  ExpectCode(Expand("", "/x", &expand), grpc::StatusCode::INVALID_ARGUMENT, "volume_id");
  ExpectCode(Expand("v", "", &expand), grpc::StatusCode::INVALID_ARGUMENT, "volume_path");
  EXPECT_TRUE(daemon_->requests().empty()) << "validation must come before any daemon call";
}

TEST_F(GrpcServerTest, UnknownVolumesAndUnstagedPublish) {
  StartServer();
  pb::NodePublishVolumeRequest pub;
  pub.set_volume_id("never-staged");
  pub.set_target_path((dir_ / "target").string());
  *pub.mutable_volume_capability() = MountCapability();
  ExpectCode(Publish(pub), grpc::StatusCode::FAILED_PRECONDITION, "staging_target_path");
  pub.set_staging_target_path((dir_ / "staging").string());
  ExpectCode(Publish(pub), grpc::StatusCode::FAILED_PRECONDITION, "not staged");

  pb::NodeGetVolumeStatsResponse stats;
  ExpectCode(Stats("never-staged", dir_.string(), &stats), grpc::StatusCode::NOT_FOUND);
  ExpectCode(Stats("never-staged", "some/relative/path", &stats), grpc::StatusCode::NOT_FOUND);
  pb::NodeExpandVolumeResponse expand;
  ExpectCode(Expand("never-staged", dir_.string(), &expand), grpc::StatusCode::NOT_FOUND);

  EXPECT_TRUE(Unstage("never-staged", (dir_ / "staging").string()).ok());
  EXPECT_TRUE(Unpublish("never-staged", (dir_ / "target").string()).ok());
}

TEST_F(GrpcServerTest, ControllerServiceIsUnimplemented) {
  StartServer();
  grpc::ClientContext ctx;
  pb::CreateVolumeResponse resp;
  pb::CreateVolumeRequest req;
  req.set_name("x");
  ExpectCode(controller_->CreateVolume(&ctx, req, &resp), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext ctx2;
  pb::ControllerGetCapabilitiesResponse caps;
  ExpectCode(controller_->ControllerGetCapabilities(&ctx2, pb::ControllerGetCapabilitiesRequest(), &caps),
             grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcServerTest, BlockVolumeLifecycleThroughTheDaemon) {
  StartServer();
  pb::NodeStageVolumeRequest stage = StageRequest(BlockCapability());
  (*stage.mutable_volume_context())["connections"] = "4";
  (*stage.mutable_volume_context())["connectTimeout"] = "7";
  ASSERT_TRUE(Stage(stage).ok());
  ASSERT_TRUE(Stage(stage).ok());  // idempotent

  int maps = 0;
  for (const auto& r : daemon_->requests()) {
    if (r["op"] != "map") continue;
    ++maps;
    EXPECT_EQ(r["spec"], "kube/img-1");
    EXPECT_EQ(r["client_name"], "client.kube");
    EXPECT_EQ(r["mon_host"], "127.0.0.1:14200");
    EXPECT_EQ(r["connect_timeout"], 7);
    EXPECT_EQ(r["key"], kGrpcKey);  // handed over in memory
    EXPECT_EQ(r["connections"], 4);
    EXPECT_EQ(r["read_only"], false);
  }
  EXPECT_EQ(maps, 1);
  EXPECT_EQ(StateText().find(kGrpcKey), std::string::npos);
  EXPECT_NE(StateText().find("/dev/nbd0"), std::string::npos);

  pb::NodePublishVolumeRequest pub;
  pub.set_volume_id("vol-1");
  pub.set_staging_target_path(stage.staging_target_path());
  pub.set_target_path((dir_ / "pod" / "dev" / "pv").string());
  *pub.mutable_volume_capability() = BlockCapability();
  ASSERT_TRUE(Publish(pub).ok());
  EXPECT_TRUE(fs::is_regular_file(pub.target_path()));
  ASSERT_TRUE(Publish(pub).ok());
  pub.set_readonly(true);
  ExpectCode(Publish(pub), grpc::StatusCode::ALREADY_EXISTS);

  pb::NodeGetVolumeStatsResponse stats;
  ASSERT_TRUE(Stats("vol-1", pub.target_path(), &stats).ok());
  ASSERT_EQ(stats.usage_size(), 1);
  EXPECT_EQ(stats.usage(0).unit(), pb::VolumeUsage::BYTES);
  EXPECT_EQ(stats.usage(0).total(), 1 << 30);

  pb::NodeExpandVolumeResponse expand;
  ASSERT_TRUE(Expand("vol-1", pub.target_path(), &expand).ok());
  EXPECT_EQ(expand.capacity_bytes(), 1 << 30);

  ASSERT_TRUE(Unpublish("vol-1", pub.target_path()).ok());
  EXPECT_FALSE(fs::exists(pub.target_path()));
  ASSERT_TRUE(Unstage("vol-1", stage.staging_target_path()).ok());
  EXPECT_EQ(daemon_->requests().back()["op"], "unmap");
  EXPECT_EQ(daemon_->requests().back()["target"], "/dev/nbd0");
  EXPECT_TRUE(StateText().empty());
  ASSERT_TRUE(Unstage("vol-1", stage.staging_target_path()).ok());
}

TEST_F(GrpcServerTest, ProbeIsReadyWithTheUblkDriverAlone) {
  auto probe = std::make_unique<testing::FakeUblkProbe>();
  testing::FakeUblkProbe* kernel = probe.get();
  ublk_ = std::move(probe);
  StartServer();
  daemon_->nbd_driver = 0;
  pb::ProbeResponse resp;
  ExpectCode(Probe(&resp), grpc::StatusCode::FAILED_PRECONDITION, "neither the nbd nor the ublk kernel driver");
  {
    std::lock_guard lock(kernel->mu);
    kernel->support = testing::FakeUblkProbe::Features(0);
  }
  ASSERT_TRUE(Probe(&resp).ok());
  EXPECT_TRUE(resp.ready().value());
}

TEST_F(GrpcServerTest, DeviceTypeIsCheckedAndSentToTheDaemon) {
  StartServer();
  pb::NodeStageVolumeRequest stage = StageRequest(BlockCapability());
  (*stage.mutable_volume_context())["deviceType"] = "krbd";
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT, "'deviceType' must be nbd, ublk or auto, not 'krbd'");
  (*stage.mutable_volume_context())["deviceType"] = "nbd";
  ASSERT_TRUE(Stage(stage).ok());
  int maps = 0;
  for (const auto& r : daemon_->requests()) {
    if (r["op"] != "map") continue;
    ++maps;
    EXPECT_EQ(r["device_type"], "nbd");
  }
  EXPECT_EQ(maps, 1);
  EXPECT_NE(StateText().find(R"("device_type": "nbd")"), std::string::npos) << StateText();
}

TEST_F(GrpcServerTest, UblkStagesAUblkDeviceWhereTheKernelHasIt) {
  auto probe = std::make_unique<testing::FakeUblkProbe>();
  probe->support = testing::FakeUblkProbe::NoDriver();
  testing::FakeUblkProbe* kernel = probe.get();
  ublk_ = std::move(probe);
  StartServer();
  pb::NodeStageVolumeRequest stage = StageRequest(BlockCapability());
  (*stage.mutable_volume_context())["deviceType"] = "ublk";
  ExpectCode(Stage(stage), grpc::StatusCode::FAILED_PRECONDITION, "modprobe ublk_drv, or use deviceType nbd|auto");
  EXPECT_TRUE(StateText().empty());
  {
    std::lock_guard lock(kernel->mu);
    kernel->support = testing::FakeUblkProbe::Features(kUblkFeatureUpdateSize);
  }
  ASSERT_TRUE(Stage(stage).ok());
  EXPECT_EQ(daemon_->requests().back()["op"], "map");
  EXPECT_EQ(daemon_->requests().back()["device_type"], "ublk");
  EXPECT_NE(StateText().find("/dev/ublkb0"), std::string::npos) << StateText();
  ASSERT_TRUE(Unstage("vol-1", stage.staging_target_path()).ok());
  EXPECT_EQ(daemon_->requests().back()["op"], "unmap");
  EXPECT_EQ(daemon_->requests().back()["target"], "/dev/ublkb0");
}

TEST_F(GrpcServerTest, DaemonMapErrorsBecomeCsiCodes) {
  StartServer();
  daemon_->fail_map = ENOENT;
  ExpectCode(Stage(StageRequest(BlockCapability())), grpc::StatusCode::NOT_FOUND, "fake map failure");
  daemon_->fail_map = EACCES;
  ExpectCode(Stage(StageRequest(BlockCapability())), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(StateText().empty());  // rolled back
}

TEST_F(GrpcServerTest, StartRejectsBadOptionsAndReplacesAStaleSocket) {
  PluginOptions bad = options_;
  bad.endpoint = "tcp://127.0.0.1:1";
  EXPECT_FALSE(PluginServer::Start(bad));
  bad = options_;
  bad.driver_name = "-bad-";
  EXPECT_FALSE(PluginServer::Start(bad));

  StartServer();
  server_->Shutdown(std::chrono::milliseconds(100));
  server_.reset();
  // A socket file left behind (e.g. after SIGKILL) must not block the next start.
  auto socket_path = EndpointSocketPath(options_.endpoint);
  ASSERT_TRUE(socket_path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path->c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  ASSERT_TRUE(fs::is_socket(*socket_path));
  StartServer();
  pb::ProbeResponse resp;
  EXPECT_TRUE(Probe(&resp).ok());

  // A regular file at the endpoint is not ours to delete.
  PluginOptions file_endpoint = options_;
  file_endpoint.endpoint = (dir_ / "not-a-socket").string();
  std::ofstream(file_endpoint.endpoint) << "x";
  auto refused = PluginServer::Start(file_endpoint);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EEXIST);
}

TEST(EndpointTest, Forms) {
  EXPECT_EQ(*EndpointSocketPath("unix:///csi/csi.sock"), "/csi/csi.sock");
  EXPECT_EQ(*EndpointSocketPath("/csi/csi.sock"), "/csi/csi.sock");
  EXPECT_FALSE(EndpointSocketPath("unix://relative.sock"));
  EXPECT_FALSE(EndpointSocketPath("csi.sock"));
  EXPECT_FALSE(EndpointSocketPath("tcp://1.2.3.4:5"));
}

// The condition comes from the daemon's status reply, through the real
// DaemonClient and the daemon's codec, with and without the health object.
TEST_F(GrpcServerTest, VolumeConditionFollowsTheDaemonsHealth) {
  StartServer();
  pb::NodeStageVolumeRequest stage = StageRequest(BlockCapability());
  ASSERT_TRUE(Stage(stage).ok());
  pb::NodeGetVolumeStatsResponse stats;
  ASSERT_TRUE(Stats("vol-1", dir_.string(), &stats).ok());
  ASSERT_TRUE(stats.has_volume_condition());
  EXPECT_FALSE(stats.volume_condition().abnormal()) << stats.volume_condition().message();
  EXPECT_EQ(stats.volume_condition().message().rfind("healthy", 0), 0u);

  daemon_->SetDeviceFields("/dev/nbd0", {{"state", "reattaching"},
                                         {"health",
                                          {{"state", "reattaching"},
                                           {"last_error", "reattach: cluster unreachable"},
                                           {"last_error_time", ::time(nullptr) - 10},
                                           {"seconds_since_last_io", 50},
                                           {"inflight", 4},
                                           {"recent_errors", 0},
                                           {"stalled", true}}}});
  ASSERT_TRUE(Stats("vol-1", dir_.string(), &stats).ok());
  EXPECT_TRUE(stats.volume_condition().abnormal());
  EXPECT_NE(stats.volume_condition().message().find("waiting for a reattach"), std::string::npos)
      << stats.volume_condition().message();
  EXPECT_NE(stats.volume_condition().message().find("reattach: cluster unreachable"), std::string::npos);

  daemon_->SetDeviceFields("/dev/nbd0", {{"health",
                                          {{"state", "mapped"},
                                           {"seconds_since_last_io", 1},
                                           {"inflight", 2},
                                           {"recent_errors", 9},
                                           {"stalled", false}}}});
  ASSERT_TRUE(Stats("vol-1", dir_.string(), &stats).ok());
  EXPECT_TRUE(stats.volume_condition().abnormal());
  EXPECT_NE(stats.volume_condition().message().find("9 requests failed"), std::string::npos)
      << stats.volume_condition().message();

  daemon_->SetDeviceFields("/dev/nbd0", {{"state", "mapped"}});  // an older daemon: no health object
  ASSERT_TRUE(Stats("vol-1", dir_.string(), &stats).ok());
  EXPECT_FALSE(stats.volume_condition().abnormal()) << stats.volume_condition().message();

  daemon_.reset();  // the daemon is gone: the devices are held, the volume is abnormal
  ASSERT_TRUE(Stats("vol-1", dir_.string(), &stats).ok());
  EXPECT_TRUE(stats.volume_condition().abnormal());
  EXPECT_NE(stats.volume_condition().message().find("unreachable"), std::string::npos)
      << stats.volume_condition().message();
}

// Each RPC once, by method and final code; methods of services this binary
// does not serve are not counted (no label value a caller chose).
TEST_F(GrpcServerTest, MetricsCountEveryRpcOnce) {
  options_.metrics_address = "127.0.0.1:0";
  StartServer();
  ASSERT_GT(server_->metrics_port(), 0);
  grpc::ClientContext c1;
  pb::GetPluginInfoResponse info;
  ASSERT_TRUE(identity_->GetPluginInfo(&c1, pb::GetPluginInfoRequest(), &info).ok());
  grpc::ClientContext c2;
  pb::NodeGetCapabilitiesResponse caps;
  ASSERT_TRUE(node_->NodeGetCapabilities(&c2, pb::NodeGetCapabilitiesRequest(), &caps).ok());
  pb::NodeStageVolumeRequest stage = StageRequest(MountCapability());
  stage.clear_volume_id();
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectCode(Stage(stage), grpc::StatusCode::INVALID_ARGUMENT);
  pb::NodeGetVolumeStatsResponse stats;
  ExpectCode(Stats("never-staged", dir_.string(), &stats), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c3;
  pb::CreateVolumeResponse created;
  ExpectCode(controller_->CreateVolume(&c3, pb::CreateVolumeRequest(), &created), grpc::StatusCode::UNIMPLEMENTED);

  auto scrape = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(scrape.status, 200);
  testing::Exposition e = testing::ParseExposition(scrape.body);
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  auto rpcs = [&e](const char* method, const char* code) {
    return testing::Value(e, "rbdnbd_csi_rpcs_total", {{"method", method}, {"code", code}});
  };
  EXPECT_EQ(rpcs("GetPluginInfo", "OK"), 1.0);
  EXPECT_EQ(rpcs("NodeGetCapabilities", "OK"), 1.0);
  EXPECT_EQ(rpcs("NodeStageVolume", "INVALID_ARGUMENT"), 2.0);
  EXPECT_EQ(rpcs("NodeStageVolume", "OK"), 0.0);
  EXPECT_EQ(rpcs("NodeGetVolumeStats", "NOT_FOUND"), 1.0);
  EXPECT_EQ(scrape.body.find("CreateVolume"), std::string::npos);
  EXPECT_EQ(testing::Value(e, "rbdnbd_csi_rpc_duration_seconds_count", {{"method", "NodeStageVolume"}}), 2.0);
  double total = 0;
  for (const auto& s : e.samples) {
    if (s.name == "rbdnbd_csi_rpcs_total") total += s.value;
  }
  EXPECT_EQ(total, 5.0) << scrape.body;
  EXPECT_EQ(testing::HttpGet(server_->metrics_port(), "/healthz").status, 200);

  server_->Shutdown(std::chrono::milliseconds(100));
  EXPECT_EQ(testing::HttpGet(server_->metrics_port(), "/metrics").status, 0) << "stopped with the server";
}

TEST_F(GrpcServerTest, MetricsAreOffByDefault) {
  StartServer();
  EXPECT_EQ(server_->metrics_port(), 0);
}

}  // namespace
}  // namespace rbdnbd::csi
