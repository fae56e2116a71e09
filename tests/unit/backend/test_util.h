// Helpers for the backend tests: a loop on its own thread, and a blocking
// "submit one request and wait" call that checks the completion contract
// (exactly once, on the loop thread).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "uring/event_loop.h"

namespace rbdnbd::testing {

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], FreeDeleter>;

// 4096-aligned, filled with `fill`.
AlignedBuffer MakeBuffer(size_t length, uint8_t fill = 0);

// Deterministic pattern: byte i of the device is PatternByte(seed, i).
inline uint8_t PatternByte(uint32_t seed, uint64_t offset) {
  return static_cast<uint8_t>((offset * 2654435761u + seed * 97u) >> 7);
}
std::vector<uint8_t> Pattern(uint32_t seed, uint64_t offset, size_t length);

// An EventLoop running on its own std::thread until destruction.
class LoopThread {
 public:
  LoopThread();
  ~LoopThread();
  EventLoop& loop() { return *loop_; }

  // Submits one request on the loop thread and waits for OnIoDone. Returns
  // its result; fails the test if OnIoDone runs off the loop thread, more than
  // once, or not within 30 s (then returns -ETIMEDOUT).
  int Submit(Backend& backend, IoType type, uint64_t offset, uint32_t length,
             uint8_t* data = nullptr, uint32_t flags = 0);

  // Convenience wrappers around Submit().
  int Write(Backend& backend, uint64_t offset, const std::vector<uint8_t>& bytes,
            uint32_t flags = 0);
  // Returns the bytes read; `result` (if not null) gets the request's result.
  std::vector<uint8_t> Read(Backend& backend, uint64_t offset, uint32_t length,
                            int* result = nullptr);

  // Milliseconds between Submit() on the loop and OnIoDone of the last call.
  double last_latency_ms() const { return last_latency_ms_; }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  double last_latency_ms_ = 0;
};

// A unique path under `dir` (the file is not created). Removed by the caller.
std::string TempPath(const std::string& dir, const std::string& stem);

bool AllZero(const std::vector<uint8_t>& bytes);

}  // namespace rbdnbd::testing
