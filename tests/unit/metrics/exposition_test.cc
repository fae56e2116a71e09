// TextWriter against exact expected text (the Prometheus text format 0.0.4), the
// stat cells it prints, and the writer's asserts on names it must never emit.
#include "metrics/exposition.h"

#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "metrics/stat_cells.h"

namespace rbdnbd::metrics {
namespace {

TEST(TextWriterTest, CounterFamilyWithHelpTypeAndLabelledSamples) {
  TextWriter w;
  w.Family("rbdnbd_device_ops_total", "requests completed", Type::kCounter);
  w.Sample({{"device", "nbd3"}, {"op", "read"}}, uint64_t{42});
  w.Sample({{"device", "nbd3"}, {"op", "write"}}, uint64_t{0});
  EXPECT_EQ(w.text(),
            "# HELP rbdnbd_device_ops_total requests completed\n"
            "# TYPE rbdnbd_device_ops_total counter\n"
            "rbdnbd_device_ops_total{device=\"nbd3\",op=\"read\"} 42\n"
            "rbdnbd_device_ops_total{device=\"nbd3\",op=\"write\"} 0\n");
}

TEST(TextWriterTest, SampleWithoutLabelsHasNoBraces) {
  TextWriter w;
  w.Family("rbdnbd_uptime_seconds", "seconds since the process started", Type::kGauge);
  w.Sample({}, 12.5);
  EXPECT_EQ(w.text(),
            "# HELP rbdnbd_uptime_seconds seconds since the process started\n"
            "# TYPE rbdnbd_uptime_seconds gauge\n"
            "rbdnbd_uptime_seconds 12.5\n");
}

TEST(TextWriterTest, IntegersPrintExactlyWithoutExponent) {
  TextWriter w;
  w.Family("big_total", "h", Type::kCounter);
  w.Sample({}, std::numeric_limits<uint64_t>::max());
  w.Sample({{"a", "b"}}, 1);            // int: through the integral template
  w.Sample({{"a", "c"}}, size_t{1} << 40);
  w.Family("g", "h", Type::kGauge);
  w.Sample({}, int64_t{-7});            // a Gauge's Value()
  w.Sample({{"x", "y"}}, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(w.text(),
            "# HELP big_total h\n# TYPE big_total counter\n"
            "big_total 18446744073709551615\n"
            "big_total{a=\"b\"} 1\n"
            "big_total{a=\"c\"} 1099511627776\n"
            "# HELP g h\n# TYPE g gauge\n"
            "g -7\n"
            "g{x=\"y\"} -9223372036854775808\n");
}

TEST(TextWriterTest, DoublesInShortestRoundTripFormAndPrometheusSpecials) {
  TextWriter w;
  w.Family("g", "h", Type::kGauge);
  w.Sample({}, 0.1);
  w.Sample({}, 1.0);
  w.Sample({}, 0.0);
  w.Sample({}, -2.5);
  w.Sample({}, 1e20);
  w.Sample({}, 2.5e-05);
  w.Sample({}, 1.0 / 3.0);
  w.Sample({}, std::numeric_limits<double>::infinity());
  w.Sample({}, -std::numeric_limits<double>::infinity());
  w.Sample({}, std::nan(""));
  EXPECT_EQ(w.text(),
            "# HELP g h\n# TYPE g gauge\n"
            "g 0.1\n"
            "g 1\n"
            "g 0\n"
            "g -2.5\n"
            "g 1e+20\n"
            "g 2.5e-05\n"
            "g 0.3333333333333333\n"
            "g +Inf\n"
            "g -Inf\n"
            "g NaN\n");
}

TEST(TextWriterTest, EscapesLabelValuesAndHelpText) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain µs, {x}=y"), "plain µs, {x}=y");
  TextWriter w;
  // HELP escapes only backslash and newline; quotes stay.
  w.Family("f_total", "a \"quoted\" back\\slash\nsecond line", Type::kCounter);
  w.Sample({{"image", "we\"ird\\name\n"}, {"pool", ""}}, uint64_t{1});
  EXPECT_EQ(w.text(),
            "# HELP f_total a \"quoted\" back\\\\slash\\nsecond line\n"
            "# TYPE f_total counter\n"
            "f_total{image=\"we\\\"ird\\\\name\\n\",pool=\"\"} 1\n");
}

TEST(TextWriterTest, EmptyHelpAndEmptyFamily) {
  TextWriter w;
  w.Family("a", "", Type::kGauge);
  w.Family("b", "h", Type::kCounter);
  EXPECT_EQ(w.text(), "# HELP a\n# TYPE a gauge\n# HELP b h\n# TYPE b counter\n");
}

TEST(TextWriterTest, HistogramIsCumulativeWithFixedNotationBoundsSumAndCount) {
  LatencyHistogram hist;
  hist.Observe(25'000);         // exactly 25 µs: le="0.000025" (le is inclusive)
  hist.Observe(25'001);         // just above: the 50 µs bucket
  hist.Observe(3'000'000);      // 3 ms: le="0.005"
  hist.Observe(60'000'000'000); // 60 s: only +Inf
  const HistogramSnapshot snap = hist.Snapshot();
  EXPECT_EQ(snap.count, 4u);

  TextWriter w;
  w.Family("rbdnbd_device_op_duration_seconds", "request latency", Type::kHistogram);
  w.Histogram({{"device", "nbd0"}, {"op", "read"}}, snap);
  const std::string p = "rbdnbd_device_op_duration_seconds_bucket{device=\"nbd0\",op=\"read\",le=\"";
  const std::string expected =
      "# HELP rbdnbd_device_op_duration_seconds request latency\n"
      "# TYPE rbdnbd_device_op_duration_seconds histogram\n" +
      p + "0.000025\"} 1\n" + p + "0.00005\"} 2\n" + p + "0.0001\"} 2\n" + p + "0.00025\"} 2\n" + p +
      "0.0005\"} 2\n" + p + "0.001\"} 2\n" + p + "0.0025\"} 2\n" + p + "0.005\"} 3\n" + p + "0.01\"} 3\n" + p +
      "0.025\"} 3\n" + p + "0.05\"} 3\n" + p + "0.1\"} 3\n" + p + "0.25\"} 3\n" + p + "0.5\"} 3\n" + p +
      "1\"} 3\n" + p + "2.5\"} 3\n" + p + "5\"} 3\n" + p + "10\"} 3\n" + p + "20\"} 3\n" + p + "30\"} 3\n" + p +
      "+Inf\"} 4\n"
      "rbdnbd_device_op_duration_seconds_sum{device=\"nbd0\",op=\"read\"} 60.003050001\n"
      "rbdnbd_device_op_duration_seconds_count{device=\"nbd0\",op=\"read\"} 4\n";
  EXPECT_EQ(w.text(), expected);
}

TEST(TextWriterTest, HistogramWithoutLabelsGetsOnlyLe) {
  TextWriter w;
  w.Family("h_seconds", "x", Type::kHistogram);
  w.Histogram({}, HistogramSnapshot{});
  const std::string& t = w.text();
  EXPECT_NE(t.find("\nh_seconds_bucket{le=\"0.000025\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nh_seconds_bucket{le=\"+Inf\"} 0\nh_seconds_sum 0\nh_seconds_count 0\n"), std::string::npos) << t;
}

TEST(TextWriterTest, TakeMovesTheTextOut) {
  TextWriter w;
  w.Family("a", "h", Type::kGauge);
  w.Sample({}, 1);
  EXPECT_EQ(w.Take(), "# HELP a h\n# TYPE a gauge\na 1\n");
}

TEST(StatCellsTest, CounterAndGaugeAreSingleWriterValues) {
  Counter c;
  c.Add();
  c.Add(41);
  EXPECT_EQ(c.Value(), 42u);
  Gauge g;
  g.Set(5);
  g.Add(-7);
  EXPECT_EQ(g.Value(), -2);
}

TEST(StatCellsTest, EachBoundLandsInItsOwnBucketAndOneNanosecondMoreInTheNext) {
  for (size_t i = 0; i < kLatencyBounds.size(); ++i) {
    LatencyHistogram h;
    h.Observe(kLatencyBoundsNs[i]);
    h.Observe(kLatencyBoundsNs[i] + 1);
    const auto s = h.Snapshot();
    EXPECT_EQ(s.buckets[i], 1u) << kLatencyBounds[i];
    EXPECT_EQ(s.buckets[i + 1], 1u) << kLatencyBounds[i];
    EXPECT_EQ(s.count, 2u);
  }
  EXPECT_EQ(kLatencyBoundsNs.front(), 25'000u);
  EXPECT_EQ(kLatencyBoundsNs.back(), 30'000'000'000u);
}

TEST(StatCellsTest, SnapshotsSumBucketByBucket) {
  LatencyHistogram a, b;
  a.Observe(1'000);
  b.Observe(1'000);
  b.Observe(2'000'000'000);
  HistogramSnapshot s = a.Snapshot();
  s += b.Snapshot();
  EXPECT_EQ(s.buckets[0], 2u);
  EXPECT_EQ(s.buckets[15], 1u);  // le=2.5
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 2.000002);
}

// The writer asserts what would make the whole scrape unparseable; the project keeps
// asserts in every build its tests run.
TEST(TextWriterDeathTest, RejectsInvalidNamesAndMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(TextWriter().Family("bad-name", "h", Type::kGauge), "ValidMetricName");
  EXPECT_DEATH(TextWriter().Family("0abc", "h", Type::kGauge), "ValidMetricName");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a", "h", Type::kGauge);
        w.Family("a", "h", Type::kGauge);
      },
      "inserted");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a", "h", Type::kGauge);
        w.Sample({{"bad label", "v"}}, 1);
      },
      "ValidLabelName");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a", "h", Type::kGauge);
        w.Sample({{"__name__", "v"}}, 1);
      },
      "ValidLabelName");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a", "h", Type::kGauge);
        w.Sample({{"x", "1"}, {"x", "2"}}, 1);
      },
      "none_of");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a_seconds", "h", Type::kHistogram);
        w.Histogram({{"le", "1"}}, HistogramSnapshot{});
      },
      "le");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a_seconds", "h", Type::kHistogram);
        w.Sample({}, 1.0);
      },
      "kHistogram");
  EXPECT_DEATH(TextWriter().Sample({}, 1.0), "family_");
  EXPECT_DEATH(
      {
        TextWriter w;
        w.Family("a_total", "h", Type::kCounter);
        w.Sample({}, int64_t{-1});
      },
      "kCounter");
}

}  // namespace
}  // namespace rbdnbd::metrics
