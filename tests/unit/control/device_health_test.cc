// DeviceVitals: the health a device reports (status, list-mapped, the CSI
// plugin's VolumeCondition) and its stall clock, driven with a fake clock and
// fake I/O snapshots.
#include "control/device_health.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

constexpr uint64_t kS = DeviceVitals::kSecondNs;
constexpr uint64_t kT0 = 1000 * kS;  // a monotonic "now" well past zero

IoStatsSnapshot Io(uint64_t errors = 0, int64_t inflight = 0, uint64_t last_completion_ns = 0) {
  IoStatsSnapshot io;
  io.ops[static_cast<size_t>(IoOp::kWrite)].errors[EIO] = errors;
  io.inflight = inflight;
  io.last_completion_ns = last_completion_ns;
  return io;
}

TEST(DeviceHealthTest, AFreshDeviceIsHealthyWithNoIoYet) {
  DeviceVitals v(kT0);
  api::DeviceHealth h = v.Health(api::DeviceState::kMapped, Io(), kT0 + 5 * kS);
  EXPECT_EQ(h.state, api::DeviceState::kMapped);
  EXPECT_EQ(h.last_error, "");
  EXPECT_EQ(h.last_error_time, 0u);
  EXPECT_EQ(h.seconds_since_last_io, -1);
  EXPECT_EQ(h.inflight, 0u);
  EXPECT_EQ(h.recent_errors, 0u);
  EXPECT_FALSE(h.stalled);
}

TEST(DeviceHealthTest, SecondsSinceLastIoCountsFromTheLastCompletion) {
  DeviceVitals v(kT0);
  api::DeviceHealth h = v.Health(api::DeviceState::kMapped, Io(0, 2, kT0 + 3 * kS), kT0 + 10 * kS + 400'000'000);
  EXPECT_EQ(h.seconds_since_last_io, 7);
  EXPECT_EQ(h.inflight, 2u);
  EXPECT_FALSE(h.stalled);  // 7 s without a completion is not 30
}

TEST(DeviceHealthTest, RequestsInFlightWithoutACompletionFor30sAreStalled) {
  DeviceVitals v(kT0);
  // Busy and completing, then nothing completes while 4 requests hang.
  v.Observe(Io(0, 4, kT0 + 1 * kS), false, kT0 + 1 * kS);
  for (uint64_t t = 2; t <= 30; t++) v.Observe(Io(0, 4, kT0 + 1 * kS), false, kT0 + t * kS);
  EXPECT_FALSE(v.Health(api::DeviceState::kMapped, Io(0, 4, kT0 + 1 * kS), kT0 + 30 * kS).stalled);
  EXPECT_TRUE(v.Health(api::DeviceState::kMapped, Io(0, 4, kT0 + 1 * kS), kT0 + 31 * kS).stalled);
  // One completion and the device is not stalled any more.
  EXPECT_FALSE(v.Health(api::DeviceState::kMapped, Io(0, 3, kT0 + 31 * kS), kT0 + 31 * kS).stalled);
}

TEST(DeviceHealthTest, ALongIdleDeviceThatGetsARequestIsNotStalled) {
  DeviceVitals v(kT0);
  // Last completion an hour ago, then idle looks every second...
  for (uint64_t t = 0; t <= 3600; t += 1) v.Observe(Io(0, 0, kT0), false, kT0 + t * kS);
  // ...and now one request is in flight: it is not 30 s old.
  EXPECT_FALSE(v.Health(api::DeviceState::kMapped, Io(0, 1, kT0), kT0 + 3601 * kS).stalled);
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(0, 1, kT0), kT0 + 3601 * kS).seconds_since_last_io, 3601);
}

TEST(DeviceHealthTest, ReattachingIsStalledWhateverTheIo) {
  DeviceVitals v(kT0);
  api::DeviceHealth h = v.Health(api::DeviceState::kReattaching, Io(), kT0);
  EXPECT_TRUE(h.stalled);
  EXPECT_EQ(h.state, api::DeviceState::kReattaching);
}

