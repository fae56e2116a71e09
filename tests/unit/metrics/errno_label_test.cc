#include "metrics/errno_label.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

namespace rbdnbd::metrics {
namespace {

TEST(ErrnoLabelTest, NamedErrnosAreTheirSymbols) {
  EXPECT_EQ(ErrnoLabel(EIO), "EIO");
  EXPECT_EQ(ErrnoLabel(ENOENT), "ENOENT");
  EXPECT_EQ(ErrnoLabel(ESHUTDOWN), "ESHUTDOWN");
  EXPECT_EQ(ErrnoLabel(EHWPOISON), "EHWPOISON");
}

TEST(ErrnoLabelTest, PositiveErrnoWithoutASymbolIsItsNumber) {
  // 41 and 58 are holes in Linux's errno table (EWOULDBLOCK/EDEADLOCK alias others).
  EXPECT_EQ(ErrnoLabel(41), "E41");
  EXPECT_EQ(ErrnoLabel(58), "E58");
}

TEST(ErrnoLabelTest, AnythingElseIsUnknown) {
  EXPECT_EQ(ErrnoLabel(0), "EUNKNOWN");
  EXPECT_EQ(ErrnoLabel(-EIO), "EUNKNOWN");
  EXPECT_EQ(ErrnoLabel(kErrnoLabelLimit), "EUNKNOWN");
  EXPECT_EQ(ErrnoLabel(99999), "EUNKNOWN");
}

TEST(ErrnoLabelTest, TheLabelSetIsFixedAndDistinct) {
  // Every value maps into a set of kErrnoLabelLimit labels (one per slot, slot 0 the
  // unknown one), so a metric family's cardinality is bounded, and no two errnos share one.
  std::set<std::string> labels;
  for (int e = 0; e < kErrnoLabelLimit; e++) labels.insert(ErrnoLabel(e));
  EXPECT_EQ(labels.size(), static_cast<size_t>(kErrnoLabelLimit));
  for (const std::string& l : labels) {
    ASSERT_FALSE(l.empty());
    EXPECT_EQ(l[0], 'E') << l;
  }
}

}  // namespace
}  // namespace rbdnbd::metrics
