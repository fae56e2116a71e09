// I/O statistics of one device (a daemon's /dev/nbdX) or export (serve): the
// rbdnbd_device_* families of gateway/metrics/METRICS.md.
//
// Contract
// --------
// * IoCells: one connection's cells. Exactly one writer, the EventLoop thread
//   that owns the connection; every write is a relaxed load + store
//   (stat_cells.h), so the data path takes no lock and does no atomic
//   read-modify-write. Any thread may read them while they are registered.
// * DeviceIoStats: the cells of every live connection of one device, plus the
//   retired totals of the closed ones. Held by shared_ptr: by the Export
//   (Export::io_stats; every Connection built from that Export registers with
//   it) and by whoever scrapes. Its mutex is taken only by Open(), by a
//   handle's close, and by Snapshot(); never per request.
// * Open() (any thread; in practice the connection's loop thread, when the
//   connection enters transmission) registers fresh cells and returns the
//   handle that owns them. The handle must be destroyed on the writer's thread
//   (or after its last write happened-before): its destructor folds the final
//   values into the retired totals and unregisters the cells under the mutex,
//   so counters never go backwards when a connection closes.
// * Snapshot() (any thread) returns plain sums of the retired totals and the
//   live cells. Each cell is read as of some recent moment; a snapshot is not
//   one atomic cut (Prometheus tolerates that), but each counter is monotonic
//   from one snapshot to the next.
// * What a request counts. Connection calls Completed() when it queues the
//   reply, and Replied() when that reply is handed to the socket (the sendmsg
//   that carries it is submitted; or the reply is dropped with a dead socket):
//     ops_total[op]        every answered request of the five ops, success or error
//     bytes_total[op]      its length, on success only (flush: 0)
//     errors[op][errno]    replies carrying an NBD error, by the errno behind it
//     latency[op]          received -> reply handed to the socket, success or error
//     last completion      the time of the last Replied()
//     inflight             requests submitted to the backend, not yet done
//     last error           errno + time of the last error reply
//   "Received" is when the recv that brought the request's header completed (the
//   headers of one recv share one clock read), the reply time is one clock read
//   per sendmsg batch: at most two clock reads per batch of requests, never one
//   per request (a kvm-clock read costs ~100 ns under load). Between the two
//   calls a histogram's count may trail ops_total by the replies in transit.
//   CACHE and unknown commands are in none of the per-op families (the op
//   label is the fixed set of METRICS.md); DISC is not a request.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/errno_label.h"
#include "metrics/stat_cells.h"

namespace rbdnbd {

namespace metrics {
class TextWriter;
}

enum class IoOp : uint8_t { kRead = 0, kWrite, kFlush, kTrim, kWriteZeroes };
inline constexpr size_t kIoOpCount = 5;
// "read", "write", "flush", "trim", "write_zeroes" (the METRICS.md op label).
std::string_view IoOpName(IoOp op);
// An NBD command (nbd/protocol.h kCmd*) -> its op; nullopt for CACHE, DISC and
// unknown commands.
std::optional<IoOp> IoOpOfNbdCommand(uint16_t cmd);

// Errors are counted per errno 1..kErrnoSlots-1; slot 0 takes any other value. A
// slot's label is metrics::ErrnoLabel(slot) (slot 0: "EUNKNOWN").
inline constexpr size_t kErrnoSlots = metrics::kErrnoLabelLimit;

// CLOCK_MONOTONIC in ns (a vDSO read, ~20 ns). The clock of every time stamp here.
uint64_t MonotonicNowNs();

class IoCells {
 public:
  // Writer thread. One answered request of `op` (its reply queued): `err` is
  // 0 or a positive errno; `bytes` counts only when err == 0.
  void Completed(IoOp op, uint64_t bytes, int err) {
    PerOp& p = op_[static_cast<size_t>(op)];
    p.ops.Add();
    if (err == 0) {
      if (bytes != 0) p.bytes.Add(bytes);
    } else {
      RecordError(p, err);  // reads the clock: errors are rare
    }
  }
  // Writer thread. The reply of a Completed() request, received at
  // `received_ns`, was handed to the socket at `now_ns` (MonotonicNowNs).
  void Replied(IoOp op, uint64_t received_ns, uint64_t now_ns) {
    op_[static_cast<size_t>(op)].latency.Observe(now_ns > received_ns ? now_ns - received_ns : 0);
    last_completion_ns_.Set(static_cast<int64_t>(now_ns));
  }
  // Writer thread. Requests at the backend now.
  void SetInflight(int64_t n) { inflight_.Set(n); }

