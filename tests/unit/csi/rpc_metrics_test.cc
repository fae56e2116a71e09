// RpcMetrics (counting by method and code, latency buckets, concurrent
// recording), the /metrics body against gateway/metrics/METRICS.md, the
// MetricsServer over real HTTP, and the --metrics-address flag.
#include <getopt.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "csi.grpc.pb.h"
#include "csi/metrics_server.h"
#include "csi/process_main.h"
#include "csi/rpc_metrics.h"
#include "metrics/process_info.h"
#include "exposition_check.h"
#include "http_get.h"

namespace rbdnbd::csi {
namespace {

namespace pb = ::csi::v1;
using std::chrono::milliseconds;
using testing::ContractSection;
using testing::Exposition;
using testing::MetricsContractPath;
using testing::ParseExposition;
using testing::Value;

RpcMetrics NodeMetrics() { return RpcMetrics({pb::Identity::service_full_name(), pb::Node::service_full_name()}); }

TEST(RpcMetricsTest, CountsEachCallByMethodAndCode) {
  RpcMetrics m = NodeMetrics();
  EXPECT_TRUE(m.Record("/csi.v1.Node/NodeStageVolume", grpc::StatusCode::OK, milliseconds(3)));
  EXPECT_TRUE(m.Record("/csi.v1.Node/NodeStageVolume", grpc::StatusCode::OK, milliseconds(4)));
  EXPECT_TRUE(m.Record("/csi.v1.Node/NodeStageVolume", grpc::StatusCode::INVALID_ARGUMENT, milliseconds(0)));
  EXPECT_TRUE(m.Record("Probe", grpc::StatusCode::FAILED_PRECONDITION, milliseconds(1)));
  EXPECT_EQ(m.Count("NodeStageVolume", grpc::StatusCode::OK), 2u);
  EXPECT_EQ(m.Count("NodeStageVolume", grpc::StatusCode::INVALID_ARGUMENT), 1u);
  EXPECT_EQ(m.Count("NodeStageVolume", grpc::StatusCode::NOT_FOUND), 0u);
  EXPECT_EQ(m.Count("Probe", grpc::StatusCode::FAILED_PRECONDITION), 1u);
  EXPECT_EQ(m.Count("NodeUnstageVolume", grpc::StatusCode::OK), 0u);
  EXPECT_EQ(m.Latency("NodeStageVolume").count, 3u);
}

TEST(RpcMetricsTest, MethodsOutsideTheServicesAreNotCounted) {
  RpcMetrics m = NodeMetrics();
  EXPECT_FALSE(m.Record("/csi.v1.Controller/CreateVolume", grpc::StatusCode::OK, milliseconds(1)));
  EXPECT_FALSE(m.Record("/x.Y/anything a caller sends", grpc::StatusCode::OK, milliseconds(1)));
  EXPECT_FALSE(m.Record("/other.Service/Probe", grpc::StatusCode::OK, milliseconds(1)));  // the whole path counts
  EXPECT_EQ(m.Count("Probe", grpc::StatusCode::OK), 0u);
  EXPECT_EQ(m.Count("CreateVolume", grpc::StatusCode::OK), 0u);
  const std::string text = RenderCsiMetrics(m);
  EXPECT_EQ(text.find("CreateVolume"), std::string::npos);
  EXPECT_EQ(text.find("anything"), std::string::npos);
}

TEST(RpcMetricsTest, ACodeOutsideGrpcsCountsAsUnknown) {
  RpcMetrics m = NodeMetrics();
  // DO_NOT_USE (-1): not a code, yet a value of the enum (a cast of 99 would be UB).
  m.Record("Probe", grpc::StatusCode::DO_NOT_USE, milliseconds(1));
  EXPECT_EQ(m.Count("Probe", grpc::StatusCode::UNKNOWN), 1u);
}

TEST(RpcMetricsTest, LatencyUsesTheSharedBuckets) {
  RpcMetrics m = NodeMetrics();
  m.Record("NodeGetInfo", grpc::StatusCode::OK, milliseconds(3));    // le 0.005
  m.Record("NodeGetInfo", grpc::StatusCode::OK, std::chrono::seconds(40));  // +Inf
  auto h = m.Latency("NodeGetInfo");
  EXPECT_EQ(h.count, 2u);
  EXPECT_NEAR(h.sum_seconds, 40.003, 1e-6);
  size_t le5ms = 0;
  while (metrics::kLatencyBounds[le5ms] < 0.005) ++le5ms;
  EXPECT_EQ(h.buckets[le5ms], 1u);
  EXPECT_EQ(h.buckets.back(), 1u);
}

TEST(RpcMetricsTest, ConcurrentCallsAreAllCounted) {
  RpcMetrics m = NodeMetrics();
  constexpr int kThreads = 8, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      const auto code = t % 2 == 0 ? grpc::StatusCode::OK : grpc::StatusCode::ABORTED;
      for (int i = 0; i < kEach; ++i) m.Record("/csi.v1.Node/NodeGetVolumeStats", code, std::chrono::microseconds(i));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.Count("NodeGetVolumeStats", grpc::StatusCode::OK), uint64_t{kThreads / 2 * kEach});
  EXPECT_EQ(m.Count("NodeGetVolumeStats", grpc::StatusCode::ABORTED), uint64_t{kThreads / 2 * kEach});
  EXPECT_EQ(m.Latency("NodeGetVolumeStats").count, uint64_t{kThreads * kEach});
}

// Every family the plugins serve is in METRICS.md's "CSI plugins" table, with its
// type and exactly its labels; every family listed there is served.
TEST(RpcMetricsTest, ExpositionFollowsTheContract) {
  auto contract = ContractSection(MetricsContractPath(), "CSI plugins");
  ASSERT_EQ(contract.size(), 5u) << MetricsContractPath();
  RpcMetrics m = NodeMetrics();
  m.Record("NodeStageVolume", grpc::StatusCode::OK, milliseconds(12));
  m.Record("NodeStageVolume", grpc::StatusCode::NOT_FOUND, milliseconds(2));
  Exposition e = ParseExposition(RenderCsiMetrics(m));
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();

  for (const auto& [name, family] : contract) {
    ASSERT_EQ(e.types.count(name), 1u) << name << " is not served";
    EXPECT_EQ(e.types[name], family.type) << name;
  }
  for (const auto& [name, type] : e.types) EXPECT_EQ(contract.count(name), 1u) << name << " is not in METRICS.md";
  for (const auto& s : e.samples) {
    std::string family = s.name;
    std::set<std::string> labels;
    for (const auto& [k, v] : s.labels) labels.insert(k);
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string base = s.name.substr(0, s.name.size() - std::min(s.name.size(), std::string(suffix).size()));
      if (s.name.ends_with(suffix) && contract.count(base) && contract[base].type == "histogram") family = base;
    }
    if (s.name.ends_with("_bucket")) labels.erase("le");
    ASSERT_EQ(contract.count(family), 1u) << s.name;
    EXPECT_EQ(labels, contract[family].labels) << s.name;
  }

  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "NodeStageVolume"}, {"code", "OK"}}), 1.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "NodeStageVolume"}, {"code", "NOT_FOUND"}}), 1.0);
  // A method not called yet still shows OK 0, so that rate() sees its first call.
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "NodeExpandVolume"}, {"code", "OK"}}), 0.0);
  EXPECT_FALSE(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "NodeExpandVolume"}, {"code", "NOT_FOUND"}}));
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpc_duration_seconds_count", {{"method", "NodeStageVolume"}}), 2.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpc_duration_seconds_bucket", {{"method", "NodeStageVolume"}, {"le", "0.0025"}}),
            1.0);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpc_duration_seconds_bucket", {{"method", "NodeStageVolume"}, {"le", "+Inf"}}),
            2.0);
  EXPECT_EQ(Value(e, "rbdnbd_build_info", {{"compiler", metrics::CompilerLabel()}}), 1.0);
  EXPECT_GE(*Value(e, "rbdnbd_uptime_seconds"), 0.0);
  EXPECT_GE(*Value(e, "rbdnbd_metrics_render_seconds"), 0.0);
}

