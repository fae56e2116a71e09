// FaultBackend, DelayBackend and ReadOnlyBackend over a MemoryBackend.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <gtest/gtest.h>

#include "backend/delay_backend.h"
#include "backend/fault_backend.h"
#include "backend/memory_backend.h"
#include "backend/read_only_backend.h"
#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::AllZero;
using testing::LoopThread;
using testing::Pattern;

std::shared_ptr<Backend> Memory(uint64_t size = 8 << 20) { return *MemoryBackend::Create(size); }

std::shared_ptr<FaultBackend> Fault(std::shared_ptr<Backend> inner, const FaultOptions& o) {
  auto r = FaultBackend::Create(std::move(inner), o);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return std::static_pointer_cast<FaultBackend>(*r);
}

TEST(FaultBackendTest, EveryNthMatchingRequestFailsWithoutReachingInner) {
  auto mem = Memory();
  auto fault = Fault(mem, {.error = ENOSPC, .op_mask = IoTypeBit(IoType::kWrite), .every = 3});
  LoopThread lt;
  for (int i = 1; i <= 9; i++) {
    uint64_t off = i * 4096;
    int r = lt.Write(*fault, off, Pattern(i, off, 4096));
    bool fails = i % 3 == 0;
    EXPECT_EQ(r, fails ? -ENOSPC : 0) << "write " << i;
    // A failed write never reached the memory backend.
    std::vector<uint8_t> got = lt.Read(*fault, off, 4096);
    if (fails) {
      EXPECT_TRUE(AllZero(got)) << "write " << i;
    } else {
      EXPECT_EQ(got, Pattern(i, off, 4096)) << "write " << i;
    }
  }
  EXPECT_EQ(fault->matched(), 9u) << "reads are not in op_mask";
  EXPECT_EQ(fault->injected(), 3u);
  EXPECT_EQ(lt.Submit(*fault, IoType::kFlush, 0, 0), 0);
}

TEST(FaultBackendTest, RateOneAlwaysFailsAndHalfFailsAboutHalf) {
  auto always = Fault(Memory(), {.rate = 1.0});
  LoopThread lt;
  for (IoType t : {IoType::kFlush, IoType::kTrim, IoType::kCache}) {
    EXPECT_EQ(lt.Submit(*always, t, 0, 4096), -EIO) << IoTypeName(t);
  }
  auto half = Fault(Memory(), {.op_mask = IoTypeBit(IoType::kRead), .rate = 0.5});
  auto buf = testing::MakeBuffer(512);
  int failed = 0;
  for (int i = 0; i < 2000; i++) {
    if (lt.Submit(*half, IoType::kRead, 0, 512, buf.get()) != 0) failed++;
  }
  EXPECT_GT(failed, 800);  // 2000 draws: +-9 standard deviations
  EXPECT_LT(failed, 1200);
  EXPECT_EQ(half->injected(), static_cast<uint64_t>(failed));
}

TEST(FaultBackendTest, OnlyRequestsOverlappingTheRange) {
  auto fault = Fault(Memory(), {.range_begin = 1 << 20, .range_end = 2 << 20});
  LoopThread lt;
  auto buf = testing::MakeBuffer(8192);
  EXPECT_EQ(lt.Submit(*fault, IoType::kRead, 0, 8192, buf.get()), 0);
  EXPECT_EQ(lt.Submit(*fault, IoType::kRead, (1 << 20) - 8192, 8192, buf.get()), 0);
  EXPECT_EQ(lt.Submit(*fault, IoType::kRead, (1 << 20) - 1, 2, buf.get()), -EIO);
  EXPECT_EQ(lt.Submit(*fault, IoType::kWrite, (2 << 20) - 1, 1, buf.get()), -EIO);
  EXPECT_EQ(lt.Submit(*fault, IoType::kTrim, 2 << 20, 8192), 0);  // END is exclusive
  EXPECT_EQ(lt.Submit(*fault, IoType::kFlush, 0, 0), -EIO) << "flush has no range";
}

