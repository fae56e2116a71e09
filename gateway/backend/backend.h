// Backend: where an export's bytes live (memory, a file, an RBD image).
//
// Contract
// --------
// * Capabilities() describes what the backend can do. Frontends advertise only
//   what it reports: a client never sees SEND_TRIM unless can_trim, never
//   CAN_MULTI_CONN unless a FLUSH on any one connection makes every completed
//   write from every connection durable. Thread-safe; `size` may change at
//   run time (resize), everything else is fixed after Create().
// * Submit(loop, io) starts one request. It is called on `loop`'s thread.
//   The backend calls io.OnIoDone(result) exactly once, ON THAT SAME LOOP
//   THREAD, with 0 (or, for reads, 0 after filling all `length` bytes) on
//   success and a negative errno on failure. It may call it inline, before
//   Submit() returns, or later from the loop. A request that fails to start
//   goes through the same OnIoDone path. Backends never call into frontend
//   code from any other thread.
// * `io` and `io.data` stay valid and untouched by the caller until
//   OnIoDone(). For kRead the backend fills all `length` bytes (zero-padding
//   any short read); for kWrite it only reads them. `data` is 4096-aligned.
// * Submit() trusts its input: the frontend has already checked the range
//   (offset + length <= size), the flags and the capability. Backends assert
//   these invariants at the boundary in debug builds.
// * Concurrency: a backend may receive Submit() from several loops at once
//   (several connections on several threads), so it must be thread-safe.
//   Overlapping concurrent writes have no defined order (as on a disk).
// * Flush(): durability of all writes that completed before it was submitted,
//   whichever loop submitted them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rbdnbd {

class EventLoop;

enum class IoType : uint8_t {
  kRead,
  kWrite,
  kFlush,
  kTrim,         // discard; the range then reads back as zeroes or old data
  kWriteZeroes,  // the range must read back as zeroes
  kCache,        // advisory prefetch; may succeed without doing anything
};

const char* IoTypeName(IoType t);

// IoRequest::flags
inline constexpr uint32_t kIoFua = 1u << 0;     // durable before completion
inline constexpr uint32_t kIoNoHole = 1u << 1;  // kWriteZeroes: allocate, don't punch

struct BackendCaps {
  uint64_t size = 0;
  bool read_only = false;
  bool can_flush = false;
  bool can_trim = false;
  bool can_write_zeroes = false;
  bool can_fua = false;
  bool can_multi_conn = false;
  bool can_cache = false;
  bool rotational = false;
  // Block size constraints advertised to clients (NBD_INFO_BLOCK_SIZE and the
  // kernel's logical block size): powers of two, min <= preferred <= max.
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_block = 32u << 20;
};

class IoRequest {
 public:
  IoType type = IoType::kRead;
  uint32_t flags = 0;  // kIoFua | kIoNoHole
  uint64_t offset = 0;
  uint32_t length = 0;
  uint8_t* data = nullptr;  // kRead/kWrite: `length` bytes, 4096-aligned

  // Exactly once, on the submitting loop's thread. result: 0 or -errno.
  virtual void OnIoDone(int result) = 0;

 protected:
  ~IoRequest() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Thread-safe.
  virtual BackendCaps Capabilities() const = 0;

  // Loop thread of `loop`. See the contract above.
  virtual void Submit(EventLoop& loop, IoRequest& io) = 0;

  // A short human description for logs and `list`, e.g. "memory 1.0 GiB".
  virtual std::string Describe() const = 0;
};

}  // namespace rbdnbd
