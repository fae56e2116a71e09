// Single-writer statistics cells: a counter, a gauge and a latency histogram that
// one thread updates and any thread reads.
//
// Contract
// --------
// * Exactly one thread writes a cell (an I/O cell: the EventLoop thread that owns the
//   connection); writes are a relaxed load + store, no read-modify-write, no lock, no
//   fence: on x86 a plain add to a cache line only that loop touches.
// * Any thread may read at any time (a /metrics scrape). A reader sees each cell's
//   value as of some recent moment; cells are not read as one atomic snapshot (a
//   histogram's count may be one ahead of its sum), which Prometheus tolerates.
// * Values only grow, except Gauge, so sums over cells of closed connections can be
//   folded into a total by the owner (Counter::Add of a final value).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rbdnbd::metrics {

class Counter {
 public:
  void Add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.store(v_.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  int64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Upper bounds (seconds) of the latency buckets every *_duration_seconds histogram of
// the project uses: 25 µs .. 30 s, plus +Inf. Fixed, so that histograms of different
// devices and connections sum bucket by bucket.
inline constexpr std::array<double, 20> kLatencyBounds = {
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,     0.1,     0.25,   0.5,     1.0,    2.5,   5.0,    10.0,  20.0,  30.0};

// The same bounds in whole nanoseconds, so that Observe() compares integers: in
// doubles 25000 * 1e-9 > 0.000025, which would put an observation of exactly 25 µs
// above the bucket whose bound (le: "less or equal") is 25 µs.
inline constexpr std::array<uint64_t, kLatencyBounds.size()> kLatencyBoundsNs = [] {
  std::array<uint64_t, kLatencyBounds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = static_cast<uint64_t>(kLatencyBounds[i] * 1e9 + 0.5);
  return ns;
}();

// A plain copy of a histogram, for sums and for the exposition writer.
struct HistogramSnapshot {
  std::array<uint64_t, kLatencyBounds.size() + 1> buckets{};  // per bucket, not cumulative; last = +Inf
  uint64_t count = 0;
  double sum_seconds = 0;
  HistogramSnapshot& operator+=(const HistogramSnapshot& o) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_seconds += o.sum_seconds;
    return *this;
  }
};

class LatencyHistogram {
 public:
  // Writer thread. `ns`: the observed latency in nanoseconds.
  void Observe(uint64_t ns) {
    size_t i = 0;
    while (i < kLatencyBoundsNs.size() && ns > kLatencyBoundsNs[i]) ++i;
    Bump(buckets_[i], 1);
    Bump(sum_ns_, ns);
  }
  // Any thread. count is the total of the buckets read, so the exposition's
  // le="+Inf" bucket and _count always agree (Prometheus expects them equal); only
  // the sum may be a few observations off.
  HistogramSnapshot Snapshot() const {
    HistogramSnapshot s;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += s.buckets[i];
    }
    // Divided, not multiplied by 1e-9: correctly rounded, so 60003050001 ns prints 60.003050001.
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  static void Bump(std::atomic<uint64_t>& a, uint64_t n) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace rbdnbd::metrics
