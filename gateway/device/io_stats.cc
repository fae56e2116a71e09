#include "device/io_stats.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "metrics/exposition.h"
#include "nbd/protocol.h"

namespace rbdnbd {

std::string_view IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kRead: return "read";
    case IoOp::kWrite: return "write";
    case IoOp::kFlush: return "flush";
    case IoOp::kTrim: return "trim";
    case IoOp::kWriteZeroes: return "write_zeroes";
  }
  return "unknown";
}

std::optional<IoOp> IoOpOfNbdCommand(uint16_t cmd) {
  switch (cmd) {
    case nbd::kCmdRead: return IoOp::kRead;
    case nbd::kCmdWrite: return IoOp::kWrite;
    case nbd::kCmdFlush: return IoOp::kFlush;
    case nbd::kCmdTrim: return IoOp::kTrim;
    case nbd::kCmdWriteZeroes: return IoOp::kWriteZeroes;
    default: return std::nullopt;
  }
}

uint64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void IoCells::RecordError(PerOp& p, int err) {
  const uint64_t now_ns = MonotonicNowNs();
  size_t slot = err > 0 && static_cast<size_t>(err) < kErrnoSlots ? static_cast<size_t>(err) : 0;
  p.errors[slot].Add();
  last_error_errno_.Set(err);
  last_error_ns_.Set(static_cast<int64_t>(now_ns));
}

uint64_t IoStatsSnapshot::errors_total() const {
  uint64_t n = 0;
  for (const auto& o : ops) {
    for (uint64_t e : o.errors) n += e;
  }
  return n;
}

double IoStatsSnapshot::ToUnixSeconds(uint64_t monotonic_ns) {
  if (monotonic_ns == 0) return 0;
  timespec real;
  clock_gettime(CLOCK_REALTIME, &real);
  const double now_real = static_cast<double>(real.tv_sec) + static_cast<double>(real.tv_nsec) * 1e-9;
  const double age = (static_cast<double>(MonotonicNowNs()) - static_cast<double>(monotonic_ns)) * 1e-9;
  return now_real - age;
}

// ----------------------------------------------------------------- handles

IoStatsHandle::IoStatsHandle(IoStatsHandle&& o) noexcept
    : owner_(std::move(o.owner_)), cells_(std::move(o.cells_)) {}

IoStatsHandle& IoStatsHandle::operator=(IoStatsHandle&& o) noexcept {
  if (this != &o) {
    Reset();
    owner_ = std::move(o.owner_);
    cells_ = std::move(o.cells_);
  }
  return *this;
}

IoStatsHandle::~IoStatsHandle() { Reset(); }

void IoStatsHandle::Reset() {
  if (owner_ && cells_) owner_->Close(std::move(cells_));
  owner_.reset();
  cells_.reset();
}

// ----------------------------------------------------------------- device

std::shared_ptr<DeviceIoStats> DeviceIoStats::Create() {
  return std::shared_ptr<DeviceIoStats>(new DeviceIoStats());
}

IoStatsHandle DeviceIoStats::Open() {
  IoStatsHandle h;
  h.owner_ = shared_from_this();
  h.cells_ = std::make_unique<IoCells>();
  std::lock_guard lock(mu_);
  live_.push_back(h.cells_.get());
  return h;
}

// Adds the counters and time stamps of `c` (relaxed loads) to `out`; inflight
// and connections are the caller's (they count live connections only).
void DeviceIoStats::AddCells(const IoCells& c, IoStatsSnapshot* out) {
  for (size_t i = 0; i < kIoOpCount; ++i) {
    const IoCells::PerOp& p = c.op_[i];
    IoOpTotals& t = out->ops[i];
    t.ops += p.ops.Value();
    t.bytes += p.bytes.Value();
    t.latency += p.latency.Snapshot();
    for (size_t e = 0; e < kErrnoSlots; ++e) t.errors[e] += p.errors[e].Value();
  }
  out->last_completion_ns =
      std::max(out->last_completion_ns, static_cast<uint64_t>(c.last_completion_ns_.Value()));
  // A racing error may pair a new errno with the previous time stamp, for one scrape.
  int err = static_cast<int>(c.last_error_errno_.Value());
  uint64_t err_ns = static_cast<uint64_t>(c.last_error_ns_.Value());
  if (err_ns != 0 && err_ns >= out->last_error_ns) {
    out->last_error_ns = err_ns;
    out->last_error = err;
  }
}

void DeviceIoStats::Close(std::unique_ptr<IoCells> cells) {
  std::lock_guard lock(mu_);
  live_.erase(std::remove(live_.begin(), live_.end(), cells.get()), live_.end());
  AddCells(*cells, &retired_);
}