TEST(DeviceHealthTest, RecentErrorsAreThoseOfTheLast60Seconds) {
  DeviceVitals v(kT0);
  // 5 errors in the first 10 s, then 3 more at 100 s.
  for (uint64_t t = 1; t <= 10; t++) v.Observe(Io(t <= 5 ? t : 5), false, kT0 + t * kS);
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(5), kT0 + 10 * kS).recent_errors, 5u);
  for (uint64_t t = 11; t <= 99; t++) v.Observe(Io(5), false, kT0 + t * kS);
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(5), kT0 + 99 * kS).recent_errors, 0u);
  v.Observe(Io(8), false, kT0 + 100 * kS);
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(8), kT0 + 100 * kS).recent_errors, 3u);
  for (uint64_t t = 101; t <= 160; t++) v.Observe(Io(8), false, kT0 + t * kS);
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(8), kT0 + 160 * kS).recent_errors, 0u);
}

TEST(DeviceHealthTest, RecentErrorsOfAYoungDeviceCountFromItsStart) {
  DeviceVitals v(kT0);
  // No look at all yet (no sampler ran): everything since creation is recent.
  EXPECT_EQ(v.Health(api::DeviceState::kMapped, Io(4), kT0 + 2 * kS).recent_errors, 4u);
}

TEST(DeviceHealthTest, StallSecondsAddUpAndIncludeTheStallInProgress) {
  DeviceVitals v(kT0);
  EXPECT_EQ(v.StalledSeconds(kT0), 0.0);
  v.EnterStall(kT0 + 1 * kS);
  v.EnterStall(kT0 + 2 * kS);  // idempotent: the stall began at 1 s
  EXPECT_DOUBLE_EQ(v.StalledSeconds(kT0 + 4 * kS), 3.0);
  v.LeaveStall(kT0 + 5 * kS);
  v.LeaveStall(kT0 + 9 * kS);  // idempotent
  EXPECT_DOUBLE_EQ(v.StalledSeconds(kT0 + 9 * kS), 4.0);
  // A look that sees the device reattaching starts the next one.
  v.Observe(Io(), true, kT0 + 20 * kS);
  EXPECT_TRUE(v.stalling());
  EXPECT_DOUBLE_EQ(v.StalledSeconds(kT0 + 20 * kS + kS / 2), 4.5);
  v.Observe(Io(), false, kT0 + 22 * kS);
  EXPECT_FALSE(v.stalling());
  EXPECT_DOUBLE_EQ(v.StalledSeconds(kT0 + 100 * kS), 6.0);
}

TEST(DeviceHealthTest, LastErrorIsTheLaterOfAReattachFailureAndARequestError) {
  DeviceVitals v(kT0);
  v.SetControlError("cannot connect to the cluster: timed out", 1'700'000'000);
  api::DeviceHealth h = v.Health(api::DeviceState::kReattaching, Io(), kT0);
  EXPECT_EQ(h.last_error, "cannot connect to the cluster: timed out");
  EXPECT_EQ(h.last_error_time, 1'700'000'000u);
  // A request error just now (monotonic "now" maps to the present Unix time) is later.
  IoStatsSnapshot io = Io(1);
  io.last_error = EIO;
  io.last_error_ns = MonotonicNowNs();
  h = v.Health(api::DeviceState::kMapped, io, io.last_error_ns);
  EXPECT_EQ(h.last_error, "request answered with EIO (Input/output error)");
  EXPECT_GT(h.last_error_time, 1'700'000'000u);
}

TEST(DeviceHealthTest, IoErrorMessagesNameTheErrno) {
  EXPECT_EQ(IoErrorMessage(ENOSPC), "ENOSPC (No space left on device)");
  EXPECT_EQ(IoErrorMessage(5000).rfind("errno 5000 (", 0), 0u) << IoErrorMessage(5000);
}

}  // namespace
}  // namespace rbdnbd
