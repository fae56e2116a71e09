// RbdOpPlan: which librbd calls one NBD request becomes.
//
// Contract: PlanRbdOps() is pure (no librbd, no I/O, any thread); RbdBackend
// runs the plan's steps one after another on the request's loop, the next one
// only after the previous one completed successfully, and completes the
// request with the first failure or after the last step. Kept apart from the
// backend so that the rules (the FUA one above all) are unit-tested without a
// cluster.
//
//   NBD request              librbd calls, in order
//   READ                     rbd_aio_read (short reads zero-padded by the backend)
//   WRITE [FUA]              rbd_aio_write            [, rbd_aio_flush]
//   TRIM [FUA]               rbd_aio_discard          [, rbd_aio_flush]
//   WRITE_ZEROES [FUA]       rbd_aio_write_zeroes     [, rbd_aio_flush]
//   WRITE_ZEROES NO_HOLE     rbd_aio_write_zeroes with RBD_WRITE_ZEROES_FLAG_THICK_PROVISION
//   FLUSH                    rbd_aio_flush
//   CACHE                    nothing (never advertised; completes at once)
//
// FUA is a second call because librbd has no per-request FUA: backend.h
// promises that a FUA request is durable when it completes, and a flush after
// the op is the only way librbd offers (rbd-nbd does the same for writes).
#pragma once

#include <array>
#include <cstdint>

#include "backend/backend.h"

namespace rbdnbd {

enum class RbdOp : uint8_t {
  kRead,
  kWrite,
  kDiscard,
  kWriteZeroes,       // may leave holes (thin)
  kWriteZeroesThick,  // NO_HOLE: allocate the zeroes
  kFlush,
};

struct RbdOpPlan {
  std::array<RbdOp, 2> ops{};
  uint8_t count = 0;  // 0: nothing to do, complete at once

  constexpr bool operator==(const RbdOpPlan& o) const {
    for (uint8_t i = 0; i < count; i++) {
      if (ops[i] != o.ops[i]) return false;
    }
    return count == o.count;
  }
};

constexpr RbdOpPlan PlanRbdOps(IoType type, uint32_t flags) {
  RbdOpPlan plan;
  auto add = [&plan](RbdOp op) { plan.ops[plan.count++] = op; };
  bool data_changing = false;
  switch (type) {
    case IoType::kRead: add(RbdOp::kRead); break;
    case IoType::kWrite: add(RbdOp::kWrite); data_changing = true; break;
    case IoType::kTrim: add(RbdOp::kDiscard); data_changing = true; break;
    case IoType::kWriteZeroes:
      add((flags & kIoNoHole) ? RbdOp::kWriteZeroesThick : RbdOp::kWriteZeroes);
      data_changing = true;
      break;
    case IoType::kFlush: add(RbdOp::kFlush); break;
    case IoType::kCache: break;
  }
  if (data_changing && (flags & kIoFua)) add(RbdOp::kFlush);
  return plan;
}

}  // namespace rbdnbd