TEST(FaultBackendTest, TriggerFileSwitchesInjectionOnAndOff) {
  std::string trigger = testing::TempPath("/tmp", "trigger");
  auto fault = Fault(Memory(), {.error = EPERM, .trigger_file = trigger});
  LoopThread lt;
  EXPECT_EQ(lt.Submit(*fault, IoType::kFlush, 0, 0), 0);
  ::close(::open(trigger.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  EXPECT_EQ(lt.Submit(*fault, IoType::kFlush, 0, 0), -EPERM);
  EXPECT_EQ(lt.Write(*fault, 0, {1}), -EPERM);
  ::unlink(trigger.c_str());
  EXPECT_EQ(lt.Submit(*fault, IoType::kFlush, 0, 0), 0);
  EXPECT_EQ(fault->injected(), 2u);
}

TEST(FaultBackendTest, ValidatesOptionsAndKeepsCaps) {
  auto mem = Memory();
  EXPECT_FALSE(FaultBackend::Create(mem, {.error = 0}).has_value());
  EXPECT_FALSE(FaultBackend::Create(mem, {.rate = 1.5}).has_value());
  EXPECT_FALSE(FaultBackend::Create(mem, {.range_begin = 10, .range_end = 10}).has_value());
  EXPECT_FALSE(FaultBackend::Create(nullptr, {}).has_value());
  auto fault = Fault(mem, {.error = ENOSPC, .every = 2});
  BackendCaps a = mem->Capabilities();
  BackendCaps b = fault->Capabilities();
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.can_trim, b.can_trim);
  EXPECT_EQ(a.can_multi_conn, b.can_multi_conn);
  EXPECT_EQ(fault->Describe(), "memory 8.0 MiB +fault(ENOSPC on read+write+flush+trim+write_zeroes+cache every 2)");
}

TEST(DelayBackendTest, DelaysEachTypeByItsOwnAmount) {
  using std::chrono::milliseconds;
  auto mem = Memory();
  auto r = DelayBackend::Create(mem, {.read = milliseconds(60), .write = {}, .other = milliseconds(30)});
  ASSERT_TRUE(r.has_value());
  std::shared_ptr<Backend> delay = *r;
  LoopThread lt;
  ASSERT_EQ(lt.Write(*delay, 4096, Pattern(2, 4096, 4096)), 0);
  double write_ms = lt.last_latency_ms();
  EXPECT_EQ(lt.Read(*delay, 4096, 4096), Pattern(2, 4096, 4096));
  EXPECT_GE(lt.last_latency_ms(), 60.0);
  EXPECT_EQ(lt.Submit(*delay, IoType::kFlush, 0, 0), 0);
  EXPECT_GE(lt.last_latency_ms(), 30.0);
  EXPECT_LT(write_ms, 30.0) << "zero delay submits directly (memory completes inline)";
  EXPECT_NE(delay->Describe().find("+delay(read 60000us"), std::string::npos);
}

TEST(DelayBackendTest, ZeroDelayCompletesInlineAndRejectsNegative) {
  auto delay = DelayBackend::Create(Memory(), {});
  ASSERT_TRUE(delay.has_value());
  auto loop = EventLoop::Create({});
  ASSERT_TRUE(loop.has_value());
  struct InlineIo final : IoRequest {
    int result = 1;
    void OnIoDone(int r) override { result = r; }
  } io;
  io.type = IoType::kFlush;
  (*delay)->Submit(**loop, io);
  EXPECT_EQ(io.result, 0);
  EXPECT_FALSE(DelayBackend::Create(Memory(), {.read = std::chrono::microseconds(-1)}).has_value());
}

TEST(ReadOnlyBackendTest, RejectsWritesAndHidesWriteFeatures) {
  auto mem = Memory();
  LoopThread lt;
  ASSERT_EQ(lt.Write(*mem, 0, Pattern(1, 0, 4096)), 0);
  std::shared_ptr<Backend> ro = ReadOnlyBackend::Wrap(mem);
  BackendCaps caps = ro->Capabilities();
  EXPECT_TRUE(caps.read_only);
  EXPECT_FALSE(caps.can_trim || caps.can_write_zeroes || caps.can_fua);
  EXPECT_TRUE(caps.can_flush && caps.can_multi_conn);
  EXPECT_EQ(lt.Write(*ro, 0, {1, 2}), -EROFS);
  EXPECT_EQ(lt.Submit(*ro, IoType::kTrim, 0, 4096), -EROFS);
  EXPECT_EQ(lt.Submit(*ro, IoType::kWriteZeroes, 0, 4096), -EROFS);
  EXPECT_EQ(lt.Read(*ro, 0, 4096), Pattern(1, 0, 4096));
  EXPECT_EQ(lt.Submit(*ro, IoType::kFlush, 0, 0), 0);
  EXPECT_EQ(ro->Describe(), "memory 8.0 MiB (read-only)");
}

}  // namespace
}  // namespace rbdnbd
