// The writer's output, checked by Prometheus's own parser and linter: `promtool check
// metrics` (Debian's prometheus package) on every metric type, on the escapes and
// special values, and on every family of the contract (METRICS.md) with its labels.
// Any complaint fails the test. Without promtool the test skips, unless CI=true.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/exposition.h"
#include "metrics/stat_cells.h"

namespace rbdnbd::metrics {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunShell(const std::string& command) {
  CommandResult r;
  FILE* f = ::popen(command.c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.output.append(buf, n);
  const int status = ::pclose(f);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// "" when promtool is not installed.
std::string FindPromtool() {
  std::string path = RunShell("command -v promtool 2>/dev/null").output;
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  return path;
}

class PromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = FindPromtool();
    if (promtool_.empty()) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "promtool is not installed (CI=true: install the prometheus package)";
      }
      GTEST_SKIP() << "promtool is not installed (the prometheus package)";
    }
  }

  // Runs promtool on `text`; an empty string means it had nothing to say.
  std::string Check(const std::string& text) {
    char path[] = "/tmp/metrics_promtool_XXXXXX";
    const int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    if (fd < 0) return "mkstemp failed";
    EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    const CommandResult r = RunShell(promtool_ + " check metrics < " + path + " 2>&1");
    ::unlink(path);
    if (r.exit_code != 0 || !r.output.empty()) {
      return "exit " + std::to_string(r.exit_code) + ": " + r.output;
    }
    return "";
  }

  std::string promtool_;
};

TEST_F(PromtoolTest, AcceptsEveryMetricTypeEscapeAndSpecialValue) {
  LatencyHistogram lat;
  for (uint64_t ns : {10'000ull, 25'000ull, 700'000ull, 3'000'000'000ull, 90'000'000'000ull}) lat.Observe(ns);

  TextWriter w;
  w.Family("rbdnbd_test_ops_total", "ops with \\ and \"quotes\"\nand a second line", Type::kCounter);
  w.Sample({{"device", "nbd0"}, {"op", "read"}}, uint64_t{12});
  w.Sample({{"device", "we\"ird\\dev\nice"}, {"op", "write"}}, std::numeric_limits<uint64_t>::max());
  w.Family("rbdnbd_test_stalled_seconds_total", "a float counter", Type::kCounter);
  w.Sample({}, 1.25);
  w.Family("rbdnbd_test_inflight_requests", "a gauge", Type::kGauge);
  w.Sample({{"device", "nbd0"}}, int64_t{-3});
  w.Sample({{"device", "nbd1"}}, std::numeric_limits<double>::infinity());
  w.Sample({{"device", "nbd2"}}, -std::numeric_limits<double>::infinity());
  w.Sample({{"device", "nbd3"}}, std::nan(""));
  w.Sample({{"device", "nbd4"}}, 1e-300);
  w.Sample({{"device", "nbd5"}}, 6.02e23);
  w.Family("rbdnbd_test_empty", "a family with no sample", Type::kGauge);
  w.Family("rbdnbd_test_op_duration_seconds", "a histogram", Type::kHistogram);
  w.Histogram({{"device", "nbd0"}, {"op", "read"}}, lat.Snapshot());
  w.Histogram({{"device", "nbd0"}, {"op", "write"}}, HistogramSnapshot{});
  w.Family("rbdnbd_test_unlabelled_duration_seconds", "a histogram without labels", Type::kHistogram);
  w.Histogram({}, lat.Snapshot());
  EXPECT_EQ(Check(w.text()), "") << w.text();
}

TEST_F(PromtoolTest, ComplainsAboutABrokenExposition) {
  // The check itself must be able to fail, or the test above proves nothing.
  EXPECT_NE(Check("# TYPE a counter\na{x=\"unterminated} 1\n"), "");
  EXPECT_NE(Check("# HELP rbdnbd_x counter without _total\n# TYPE rbdnbd_x counter\nrbdnbd_x 1\n"), "");
}

// Every family of METRICS.md, with the labels it lists: the contract's names pass
// promtool's lint (naming, units, _total), and the writer can express them.
TEST_F(PromtoolTest, AcceptsEveryFamilyOfTheContract) {
  std::ifstream md(RBDNBD_METRICS_MD);
  ASSERT_TRUE(md) << RBDNBD_METRICS_MD;
  const std::vector<std::string> per_device = {"device", "pool", "rados_namespace", "image"};
  std::set<std::string> seen;
  std::vector<std::string> storage;  // label names, kept alive for the string_views
  storage.reserve(1000);
  TextWriter w;
  bool device_section = false;
  std::string line;
  int families = 0;
  while (std::getline(md, line)) {
    if (line.starts_with("## ")) device_section = line.starts_with("## Per device");
    if (!line.starts_with("| rbdnbd_")) continue;
    std::vector<std::string> cols;
    std::stringstream ss(line.substr(1));
    std::string col;
    while (std::getline(ss, col, '|')) {
      const auto b = col.find_first_not_of(' ');
      const auto e = col.find_last_not_of(' ');
      cols.push_back(b == std::string::npos ? "" : col.substr(b, e - b + 1));
    }
    ASSERT_GE(cols.size(), 4u) << line;
    const std::string& name = cols[0];
    if (!seen.insert(name).second) continue;  // build_info and uptime: listed twice
    Labels labels;
    if (device_section) {
      for (const auto& l : per_device) labels.emplace_back(l, "x");
    }
    std::stringstream ls(cols[2]);
    std::string label;
    while (std::getline(ls, label, ',')) {
      const auto b = label.find_first_not_of(' ');
      if (b == std::string::npos) continue;
      storage.push_back(label.substr(b, label.find_last_not_of(' ') - b + 1));
      labels.emplace_back(storage.back(), "v");
    }
    const std::string& type = cols[1];
    if (type == "counter") {
      w.Family(name, cols[3], Type::kCounter);
      w.Sample(labels, uint64_t{1});
    } else if (type == "gauge") {
      w.Family(name, cols[3], Type::kGauge);
      w.Sample(labels, 1.5);
    } else {
      ASSERT_EQ(type, "histogram") << line;
      w.Family(name, cols[3], Type::kHistogram);
      LatencyHistogram h;
      h.Observe(1'000'000);
      w.Histogram(labels, h.Snapshot());
    }
    ++families;
  }
  EXPECT_GE(families, 17);  // 19 rows, build_info and uptime twice
  EXPECT_EQ(Check(w.text()), "") << w.text();
}

}  // namespace
}  // namespace rbdnbd::metrics
