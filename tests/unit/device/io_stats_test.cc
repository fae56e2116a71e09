// The per-device I/O statistics (device/io_stats.h), recorded by real
// Connections: requests are driven over socketpairs as the kernel's nbd driver
// would (KernelPeer), against a real memory backend with fault and delay
// decorators, and the export's DeviceIoStats is read as a scrape would.
#include "device/io_stats.h"

#include <sys/socket.h>

#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "device/connection.h"
#include "exports/export_factory.h"
#include "kernel_peer.h"
#include "metrics/exposition.h"
#include "nbd/protocol.h"
#include "uring/buffer_pool.h"
#include "uring/event_loop.h"

namespace rbdnbd {
namespace {

using testing::KernelPeer;
using testing::Pattern;

// One loop, one export with statistics, any number of connections to it.
class IoStatsTest : public ::testing::Test {
 protected:
  struct Client {
    UniqueFd fd;
    std::unique_ptr<KernelPeer> peer;
    std::unique_ptr<Connection> conn;
    std::promise<void> closed;
    std::future<void> closed_future = closed.get_future();
  };

  void Serve(const std::string& spec) {
    auto parsed = ParseExportSpec(spec);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    stats_ = DeviceIoStats::Create();
    exp_ = Export{parsed->name, parsed->description, parsed->backend, stats_};
    auto loop = EventLoop::Create({.entries = 64, .name = "stats-test"});
    ASSERT_TRUE(loop.has_value());
    loop_ = std::move(loop).value();
    thread_ = std::thread([this] { loop_->Run(); });
  }

  // A new connection, built and started on the loop (as a ConnectionGroup does).
  Client* Connect() {
    auto c = std::make_unique<Client>();
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    c->fd.Reset(sv[1]);
    c->peer = std::make_unique<KernelPeer>(sv[1]);
    Client* raw = c.get();
    std::promise<void> started;
    loop_->Post([this, raw, fd = sv[0], &started] {
      raw->conn = Connection::ForTransmission(*loop_, pool_, UniqueFd(fd), exp_, "test",
                                              [raw](Connection*) { raw->closed.set_value(); });
      raw->conn->Start();
      started.set_value();
    });
    started.get_future().wait();
    clients_.push_back(std::move(c));
    return raw;
  }

  // The peer hangs up; waits until the connection closed and was deleted on its loop.
  void Hangup(Client* c) {
    c->fd.Reset();
    ASSERT_EQ(c->closed_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    std::promise<void> deleted;
    loop_->Post([c, &deleted] {
      c->conn.reset();
      deleted.set_value();
    });
    deleted.get_future().wait();
  }

  void TearDown() override {
    if (!loop_) return;
    for (auto& c : clients_) {
      if (c->conn) Hangup(c.get());
    }
    loop_->Stop();
    thread_.join();
  }

  static uint32_t Roundtrip(Client* c, uint16_t type, uint64_t offset, uint32_t length,
                            const std::vector<uint8_t>& payload = {}) {
    static uint64_t cookie = 1;
    uint64_t k = ++cookie;
    EXPECT_TRUE(c->peer->Send(type, k, offset, length, 0, payload));
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    EXPECT_TRUE(c->peer->Receive(&r, &data, type == nbd::kCmdRead ? length : 0));
    EXPECT_EQ(r.cookie, k);
    return r.error;
  }

  static uint64_t BucketSum(const metrics::HistogramSnapshot& h) {
    uint64_t n = 0;
    for (uint64_t b : h.buckets) n += b;
    return n;
  }

  std::shared_ptr<DeviceIoStats> stats_;
  Export exp_;
  BufferPool pool_;
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  std::vector<std::unique_ptr<Client>> clients_;
};

TEST_F(IoStatsTest, CountsOpsBytesAndLatencyByOp) {
  Serve("name=m,backend=memory,size=16M");
  Client* c = Connect();
  EXPECT_EQ(stats_->Snapshot().connections, 1u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWrite, 0, 4096, Pattern(4096, 1)), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWrite, 8192, 65536, Pattern(65536, 2)), 0u);
  for (int i = 0; i < 3; i++) EXPECT_EQ(Roundtrip(c, nbd::kCmdRead, 0, 8192), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdFlush, 0, 0), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdTrim, 0, 4096), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWriteZeroes, 4096, 512), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdCache, 0, 4096), 0u);  // not one of the five ops

  IoStatsSnapshot s = stats_->Snapshot();
  EXPECT_EQ(s.op(IoOp::kWrite).ops, 2u);
  EXPECT_EQ(s.op(IoOp::kWrite).bytes, 4096u + 65536u);
  EXPECT_EQ(s.op(IoOp::kRead).ops, 3u);
  EXPECT_EQ(s.op(IoOp::kRead).bytes, 3u * 8192u);
  EXPECT_EQ(s.op(IoOp::kFlush).ops, 1u);
  EXPECT_EQ(s.op(IoOp::kFlush).bytes, 0u);
  EXPECT_EQ(s.op(IoOp::kTrim).ops, 1u);
  EXPECT_EQ(s.op(IoOp::kTrim).bytes, 4096u);
  EXPECT_EQ(s.op(IoOp::kWriteZeroes).ops, 1u);
  EXPECT_EQ(s.op(IoOp::kWriteZeroes).bytes, 512u);
  for (size_t i = 0; i < kIoOpCount; i++) {
    const auto& t = s.ops[i];
    EXPECT_EQ(t.latency.count, t.ops) << IoOpName(static_cast<IoOp>(i));
    EXPECT_EQ(BucketSum(t.latency), t.ops);
    // A memory backend on an idle loop answers well within a second.
    EXPECT_GT(t.latency.sum_seconds, 0.0);
    EXPECT_LT(t.latency.sum_seconds, 1.0 * static_cast<double>(t.ops));
  }
  EXPECT_EQ(s.errors_total(), 0u);
  EXPECT_EQ(s.inflight, 0);
  EXPECT_EQ(s.last_error, 0);
  double last = IoStatsSnapshot::ToUnixSeconds(s.last_completion_ns);
  EXPECT_NEAR(last, static_cast<double>(time(nullptr)), 5.0);
}