 private:
  friend class DeviceIoStats;
  struct PerOp {
    metrics::Counter ops;
    metrics::Counter bytes;
    metrics::LatencyHistogram latency;
    std::array<metrics::Counter, kErrnoSlots> errors;
  };
  void RecordError(PerOp& p, int err);

  std::array<PerOp, kIoOpCount> op_;
  metrics::Gauge inflight_;
  metrics::Gauge last_completion_ns_;
  metrics::Gauge last_error_ns_;
  metrics::Gauge last_error_errno_;
};

// Plain sums (no atomics): what Snapshot() returns and the retired totals.
struct IoOpTotals {
  uint64_t ops = 0;
  uint64_t bytes = 0;
  metrics::HistogramSnapshot latency;
  std::array<uint64_t, kErrnoSlots> errors{};  // by errno slot
};

struct IoStatsSnapshot {
  std::array<IoOpTotals, kIoOpCount> ops;
  int64_t inflight = 0;         // live connections only
  uint64_t connections = 0;     // live connections (registered cells)
  uint64_t last_completion_ns = 0;  // CLOCK_MONOTONIC; 0: none yet
  int last_error = 0;               // positive errno; 0: none yet
  uint64_t last_error_ns = 0;       // CLOCK_MONOTONIC; 0: none yet

  const IoOpTotals& op(IoOp o) const { return ops[static_cast<size_t>(o)]; }
  uint64_t errors_total() const;
  // A CLOCK_MONOTONIC time stamp of this snapshot as Unix seconds (0 stays 0).
  static double ToUnixSeconds(uint64_t monotonic_ns);
};

class DeviceIoStats;

// Owns one connection's cells while they are registered. Move-only; an empty
// handle (default) records nothing.
class IoStatsHandle {
 public:
  IoStatsHandle() = default;
  IoStatsHandle(IoStatsHandle&& o) noexcept;
  IoStatsHandle& operator=(IoStatsHandle&& o) noexcept;
  ~IoStatsHandle();  // writer thread: folds and unregisters

  IoCells* cells() const { return cells_.get(); }

 private:
  friend class DeviceIoStats;
  void Reset();
  std::shared_ptr<DeviceIoStats> owner_;
  std::unique_ptr<IoCells> cells_;
};

class DeviceIoStats : public std::enable_shared_from_this<DeviceIoStats> {
 public:
  static std::shared_ptr<DeviceIoStats> Create();
  DeviceIoStats(const DeviceIoStats&) = delete;
  DeviceIoStats& operator=(const DeviceIoStats&) = delete;

  // Any thread. Registers new cells for one connection.
  IoStatsHandle Open();
  // Any thread.
  IoStatsSnapshot Snapshot() const;

 private:
  friend class IoStatsHandle;
  DeviceIoStats() = default;
  void Close(std::unique_ptr<IoCells> cells);
  static void AddCells(const IoCells& c, IoStatsSnapshot* out);

  mutable std::mutex mu_;
  std::vector<IoCells*> live_;  // owned by their handles
  IoStatsSnapshot retired_;     // connections and inflight stay 0
};

// ----------------------------------------------------------------- exposition

// The labels of METRICS.md on every per-device series; pool, ns and image are
// empty for a non-RBD backend.
struct DeviceLabels {
  std::string device;  // daemon: "nbd3"; serve: the export name
  std::string pool;
  std::string ns;
  std::string image;
};

// The daemon-only per-device values (rbdnbd_device_configured_connections,
// _reattaches_total, _stalled_seconds_total), filled in by the daemon.
struct DaemonDeviceValues {
  uint64_t configured_connections = 0;
  uint64_t reattaches = 0;
  double stalled_seconds = 0;
};

struct DeviceSample {
  DeviceLabels labels;
  IoStatsSnapshot io;
  std::optional<DaemonDeviceValues> daemon;  // serve: nullopt
};

// Writes every rbdnbd_device_* family of METRICS.md for `devices` (each family
// once, with one series per device; errors only for non-zero (op, errno)
// pairs). The daemon-only families are written when any sample has `daemon`.
// Pure; the scraping thread.
void WriteDeviceFamilies(metrics::TextWriter& w, const std::vector<DeviceSample>& devices);

}  // namespace rbdnbd
