// Connection: one NBD socket (a TCP/Unix client, or one of the kernel's nbd
// sockets) served by one EventLoop.
//
// Contract
// --------
// * Every method runs on the owning loop's thread; the connection never
//   touches another thread's state, and backend completions come back to this
//   loop (Backend contract).
// * The owner keeps the Connection alive until `on_closed` runs (on the loop
//   thread, from a deferred task: nothing of the connection runs after it),
//   then deletes it.
// * Request buffers come from the loop's BufferPool and return there.
// * A client can never hurt another connection: every malformed request gets
//   an NBD error reply (its write payload is drained so the stream stays in
//   sync), or, when the stream can't be trusted any more (bad magic, garbage in
//   the handshake), only this connection is closed.
//
// State machine
// -------------
//
//   Start(socket)            Start(kernel / already negotiated)
//      │                                  │
//      ▼      GO / EXPORT_NAME            ▼
//   kHandshake ─────────────────────► kTransmission ◄──┐ requests in, replies
//      │ ABORT, garbage, EOF              │   │         │ out in any order,
//      │                                  │   └─────────┘ never interleaved
//      │     DISC, EOF, Shutdown(),       │
//      │     bad magic, socket error      │
//      ▼                                  ▼
//   kDraining: no new requests; in-flight backend I/O completes and its
//      │       replies are sent (unless the socket is dead)
//      ▼       when nothing is in flight
//   kClosed: fd closed, on_closed(this) deferred
//
// Receive path: one recv at a time into a 256 KiB ring-less buffer that holds
// many pipelined headers; the tail of a large WRITE payload is received
// straight into the request's buffer (no copy). Send path: one sendmsg at a
// time, gathering every queued reply (header + READ payload) into one iovec
// array, so bytes of two replies can never interleave.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/unique_fd.h"
#include "device/export.h"
#include "device/io_stats.h"
#include "nbd/handshake.h"
#include "nbd/request_codec.h"
#include "uring/buffer_pool.h"
#include "uring/event_loop.h"

namespace rbdnbd {

struct ConnectionStats {
  uint64_t requests = 0;
  uint64_t errors = 0;  // replies carrying an NBD error
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

class Connection {
 public:
  using ClosedFn = std::function<void(Connection*)>;

  static constexpr size_t kMaxInflight = 256;  // requests in flight per connection
  static constexpr size_t kRecvBufferSize = 256 * 1024;

  // A client connection: negotiates (fixed newstyle) against `exports`, which
  // must outlive the connection.
  static std::unique_ptr<Connection> ForClient(EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                               const ExportRegistry& exports, std::string peer,
                                               ClosedFn on_closed);
  // A socket already in the transmission phase (the kernel's nbd sockets).
  static std::unique_ptr<Connection> ForTransmission(EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                                     Export exp, std::string peer, ClosedFn on_closed);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Loop thread. Sends the greeting (client) and starts receiving.
  void Start();
  // Loop thread. Stops taking requests, completes those in flight, sends their
  // replies, then closes. Idempotent.
  void Shutdown();
  // Loop thread. Closes the socket at once (a client that stopped reading
  // can't hold up a shutdown); in-flight backend I/O still completes first.
  void ForceClose() { Fail("forced close"); }
  // Loop thread. New size after a resize; later requests are checked against it.
  void SetExportSize(uint64_t size) { view_.size = size; }

  const ConnectionStats& stats() const { return stats_; }

 private:
  enum class Phase { kHandshake, kTransmission, kDraining, kClosed };

