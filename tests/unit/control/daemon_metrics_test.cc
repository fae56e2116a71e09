// The daemon's /metrics text from fake device-manager state: every family of
// METRICS.md that the daemon serves is there, with the right labels and
// values, and (when promtool is installed) the text passes
// `promtool check metrics`.
#include "control/daemon_metrics.h"
#include "metrics/process_info.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

DeviceSample Device(const std::string& nbd, const std::string& pool, const std::string& ns, const std::string& image) {
  DeviceSample d;
  d.labels = {nbd, pool, ns, image};
  d.daemon = DaemonDeviceValues{};
  return d;
}

DaemonMetricsInput Fake() {
  DaemonMetricsInput in;
  in.version = "0.1.0";
  in.compiler = "gcc 12.2.0";
  in.uptime_seconds = 12.5;
  DeviceSample a = Device("nbd0", "rbd", "", "vm1");
  a.io.ops[static_cast<size_t>(IoOp::kRead)].ops = 1000;
  a.io.ops[static_cast<size_t>(IoOp::kRead)].bytes = 4096000;
  a.io.ops[static_cast<size_t>(IoOp::kWrite)].ops = 7;
  a.io.ops[static_cast<size_t>(IoOp::kWrite)].errors[EIO] = 2;
  a.io.ops[static_cast<size_t>(IoOp::kRead)].latency.buckets[3] = 1000;
  a.io.ops[static_cast<size_t>(IoOp::kRead)].latency.count = 1000;
  a.io.ops[static_cast<size_t>(IoOp::kRead)].latency.sum_seconds = 0.2;
  a.io.inflight = 3;
  a.io.connections = 4;
  a.daemon->configured_connections = 4;
  a.daemon->reattaches = 2;
  a.daemon->stalled_seconds = 7.25;
  DeviceSample b = Device("nbd3", "kube", "tenant-a", "pvc \"quoted\"");
  b.daemon->configured_connections = 1;
  in.manager.devices = {a, b};
  in.manager.devices_by_state = {1, 1, 0};
  in.manager.clusters_connected = 1;
  in.manager.clusters_idle = 0;
  ControlCalls calls;
  calls.Record("map", 0);
  calls.Record("map", 0);
  calls.Record("map", ENOENT);
  calls.Record("status", 0);
  calls.Record("invalid", EINVAL);
  in.control_calls = calls.Snapshot();
  return in;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(DaemonMetricsTest, DaemonWideFamiliesCarryEveryState) {
  std::string text = RenderDaemonMetrics(Fake());
  EXPECT_TRUE(Has(text, R"(rbdnbd_build_info{version="0.1.0",compiler="gcc 12.2.0"} 1)")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_uptime_seconds 12.5")) << text;
  EXPECT_TRUE(Has(text, "# TYPE rbdnbd_devices gauge"));
  EXPECT_TRUE(Has(text, R"(rbdnbd_devices{state="mapped"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_devices{state="reattaching"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_devices{state="unmapping"} 0)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_cluster_connections{state="connected"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_cluster_connections{state="idle"} 0)")) << text;
  EXPECT_TRUE(Has(text, "# TYPE rbdnbd_control_requests_total counter"));
  EXPECT_TRUE(Has(text, R"(rbdnbd_control_requests_total{op="map",result="ok"} 2)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_control_requests_total{op="map",result="ENOENT"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_control_requests_total{op="invalid",result="EINVAL"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(rbdnbd_control_requests_total{op="status",result="ok"} 1)")) << text;
}

TEST(DaemonMetricsTest, PerDeviceFamiliesAreLabelledByDeviceAndImage) {
  std::string text = RenderDaemonMetrics(Fake());
  const std::string a = R"(device="nbd0",pool="rbd",rados_namespace="",image="vm1")";
  EXPECT_TRUE(Has(text, "rbdnbd_device_ops_total{" + a + R"(,op="read"} 1000)")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_bytes_total{" + a + R"(,op="read"} 4096000)")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_errors_total{" + a + R"(,op="write",errno="EIO"} 2)")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_op_duration_seconds_count{" + a + R"(,op="read"} 1000)")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_inflight_requests{" + a + "} 3")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_connections{" + a + "} 4")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_configured_connections{" + a + "} 4")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_reattaches_total{" + a + "} 2")) << text;
  EXPECT_TRUE(Has(text, "rbdnbd_device_stalled_seconds_total{" + a + "} 7.25")) << text;
  // A label value is escaped, never trusted.
  const std::string b = R"(device="nbd3",pool="kube",rados_namespace="tenant-a",image="pvc \"quoted\"")";
  EXPECT_TRUE(Has(text, "rbdnbd_device_reattaches_total{" + b + "} 0")) << text;
}

TEST(DaemonMetricsTest, WithoutDevicesEveryFamilyIsStillDeclared) {
  DaemonMetricsInput in;
  in.version = "0.1.0";
  in.compiler = metrics::CompilerLabel();
  std::string text = RenderDaemonMetrics(in);
  for (const char* family :
       {"rbdnbd_build_info", "rbdnbd_uptime_seconds", "rbdnbd_metrics_render_seconds", "rbdnbd_devices", "rbdnbd_cluster_connections",
        "rbdnbd_control_requests_total", "rbdnbd_device_ops_total", "rbdnbd_device_bytes_total",
        "rbdnbd_device_op_duration_seconds", "rbdnbd_device_errors_total", "rbdnbd_device_inflight_requests",
        "rbdnbd_device_connections", "rbdnbd_device_configured_connections", "rbdnbd_device_reattaches_total",
        "rbdnbd_device_stalled_seconds_total", "rbdnbd_device_last_completion_timestamp_seconds"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family << "\n" << text;
  }
  EXPECT_TRUE(Has(text, R"(rbdnbd_devices{state="mapped"} 0)")) << text;
}

TEST(DaemonMetricsTest, ControlCallsCountFromManyThreads) {
  ControlCalls calls;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&calls] {
      for (int i = 0; i < 1000; i++) calls.Record("list", i % 10 == 0 ? EBUSY : 0);
    });
  }
  for (auto& t : threads) t.join();
  auto snap = calls.Snapshot();
  EXPECT_EQ((snap[{"list", "ok"}]), 7200u);
  EXPECT_EQ((snap[{"list", "EBUSY"}]), 800u);
}

TEST(DaemonMetricsTest, PromtoolAcceptsTheText) {
  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/promtool (Debian's prometheus)";
  char path[] = "/tmp/rbd-nbdd-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << RenderDaemonMetrics(Fake());
  std::string cmd = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  int rc = ::pclose(p);
  ::unlink(path);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace rbdnbd
