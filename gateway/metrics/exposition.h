// TextWriter: the Prometheus text exposition format (version 0.0.4), written by hand:
// HELP/TYPE lines once per family, samples with escaped label values, histograms as
// cumulative _bucket{le=...} series plus _sum and _count.
//
// Contract: pure (no I/O, no globals); one writer per scrape, on the scraping thread.
// Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]*
// (asserted: they are the program's own constants). Label VALUES are escaped (\\, \",
// \n) and may be anything. Every family's samples must be written right after its
// Family() call, as the format requires; a family with no sample is still valid.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "metrics/stat_cells.h"

namespace rbdnbd::metrics {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

enum class Type { kCounter, kGauge, kHistogram };

class TextWriter {
 public:
  // Starts a family: "# HELP name help" and "# TYPE name type".
  void Family(std::string_view name, std::string_view help, Type type);
  // One sample of the current counter or gauge family: name{labels} value. The
  // integer overload prints exactly (no exponent); the double one as Prometheus
  // parses it (shortest round-trip form, +Inf/-Inf/NaN).
  void Sample(const Labels& labels, double value);
  void Sample(const Labels& labels, uint64_t value);
  void Sample(const Labels& labels, int64_t value);  // a Gauge's value (asserted >= 0 for a counter)
  // Any other integer type (int, unsigned, size_t, ...): exact, as above. Without it
  // Sample(labels, 1) would be ambiguous between the overloads.
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, int64_t> && !std::same_as<T, uint64_t>)
  void Sample(const Labels& labels, T value) {
    if constexpr (std::is_signed_v<T>) {
      Sample(labels, static_cast<int64_t>(value));
    } else {
      Sample(labels, static_cast<uint64_t>(value));
    }
  }
  // One histogram of the current histogram family, under `labels` (le is added).
  // Buckets are written cumulative, the +Inf one being the total of h.buckets; _count
  // is h.count, equal to that total for a LatencyHistogram::Snapshot() (or a sum of
  // them).
  void Histogram(const Labels& labels, const HistogramSnapshot& h);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void WriteLabels(const Labels& labels, std::string_view extra_name = {}, std::string_view extra_value = {});
  std::string out_;
  std::string family_;  // the current family
  Type type_ = Type::kCounter;
  std::set<std::string, std::less<>> families_;  // written so far (each only once)
};

// Escapes a label value for the text format (\\ \" \n).
std::string EscapeLabelValue(std::string_view v);

}  // namespace rbdnbd::metrics