TEST(MetricsServerTest, ServesMetricsAndHealthOverHttp) {
  RpcMetrics m = NodeMetrics();
  m.Record("GetPluginInfo", grpc::StatusCode::OK, milliseconds(1));
  auto server = MetricsServer::Start("127.0.0.1:0", &m);
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_GT((*server)->port(), 0);
  auto metrics = testing::HttpGet((*server)->port(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers.find("text/plain; version=0.0.4"), std::string::npos) << metrics.headers;
  Exposition e = ParseExposition(metrics.body);
  EXPECT_EQ(Value(e, "rbdnbd_csi_rpcs_total", {{"method", "GetPluginInfo"}, {"code", "OK"}}), 1.0);
  auto health = testing::HttpGet((*server)->port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(testing::HttpGet((*server)->port(), "/nope").status, 404);
  (*server)->Stop();
  EXPECT_EQ(testing::HttpGet((*server)->port(), "/metrics").status, 0);  // closed
}

TEST(MetricsServerTest, ABadAddressOrABusyPortFailsNamingIt) {
  RpcMetrics m = NodeMetrics();
  auto bad = MetricsServer::Start("not-an-address", &m);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not-an-address"), std::string::npos) << bad.error().message;
  auto first = MetricsServer::Start("127.0.0.1:0", &m);
  ASSERT_TRUE(first);
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsServer::Start(taken, &m);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find(taken), std::string::npos) << second.error().message;
}

// ParseFlags with getopt's state reset, as a fresh process would have it.
std::optional<int> Parse(std::vector<std::string> args, SharedFlags* shared) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  optind = 0;
  return ParseFlags("rbd-nbdd-csi-test", "usage\n", {}, static_cast<int>(args.size()), argv.data(),
                    [](int, const char*) { return true; }, shared);
}

TEST(MetricsFlagTest, MetricsAddressIsReadForBothBinaries) {
  SharedFlags off;
  EXPECT_EQ(Parse({"prog"}, &off), std::nullopt);
  EXPECT_TRUE(off.metrics_address.empty());  // off by default
  SharedFlags on;
  EXPECT_EQ(Parse({"prog", "--metrics-address", "127.0.0.1:9482"}, &on), std::nullopt);
  EXPECT_EQ(on.metrics_address, "127.0.0.1:9482");
  SharedFlags empty;
  EXPECT_EQ(Parse({"prog", "--metrics-address="}, &empty), 2);
  SharedFlags missing;
  EXPECT_EQ(Parse({"prog", "--metrics-address"}, &missing), 2);
}

}  // namespace
}  // namespace rbdnbd::csi
