// The librbd calls each NBD request becomes (rbd/rbd_op_plan.h): above all,
// that every data-changing request with FUA ends with a flush, since librbd
// has no FUA of its own.
#include "rbd/rbd_op_plan.h"

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

RbdOpPlan Plan(std::initializer_list<RbdOp> ops) {
  RbdOpPlan p;
  for (RbdOp op : ops) p.ops[p.count++] = op;
  return p;
}

TEST(RbdOpPlanTest, EveryRequestTypeAndFlagCombination) {
  struct Case {
    IoType type;
    uint32_t flags;
    RbdOpPlan want;
  };
  const Case cases[] = {
      {IoType::kRead, 0, Plan({RbdOp::kRead})},
      {IoType::kWrite, 0, Plan({RbdOp::kWrite})},
      {IoType::kWrite, kIoFua, Plan({RbdOp::kWrite, RbdOp::kFlush})},
      {IoType::kTrim, 0, Plan({RbdOp::kDiscard})},
      {IoType::kTrim, kIoFua, Plan({RbdOp::kDiscard, RbdOp::kFlush})},
      {IoType::kWriteZeroes, 0, Plan({RbdOp::kWriteZeroes})},
      {IoType::kWriteZeroes, kIoFua, Plan({RbdOp::kWriteZeroes, RbdOp::kFlush})},
      {IoType::kWriteZeroes, kIoNoHole, Plan({RbdOp::kWriteZeroesThick})},
      {IoType::kWriteZeroes, kIoNoHole | kIoFua, Plan({RbdOp::kWriteZeroesThick, RbdOp::kFlush})},
      {IoType::kFlush, 0, Plan({RbdOp::kFlush})},
      {IoType::kCache, 0, Plan({})},
  };
  for (const Case& c : cases) {
    RbdOpPlan got = PlanRbdOps(c.type, c.flags);
    EXPECT_EQ(got, c.want) << IoTypeName(c.type) << " flags " << c.flags << ": " << int(got.count) << " op(s)";
  }
}

TEST(RbdOpPlanTest, FuaOnARequestThatChangesNothingAddsNoFlush) {
  // The frontend only sends FUA on writes, trims and zeroes; a stray one on a
  // read or a flush must not double the librbd calls.
  EXPECT_EQ(PlanRbdOps(IoType::kRead, kIoFua), Plan({RbdOp::kRead}));
  EXPECT_EQ(PlanRbdOps(IoType::kFlush, kIoFua), Plan({RbdOp::kFlush}));
  EXPECT_EQ(PlanRbdOps(IoType::kCache, kIoFua), Plan({}));
}

TEST(RbdOpPlanTest, NoHoleOnlyChangesWriteZeroes) {
  EXPECT_EQ(PlanRbdOps(IoType::kTrim, kIoNoHole), Plan({RbdOp::kDiscard}));
  EXPECT_EQ(PlanRbdOps(IoType::kWrite, kIoNoHole), Plan({RbdOp::kWrite}));
}

}  // namespace
}  // namespace rbdnbd
