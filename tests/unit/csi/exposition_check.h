// Reading a /metrics body and gateway/metrics/METRICS.md in tests: the
// families and samples of a Prometheus text exposition, and the contract's
// table for one section, so tests can check that the names, types and labels
// a binary serves are exactly the documented ones. Test code only.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rbdnbd::csi::testing {

struct Sample {
  std::string name;  // as written: a histogram's are NAME_bucket, NAME_sum, NAME_count
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram
  std::vector<Sample> samples;
  std::vector<std::string> errors;           // lines that did not parse
};

Exposition ParseExposition(const std::string& text);

// The value of the one sample named `name` whose labels include `labels`;
// nullopt when none matches (a test failure when several do).
std::optional<double> Value(const Exposition& e, const std::string& name,
                            const std::map<std::string, std::string>& labels = {});

struct ContractFamily {
  std::string type;
  std::set<std::string> labels;
};

// The table under the METRICS.md heading that starts "## `section`" (e.g.
// "CSI plugins"):
// name -> type and labels. Empty when the file or the section is missing.
std::map<std::string, ContractFamily> ContractSection(const std::string& metrics_md_path, const std::string& section);

// gateway/metrics/METRICS.md of this source tree.
std::string MetricsContractPath();

}  // namespace rbdnbd::csi::testing
