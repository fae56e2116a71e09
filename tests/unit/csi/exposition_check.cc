#include "exposition_check.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#ifndef RBDNBD_SOURCE_DIR
#error "RBDNBD_SOURCE_DIR must name the source tree"
#endif

namespace rbdnbd::csi::testing {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// `{a="x",b="y\"z"}` from position `i` (at '{'); false on bad syntax.
bool ParseLabels(const std::string& line, size_t& i, std::map<std::string, std::string>* labels) {
  ++i;  // '{'
  while (i < line.size() && line[i] != '}') {
    size_t eq = line.find('=', i);
    if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
    std::string name = line.substr(i, eq - i);
    std::string value;
    size_t j = eq + 2;
    for (; j < line.size() && line[j] != '"'; ++j) {
      if (line[j] == '\\' && j + 1 < line.size()) {
        ++j;
        value += line[j] == 'n' ? '\n' : line[j];
      } else {
        value += line[j];
      }
    }
    if (j >= line.size()) return false;
    (*labels)[name] = value;
    i = j + 1;
    if (i < line.size() && line[i] == ',') ++i;
  }
  if (i >= line.size()) return false;
  ++i;  // '}'
  return true;
}

}  // namespace

Exposition ParseExposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      e.types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) {
      e.errors.push_back(line);
      continue;
    }
    s.name = line.substr(0, i);
    if (line[i] == '{' && !ParseLabels(line, i, &s.labels)) {
      e.errors.push_back(line);
      continue;
    }
    std::string value = Trim(line.substr(i));
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (value.empty() || end == value.c_str() || *end != '\0') {
      e.errors.push_back(line);
      continue;
    }
    e.samples.push_back(std::move(s));
  }
  return e;
}

std::optional<double> Value(const Exposition& e, const std::string& name,
                            const std::map<std::string, std::string>& labels) {
  std::optional<double> found;
  for (const Sample& s : e.samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (!match) continue;
    if (found) return std::nullopt;  // ambiguous: the caller named too few labels
    found = s.value;
  }
  return found;
}

std::map<std::string, ContractFamily> ContractSection(const std::string& metrics_md_path, const std::string& section) {
  std::map<std::string, ContractFamily> out;
  std::ifstream in(metrics_md_path);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      inside = Trim(line.substr(3)).rfind(section, 0) == 0;
      continue;
    }
    if (!inside || line.rfind("| rbdnbd_", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    std::string cell;
    while (std::getline(row, cell, '|')) cells.push_back(Trim(cell));
    if (cells.size() < 3) continue;
    ContractFamily f;
    f.type = cells[1];
    std::istringstream labels(cells[2]);
    std::string label;
    while (std::getline(labels, label, ',')) {
      label = Trim(label);
      if (!label.empty()) f.labels.insert(label);
    }
    out[cells[0]] = f;
  }
  return out;
}

std::string MetricsContractPath() { return std::string(RBDNBD_SOURCE_DIR) + "/gateway/metrics/METRICS.md"; }

}  // namespace rbdnbd::csi::testing
