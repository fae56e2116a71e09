#include "metrics/exposition.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <system_error>

namespace rbdnbd::metrics {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool ValidMetricName(std::string_view n) {
  if (n.empty() || !(IsNameStart(n[0]) || n[0] == ':')) return false;
  for (char c : n) {
    if (!(IsNameStart(c) || IsDigit(c) || c == ':')) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and not "__..." (reserved for Prometheus itself).
bool ValidLabelName(std::string_view n) {
  if (n.empty() || !IsNameStart(n[0]) || n.starts_with("__")) return false;
  for (char c : n) {
    if (!(IsNameStart(c) || IsDigit(c))) return false;
  }
  return true;
}

// HELP text escapes only backslash and newline (a quote stays as is).
void AppendEscapedHelp(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void AppendEscapedLabelValue(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Prometheus parses values with Go's strconv.ParseFloat, which takes any shortest
// round-trip form (1e+20, 2.5e-05) and spells infinities and NaN as below.
void AppendDouble(std::string& out, double v, std::chars_format format) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, format);
  assert(r.ec == std::errc());
  out.append(buf, r.ptr);
}

template <typename T>
void AppendInteger(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  assert(r.ec == std::errc());
  out.append(buf, r.ptr);
}

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  AppendEscapedLabelValue(out, v);
  return out;
}

void TextWriter::Family(std::string_view name, std::string_view help, Type type) {
  assert(ValidMetricName(name));
  // A family written twice is an error for every Prometheus parser.
  [[maybe_unused]] const bool inserted = families_.emplace(name).second;
  assert(inserted);
  family_.assign(name);
  type_ = type;
  out_ += "# HELP ";
  out_ += name;
  if (!help.empty()) {
    out_ += ' ';
    AppendEscapedHelp(out_, help);
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += TypeName(type);
  out_ += '\n';
}

void TextWriter::Sample(const Labels& labels, double value) {
  assert(!family_.empty() && type_ != Type::kHistogram);
  out_ += family_;
  WriteLabels(labels);
  out_ += ' ';
  AppendDouble(out_, value, std::chars_format::general);
  out_ += '\n';
}

void TextWriter::Sample(const Labels& labels, uint64_t value) {
  assert(!family_.empty() && type_ != Type::kHistogram);
  out_ += family_;
  WriteLabels(labels);
  out_ += ' ';
  AppendInteger(out_, value);
  out_ += '\n';
}

void TextWriter::Sample(const Labels& labels, int64_t value) {
  assert(!family_.empty() && type_ != Type::kHistogram);
  // A counter never goes down, so a negative one is a bug of the caller.
  assert(type_ != Type::kCounter || value >= 0);
  out_ += family_;
  WriteLabels(labels);
  out_ += ' ';
  AppendInteger(out_, value);
  out_ += '\n';
}

void TextWriter::Histogram(const Labels& labels, const HistogramSnapshot& h) {
  assert(!family_.empty() && type_ == Type::kHistogram);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    std::string le;
    if (i < kLatencyBounds.size()) {
      // Fixed notation, as client libraries print le (le="0.000025", not 2.5e-05).
      AppendDouble(le, kLatencyBounds[i], std::chars_format::fixed);
    } else {
      le = "+Inf";
    }
    out_ += family_;
    out_ += "_bucket";
    WriteLabels(labels, "le", le);
    out_ += ' ';
    AppendInteger(out_, cumulative);
    out_ += '\n';
  }
  out_ += family_;
  out_ += "_sum";
  WriteLabels(labels);
  out_ += ' ';
  AppendDouble(out_, h.sum_seconds, std::chars_format::general);
  out_ += '\n';
  out_ += family_;
  out_ += "_count";
  WriteLabels(labels);
  out_ += ' ';
  AppendInteger(out_, h.count);
  out_ += '\n';
}

void TextWriter::WriteLabels(const Labels& labels, std::string_view extra_name, std::string_view extra_value) {
  if (labels.empty() && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& [name, value] = labels[i];
    assert(ValidLabelName(name));
    assert(name != "le" || type_ != Type::kHistogram);  // the writer adds le itself
    assert(std::none_of(labels.begin(), labels.begin() + i, [&](const auto& l) { return l.first == labels[i].first; }));
    if (!first) out_ += ',';
    first = false;
    out_ += name;
    out_ += "=\"";
    AppendEscapedLabelValue(out_, value);
    out_ += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out_ += ',';
    out_ += extra_name;
    out_ += "=\"";
    AppendEscapedLabelValue(out_, extra_value);
    out_ += '"';
  }
  out_ += '}';
}

}  // namespace rbdnbd::metrics
