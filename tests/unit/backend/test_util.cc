#include "test_util.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include <gtest/gtest.h>

namespace rbdnbd::testing {
namespace {

class WaitableIo final : public IoRequest {
 public:
  explicit WaitableIo(EventLoop& loop) : loop_(loop) {}

  void OnIoDone(int result) override {
    EXPECT_TRUE(loop_.InLoopThread()) << "OnIoDone off the loop thread";
    int calls = ++calls_;
    EXPECT_EQ(calls, 1) << "OnIoDone called more than once";
    if (calls == 1) {
      done_at_ = std::chrono::steady_clock::now();
      promise_.set_value(result);
    }
  }

  std::future<int> future() { return promise_.get_future(); }
  std::chrono::steady_clock::time_point done_at_;

 private:
  EventLoop& loop_;
  std::atomic<int> calls_{0};
  std::promise<int> promise_;
};

}  // namespace

AlignedBuffer MakeBuffer(size_t length, uint8_t fill) {
  size_t rounded = (std::max<size_t>(length, 1) + 4095) / 4096 * 4096;
  AlignedBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(4096, rounded)));
  std::memset(buf.get(), fill, rounded);
  return buf;
}

std::vector<uint8_t> Pattern(uint32_t seed, uint64_t offset, size_t length) {
  std::vector<uint8_t> out(length);
  for (size_t i = 0; i < length; i++) out[i] = PatternByte(seed, offset + i);
  return out;
}

LoopThread::LoopThread() {
  auto loop = EventLoop::Create({.entries = 64, .name = "test-loop"});
  if (!loop) {
    ADD_FAILURE() << "EventLoop::Create: " << loop.error().message;
    return;
  }
  loop_ = std::move(*loop);
  thread_ = std::thread([this] { loop_->Run(); });
}

LoopThread::~LoopThread() {
  if (!loop_) return;
  loop_->Stop();
  thread_.join();
}

int LoopThread::Submit(Backend& backend, IoType type, uint64_t offset, uint32_t length,
                       uint8_t* data, uint32_t flags) {
  WaitableIo io(*loop_);
  io.type = type;
  io.offset = offset;
  io.length = length;
  io.data = data;
  io.flags = flags;
  std::future<int> done = io.future();
  std::chrono::steady_clock::time_point start;
  std::promise<void> submitted;
  loop_->Post([&] {
    start = std::chrono::steady_clock::now();
    backend.Submit(*loop_, io);
    submitted.set_value();
  });
  submitted.get_future().wait();
  if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "request " << IoTypeName(type) << " did not complete in 30 s";
    std::abort();  // `io` is on our stack and still owned by the backend
  }
  last_latency_ms_ = std::chrono::duration<double, std::milli>(io.done_at_ - start).count();
  return done.get();
}

int LoopThread::Write(Backend& backend, uint64_t offset, const std::vector<uint8_t>& bytes,
                      uint32_t flags) {
  AlignedBuffer buf = MakeBuffer(bytes.size());
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  return Submit(backend, IoType::kWrite, offset, static_cast<uint32_t>(bytes.size()), buf.get(),
                flags);
}

std::vector<uint8_t> LoopThread::Read(Backend& backend, uint64_t offset, uint32_t length,
                                      int* result) {
  AlignedBuffer buf = MakeBuffer(length, 0xAB);  // garbage that must be overwritten
  int r = Submit(backend, IoType::kRead, offset, length, buf.get());
  if (result != nullptr) *result = r;
  EXPECT_EQ(r, 0) << "read " << length << " at " << offset;
  return std::vector<uint8_t>(buf.get(), buf.get() + length);
}

std::string TempPath(const std::string& dir, const std::string& stem) {
  static std::atomic<int> counter{0};
  return dir + "/rbdnbd-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++);
}

bool AllZero(const std::vector<uint8_t>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace rbdnbd::testing