TEST_F(IoStatsTest, SlowRequestsLandInTheirLatencyBucket) {
  Serve("name=m,backend=memory,size=1M,delay-read=30ms");
  Client* c = Connect();
  EXPECT_EQ(Roundtrip(c, nbd::kCmdRead, 0, 4096), 0u);
  const IoStatsSnapshot s = stats_->Snapshot();
  const auto& h = s.op(IoOp::kRead).latency;
  ASSERT_EQ(h.count, 1u);
  EXPECT_GE(h.sum_seconds, 0.030);
  // The one observation sits in the bucket whose range holds it: (0.025, 0.05]
  // on an idle machine, a later one if the loop was slow, never an earlier one.
  size_t bucket = 0;
  while (bucket + 1 < h.buckets.size() && h.buckets[bucket] == 0) bucket++;
  ASSERT_LT(bucket, metrics::kLatencyBounds.size());
  EXPECT_GE(metrics::kLatencyBounds[bucket], 0.05);
  EXPECT_LE(h.sum_seconds, metrics::kLatencyBounds[bucket]);
  EXPECT_GT(h.sum_seconds, metrics::kLatencyBounds[bucket - 1]);
}

TEST_F(IoStatsTest, CountsErrorsByOpAndErrno) {
  Serve("name=m,backend=memory,size=1M,fault-errno=EIO,fault-ops=write,fault-every=2");
  Client* c = Connect();
  EXPECT_EQ(Roundtrip(c, nbd::kCmdRead, 1u << 20, 4096), nbd::kNbdEINVAL);  // past the end
  EXPECT_EQ(Roundtrip(c, nbd::kCmdRead, 0, 0), nbd::kNbdEINVAL);            // zero length
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWrite, (1u << 20) - 1, 2, {1, 2}), nbd::kNbdENOSPC);
  int eio = 0;
  for (int i = 0; i < 4; i++) {
    if (Roundtrip(c, nbd::kCmdWrite, 0, 4096, Pattern(4096, i)) == nbd::kNbdEIO) eio++;
  }
  EXPECT_EQ(eio, 2);
  EXPECT_EQ(Roundtrip(c, 77, 0, 4096), nbd::kNbdEINVAL);  // unknown command: no op label

  IoStatsSnapshot s = stats_->Snapshot();
  EXPECT_EQ(s.op(IoOp::kRead).errors[EINVAL], 2u);
  EXPECT_EQ(s.op(IoOp::kRead).ops, 2u);  // answered with an error: counted, no bytes
  EXPECT_EQ(s.op(IoOp::kRead).bytes, 0u);
  EXPECT_EQ(s.op(IoOp::kWrite).errors[ENOSPC], 1u);
  EXPECT_EQ(s.op(IoOp::kWrite).errors[EIO], 2u);
  EXPECT_EQ(s.op(IoOp::kWrite).ops, 5u);
  EXPECT_EQ(s.op(IoOp::kWrite).bytes, 2u * 4096u);
  EXPECT_EQ(s.errors_total(), 5u);
  EXPECT_NE(s.last_error, 0);  // the last error reply: EIO or (never later) ENOSPC
  EXPECT_EQ(s.last_error, EIO);
  EXPECT_GE(s.last_error_ns, s.last_completion_ns - 1'000'000'000ull);
}