  // One request's life: parsed -> (payload received) -> backend -> reply queued
  // -> reply sent -> back on the free list.
  struct Slot final : IoRequest {
    void OnIoDone(int result) override;
    Connection* conn = nullptr;
    uint64_t cookie = 0;
    uint8_t* buf = nullptr;
    size_t buf_cap = 0;
    uint32_t nbd_error = 0;
    int err = 0;                 // the errno behind nbd_error, for the statistics
    int8_t op = -1;              // IoOp, or -1: not counted (CACHE, unknown)
    uint8_t stat = 0;            // kStat*: what the statistics have seen of it
    uint64_t received_ns = 0;    // the Parse() that took its header (MonotonicNowNs), when counted
    bool reply_payload = false;  // a successful READ sends `length` bytes
    uint8_t reply[16] = {};
  };
  static constexpr uint8_t kStatNone = 0, kStatCompleted = 1, kStatReplied = 2;
  struct OutItem {
    Slot* slot = nullptr;            // a reply, or
    std::vector<uint8_t> raw;        // handshake bytes
  };
  class RecvOp final : public Completion {
   public:
    explicit RecvOp(Connection* c) : conn_(c) {}
    void Complete(int res, uint32_t) override { conn_->OnRecv(res); }
   private:
    Connection* conn_;
  };
  class SendOp final : public Completion {
   public:
    explicit SendOp(Connection* c) : conn_(c) {}
    void Complete(int res, uint32_t) override { conn_->OnSend(res); }
   private:
    Connection* conn_;
  };
  class CancelOp final : public Completion {
   public:
    explicit CancelOp(Connection* c) : conn_(c) {}
    void Complete(int, uint32_t) override { conn_->cancel_inflight_ = false; conn_->MaybeFinish(); }
   private:
    Connection* conn_;
  };

  Connection(EventLoop& loop, BufferPool& pool, UniqueFd fd, std::string peer, ClosedFn on_closed);

  // Receive side.
  void Parse();
  bool ParseHandshake();
  bool ParseOneRequest();
  bool ConsumePayload();
  void IssueRecv();
  void OnRecv(int res);
  void EnterTransmission(const nbd::ExportInfo& info);

  // Request side.
  Slot* AllocSlot(const nbd::Request& req);
  void RecordReplied(Slot* s, uint64_t now_ns);
  void FreeSlot(Slot* s);
  void SubmitToBackend(Slot* s);
  void OnIoDone(Slot* s, int result);
  void QueueReply(Slot* s);

  // Send side.
  void QueueRaw(std::vector<uint8_t> bytes);
  void ScheduleSend();
  void StartSend();
  void OnSend(int res);

  // Teardown.
  void BeginDrain(const char* why);
  void Fail(const std::string& why);
  void MaybeFinish();

  EventLoop& loop_;
  BufferPool& pool_;
  UniqueFd fd_;
  std::string peer_;
  ClosedFn on_closed_;
  Phase phase_ = Phase::kHandshake;

  const ExportRegistry* registry_ = nullptr;
  std::unique_ptr<nbd::Handshake> handshake_;
  Export export_;
  nbd::ExportView view_{};

  // Receive buffer: bytes [rhead_, rtail_) are received but not parsed.
  uint8_t* rbuf_ = nullptr;
  size_t rbuf_cap_ = 0;
  size_t rhead_ = 0, rtail_ = 0;
  RecvOp recv_op_{this};
  bool recv_inflight_ = false;
  bool recv_direct_ = false;   // the recv in flight targets payload_slot_->buf
  bool paused_ = false;        // out of slots: parsing resumes when one frees
  bool eof_ = false;
  Slot* payload_slot_ = nullptr;  // a WRITE whose payload is still arriving
  uint32_t payload_done_ = 0;
  uint64_t discard_left_ = 0;     // payload bytes of a rejected WRITE to skip

  std::vector<Slot> slots_;
  std::vector<Slot*> free_slots_;
  size_t inflight_ = 0;  // requests submitted to the backend, not yet done

  std::deque<OutItem> send_queue_;
  SendOp send_op_{this};
  bool send_inflight_ = false;
  bool send_scheduled_ = false;
  size_t send_items_ = 0;   // items of send_queue_ covered by the sendmsg in flight
  size_t send_offset_ = 0;  // bytes of send_queue_.front() already sent
  std::vector<iovec> iov_;
  msghdr msg_{};
  bool socket_dead_ = false;
  CancelOp cancel_op_{this};
  bool cancel_inflight_ = false;

  ConnectionStats stats_;
  // The export's statistics (io_stats.h), registered when transmission starts
  // and folded into the export's totals at close; cells_ is null when the
  // export has none (metrics off).
  IoStatsHandle io_stats_;
  IoCells* cells_ = nullptr;
  uint64_t parse_now_ns_ = 0;  // the clock read shared by the headers of one Parse()
};

}  // namespace rbdnbd