IoStatsSnapshot DeviceIoStats::Snapshot() const {
  std::lock_guard lock(mu_);
  IoStatsSnapshot s = retired_;
  s.connections = live_.size();
  s.inflight = 0;
  for (const IoCells* c : live_) {
    AddCells(*c, &s);
    s.inflight += c->inflight_.Value();
  }
  return s;
}

// ----------------------------------------------------------------- exposition

namespace {

metrics::Labels DeviceBaseLabels(const DeviceLabels& l) {
  return {{"device", l.device}, {"pool", l.pool}, {"rados_namespace", l.ns}, {"image", l.image}};
}

}  // namespace

void WriteDeviceFamilies(metrics::TextWriter& w, const std::vector<DeviceSample>& devices) {
  auto per_op = [&](std::string_view name, std::string_view help, auto value) {
    w.Family(name, help, metrics::Type::kCounter);
    for (const DeviceSample& d : devices) {
      for (size_t i = 0; i < kIoOpCount; ++i) {
        IoOp op = static_cast<IoOp>(i);
        metrics::Labels l = DeviceBaseLabels(d.labels);
        l.emplace_back("op", IoOpName(op));
        w.Sample(l, static_cast<uint64_t>(value(d.io.ops[i])));
      }
    }
  };
  per_op("rbdnbd_device_ops_total", "Requests completed (success or error), by op.",
         [](const IoOpTotals& t) { return t.ops; });
  per_op("rbdnbd_device_bytes_total", "Bytes of successfully completed requests, by op.",
         [](const IoOpTotals& t) { return t.bytes; });

  w.Family("rbdnbd_device_op_duration_seconds", "Request latency, received to reply queued, by op.",
           metrics::Type::kHistogram);
  for (const DeviceSample& d : devices) {
    for (size_t i = 0; i < kIoOpCount; ++i) {
      metrics::Labels l = DeviceBaseLabels(d.labels);
      l.emplace_back("op", IoOpName(static_cast<IoOp>(i)));
      w.Histogram(l, d.io.ops[i].latency);
    }
  }

  w.Family("rbdnbd_device_errors_total", "Requests answered with an error, by op and errno.", metrics::Type::kCounter);
  for (const DeviceSample& d : devices) {
    for (size_t i = 0; i < kIoOpCount; ++i) {
      for (size_t e = 0; e < kErrnoSlots; ++e) {
        uint64_t n = d.io.ops[i].errors[e];
        if (n == 0) continue;
        std::string errno_name = metrics::ErrnoLabel(static_cast<int>(e));
        metrics::Labels l = DeviceBaseLabels(d.labels);
        l.emplace_back("op", IoOpName(static_cast<IoOp>(i)));
        l.emplace_back("errno", errno_name);
        w.Sample(l, n);
      }
    }
  }

  auto gauge = [&](std::string_view name, std::string_view help, auto value) {
    w.Family(name, help, metrics::Type::kGauge);
    for (const DeviceSample& d : devices) w.Sample(DeviceBaseLabels(d.labels), value(d));
  };
  gauge("rbdnbd_device_inflight_requests", "Requests submitted to the backend, not yet done.",
        [](const DeviceSample& d) { return static_cast<double>(std::max<int64_t>(d.io.inflight, 0)); });
  gauge("rbdnbd_device_connections", "Live connections (kernel sockets, or clients for serve).",
        [](const DeviceSample& d) { return static_cast<double>(d.io.connections); });
  gauge("rbdnbd_device_last_completion_timestamp_seconds",
        "Unix time of the last completed request (0: none yet).",
        [](const DeviceSample& d) { return IoStatsSnapshot::ToUnixSeconds(d.io.last_completion_ns); });

  bool daemon = std::any_of(devices.begin(), devices.end(), [](const DeviceSample& d) { return d.daemon.has_value(); });
  if (!daemon) return;
  w.Family("rbdnbd_device_configured_connections", "Connections the device was mapped with.", metrics::Type::kGauge);
  for (const DeviceSample& d : devices) {
    if (d.daemon) w.Sample(DeviceBaseLabels(d.labels), d.daemon->configured_connections);
  }
  w.Family("rbdnbd_device_reattaches_total", "Reattaches completed.", metrics::Type::kCounter);
  for (const DeviceSample& d : devices) {
    if (d.daemon) w.Sample(DeviceBaseLabels(d.labels), d.daemon->reattaches);
  }
  w.Family("rbdnbd_device_stalled_seconds_total", "Seconds spent waiting for a reattach.", metrics::Type::kCounter);
  for (const DeviceSample& d : devices) {
    if (d.daemon) w.Sample(DeviceBaseLabels(d.labels), d.daemon->stalled_seconds);
  }
}

}  // namespace rbdnbd