TEST_F(IoStatsTest, InflightCountsRequestsAtTheBackend) {
  Serve("name=m,backend=memory,size=1M,delay-read=300ms");
  Client* c = Connect();
  for (uint64_t i = 0; i < 4; i++) ASSERT_TRUE(c->peer->Send(nbd::kCmdRead, 100 + i, i * 4096, 4096));
  int64_t seen = 0;
  for (int i = 0; i < 200 && seen < 4; i++) {
    seen = stats_->Snapshot().inflight;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(seen, 4);
  for (int i = 0; i < 4; i++) {
    nbd::SimpleReply r{};
    std::vector<uint8_t> data;
    ASSERT_TRUE(c->peer->Receive(&r, &data, 4096));
  }
  EXPECT_EQ(stats_->Snapshot().inflight, 0);
  EXPECT_EQ(stats_->Snapshot().op(IoOp::kRead).ops, 4u);
}

TEST_F(IoStatsTest, TotalsAreKeptWhenConnectionsClose) {
  Serve("name=m,backend=memory,size=1M,fault-errno=EIO,fault-ops=read,fault-every=3");
  Client* a = Connect();
  Client* b = Connect();
  EXPECT_EQ(stats_->Snapshot().connections, 2u);
  for (int i = 0; i < 3; i++) Roundtrip(a, nbd::kCmdRead, 0, 4096);  // one EIO
  for (int i = 0; i < 5; i++) EXPECT_EQ(Roundtrip(b, nbd::kCmdWrite, 0, 1024, Pattern(1024, i)), 0u);
  IoStatsSnapshot before = stats_->Snapshot();
  Hangup(a);
  IoStatsSnapshot after = stats_->Snapshot();
  EXPECT_EQ(after.connections, 1u);
  EXPECT_EQ(after.op(IoOp::kRead).ops, before.op(IoOp::kRead).ops);
  EXPECT_EQ(after.op(IoOp::kRead).ops, 3u);
  EXPECT_EQ(after.op(IoOp::kRead).bytes, 2u * 4096u);
  EXPECT_EQ(after.op(IoOp::kRead).errors[EIO], 1u);
  EXPECT_EQ(after.op(IoOp::kRead).latency.count, 3u);
  EXPECT_EQ(after.last_error, EIO);
  Hangup(b);
  IoStatsSnapshot none = stats_->Snapshot();
  EXPECT_EQ(none.connections, 0u);
  EXPECT_EQ(none.op(IoOp::kWrite).ops, 5u);
  EXPECT_EQ(none.op(IoOp::kWrite).bytes, 5u * 1024u);
  EXPECT_EQ(none.last_completion_ns, before.last_completion_ns);
  // A new connection adds to the retired totals.
  Client* c = Connect();
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWrite, 0, 1024, Pattern(1024, 9)), 0u);
  EXPECT_EQ(stats_->Snapshot().op(IoOp::kWrite).ops, 6u);
  EXPECT_EQ(stats_->Snapshot().connections, 1u);
}

// A scrape thread reads while the loop records: every counter it sees only
// grows, and the final snapshot is exact. Under TSan/ASan builds this is also
// the data-race check of the single-writer cells.
TEST_F(IoStatsTest, SnapshotFromAnotherThreadWhileIoRuns) {
  Serve("name=m,backend=memory,size=16M");
  Client* c = Connect();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> scrapes{0};
  std::atomic<bool> went_backwards{false};
  std::thread scraper([&] {
    uint64_t last_ops = 0, last_bytes = 0, last_count = 0;
    while (!stop.load()) {
      IoStatsSnapshot s = stats_->Snapshot();
      uint64_t ops = s.op(IoOp::kWrite).ops + s.op(IoOp::kRead).ops;
      uint64_t bytes = s.op(IoOp::kWrite).bytes + s.op(IoOp::kRead).bytes;
      uint64_t count = s.op(IoOp::kRead).latency.count;
      if (ops < last_ops || bytes < last_bytes || count < last_count) went_backwards = true;
      last_ops = ops;
      last_bytes = bytes;
      last_count = count;
      scrapes++;
    }
  });
  constexpr int kRounds = 50, kDepth = 32;
  for (int r = 0; r < kRounds; r++) {
    for (int i = 0; i < kDepth; i++) {
      ASSERT_TRUE(c->peer->Send(nbd::kCmdWrite, i, uint64_t(i) * 4096, 4096, 0, Pattern(4096, i)));
    }
    for (int i = 0; i < kDepth; i++) {
      nbd::SimpleReply rep{};
      ASSERT_TRUE(c->peer->Receive(&rep)) << "round " << r;
    }
    for (int i = 0; i < kDepth; i++) ASSERT_TRUE(c->peer->Send(nbd::kCmdRead, i, uint64_t(i) * 4096, 4096));
    for (int i = 0; i < kDepth; i++) {
      nbd::SimpleReply rep{};
      std::vector<uint8_t> data;
      ASSERT_TRUE(c->peer->Receive(&rep, &data, 4096)) << "round " << r;
    }
  }
  stop = true;
  scraper.join();
  EXPECT_FALSE(went_backwards);
  EXPECT_GT(scrapes.load(), 1u);
  IoStatsSnapshot s = stats_->Snapshot();
  EXPECT_EQ(s.op(IoOp::kWrite).ops, uint64_t(kRounds) * kDepth);
  EXPECT_EQ(s.op(IoOp::kRead).ops, uint64_t(kRounds) * kDepth);
  EXPECT_EQ(s.op(IoOp::kRead).bytes, uint64_t(kRounds) * kDepth * 4096);
  EXPECT_EQ(s.op(IoOp::kRead).latency.count, uint64_t(kRounds) * kDepth);
}

TEST_F(IoStatsTest, ExportsEveryPerDeviceFamilyOfTheContract) {
  Serve("name=disk0,backend=memory,size=1M");
  Client* c = Connect();
  EXPECT_EQ(Roundtrip(c, nbd::kCmdWrite, 0, 4096, Pattern(4096, 1)), 0u);
  EXPECT_EQ(Roundtrip(c, nbd::kCmdRead, 1u << 20, 4096), nbd::kNbdEINVAL);
  std::vector<DeviceSample> devices;
  devices.push_back({{"disk0", "", "", ""}, stats_->Snapshot(), std::nullopt});
  devices.push_back({{"nbd3", "rbd", "ns1", "img"}, IoStatsSnapshot{}, DaemonDeviceValues{4, 1, 2.5}});
  metrics::TextWriter w;
  WriteDeviceFamilies(w, devices);
  const std::string& t = w.text();
  for (const char* family : {"rbdnbd_device_ops_total", "rbdnbd_device_bytes_total",
                             "rbdnbd_device_op_duration_seconds", "rbdnbd_device_errors_total",
                             "rbdnbd_device_inflight_requests", "rbdnbd_device_connections",
                             "rbdnbd_device_configured_connections", "rbdnbd_device_reattaches_total",
                             "rbdnbd_device_stalled_seconds_total",
                             "rbdnbd_device_last_completion_timestamp_seconds"}) {
    EXPECT_NE(t.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
  const std::string disk0 = R"(device="disk0",pool="",rados_namespace="",image="")";
  EXPECT_NE(t.find("rbdnbd_device_ops_total{" + disk0 + R"(,op="write"} 1)" "\n"), std::string::npos) << t;
  EXPECT_NE(t.find("rbdnbd_device_bytes_total{" + disk0 + R"(,op="write"} 4096)" "\n"), std::string::npos);
  EXPECT_NE(t.find("rbdnbd_device_errors_total{" + disk0 + R"(,op="read",errno="EINVAL"} 1)" "\n"),
            std::string::npos);
  EXPECT_NE(t.find("rbdnbd_device_connections{" + disk0 + "} 1\n"), std::string::npos);
  EXPECT_NE(t.find(R"(rbdnbd_device_op_duration_seconds_count{device="disk0",pool="",rados_namespace="",image="",op="write"} 1)"),
            std::string::npos);
  EXPECT_NE(t.find(R"(rbdnbd_device_configured_connections{device="nbd3",pool="rbd",rados_namespace="ns1",image="img"} 4)"),
            std::string::npos);
  // The daemon-only families have no series for a serve export.
  EXPECT_EQ(t.find("rbdnbd_device_reattaches_total{" + disk0), std::string::npos);
}

}  // namespace
}  // namespace rbdnbd
