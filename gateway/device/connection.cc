#include "device/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "nbd/protocol.h"
#include "nbd/reply_codec.h"

namespace rbdnbd {
namespace {

constexpr size_t kMaxIov = 512;                  // below IOV_MAX (1024)
constexpr uint32_t kDirectRecvThreshold = 16384;  // payload tails this big skip the copy
constexpr size_t kCompactBelow = 128 * 1024;     // keep this much tail room in rbuf
constexpr uint64_t kLoggedErrors = 10;           // per connection, then only debug

IoType ToIoType(uint16_t cmd) {
  switch (cmd) {
    case nbd::kCmdWrite: return IoType::kWrite;
    case nbd::kCmdFlush: return IoType::kFlush;
    case nbd::kCmdTrim: return IoType::kTrim;
    case nbd::kCmdWriteZeroes: return IoType::kWriteZeroes;
    case nbd::kCmdCache: return IoType::kCache;
    default: return IoType::kRead;
  }
}

uint32_t ToIoFlags(uint16_t nbd_flags) {
  uint32_t f = 0;
  if (nbd_flags & nbd::kCmdFlagFua) f |= kIoFua;
  if (nbd_flags & nbd::kCmdFlagNoHole) f |= kIoNoHole;
  return f;
}

}  // namespace

void Connection::Slot::OnIoDone(int result) { conn->OnIoDone(this, result); }

Connection::Connection(EventLoop& loop, BufferPool& pool, UniqueFd fd, std::string peer,
                       ClosedFn on_closed)
    : loop_(loop), pool_(pool), fd_(std::move(fd)), peer_(std::move(peer)),
      on_closed_(std::move(on_closed)), slots_(kMaxInflight) {
  free_slots_.reserve(kMaxInflight);
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
    it->conn = this;
    free_slots_.push_back(&*it);
  }
  iov_.reserve(kMaxIov);
  rbuf_ = pool_.Get(kRecvBufferSize, &rbuf_cap_);
}

std::unique_ptr<Connection> Connection::ForClient(EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                                  const ExportRegistry& exports, std::string peer,
                                                  ClosedFn on_closed) {
  std::unique_ptr<Connection> c(
      new Connection(loop, pool, std::move(fd), std::move(peer), std::move(on_closed)));
  c->registry_ = &exports;
  c->handshake_ = std::make_unique<nbd::Handshake>(exports);
  return c;
}

std::unique_ptr<Connection> Connection::ForTransmission(EventLoop& loop, BufferPool& pool, UniqueFd fd,
                                                        Export exp, std::string peer,
                                                        ClosedFn on_closed) {
  std::unique_ptr<Connection> c(
      new Connection(loop, pool, std::move(fd), std::move(peer), std::move(on_closed)));
  nbd::ExportInfo info = DescribeExport(exp);
  c->export_ = std::move(exp);
  c->EnterTransmission(info);
  return c;
}

Connection::~Connection() {
  for (auto& s : slots_) {
    if (s.buf != nullptr) pool_.Put(s.buf, s.buf_cap);
  }
  pool_.Put(rbuf_, rbuf_cap_);
}

void Connection::Start() {
  if (rbuf_ == nullptr) {
    Fail("out of memory for the receive buffer");
    return;
  }
  if (phase_ == Phase::kHandshake) {
    std::vector<uint8_t> greeting;
    handshake_->Greeting(&greeting);
    QueueRaw(std::move(greeting));
  }
  IssueRecv();
}

void Connection::Shutdown() {
  if (phase_ == Phase::kClosed) return;
  BeginDrain("server shutting down");
}

void Connection::EnterTransmission(const nbd::ExportInfo& info) {
  if (registry_ != nullptr) {
    const Export* e = registry_->Get(info.name);
    if (e != nullptr) export_ = *e;
  }
  view_.size = info.size;
  view_.transmission_flags = info.transmission_flags;
  view_.max_length = std::min<uint32_t>(info.max_block, nbd::kMaxRequestLength);
  if (export_.io_stats) {
    io_stats_ = export_.io_stats->Open();
    cells_ = io_stats_.cells();
  }
  phase_ = Phase::kTransmission;
  handshake_.reset();
  spdlog::debug("{}: serving export '{}' ({} bytes, flags {:#x})", peer_, export_.name,
                view_.size, view_.transmission_flags);
}

// ---------------------------------------------------------------- receive side

void Connection::IssueRecv() {
  if (recv_inflight_ || paused_ || eof_ || socket_dead_) return;
  if (phase_ != Phase::kHandshake && phase_ != Phase::kTransmission) return;
  Slot* s = payload_slot_;
  if (s != nullptr && rhead_ == rtail_ && s->length - payload_done_ >= kDirectRecvThreshold) {
    recv_direct_ = true;
    io_uring_prep_recv(loop_.GetSqe(&recv_op_), fd_.get(), s->buf + payload_done_,
                       s->length - payload_done_, MSG_WAITALL);
    recv_inflight_ = true;
    return;
  }
  if (rhead_ == rtail_) {
    rhead_ = rtail_ = 0;
  } else if (rhead_ > 0 && rbuf_cap_ - rtail_ < kCompactBelow) {
    std::memmove(rbuf_, rbuf_ + rhead_, rtail_ - rhead_);
    rtail_ -= rhead_;
    rhead_ = 0;
  }
  io_uring_prep_recv(loop_.GetSqe(&recv_op_), fd_.get(), rbuf_ + rtail_, rbuf_cap_ - rtail_, 0);
  recv_inflight_ = true;
}

void Connection::OnRecv(int res) {
  recv_inflight_ = false;
  bool direct = std::exchange(recv_direct_, false);
  if (res == -ECANCELED || phase_ == Phase::kDraining) {
    if (res > 0 && !direct) rtail_ += static_cast<size_t>(res);
    MaybeFinish();
    return;
  }
  if (res < 0) {
    Fail(fmt::format("receive failed: {}", strerror(-res)));
    return;
  }
  if (res == 0) {
    eof_ = true;
    if (payload_slot_ != nullptr || discard_left_ > 0 || rhead_ != rtail_) {
      spdlog::info("{}: client disconnected in the middle of a request", peer_);
    }
    BeginDrain("client closed the connection");
    return;
  }
  if (direct) {
    payload_done_ += static_cast<uint32_t>(res);
    if (payload_done_ == payload_slot_->length) {
      Slot* s = std::exchange(payload_slot_, nullptr);
      SubmitToBackend(s);
    }
  } else {
    rtail_ += static_cast<size_t>(res);
  }
  Parse();
}

void Connection::Parse() {
  parse_now_ns_ = 0;  // read once, by the first request header parsed now
  bool progress = true;
  while (progress) {
    if (phase_ == Phase::kHandshake) {
      progress = ParseHandshake();
    } else if (phase_ == Phase::kTransmission) {
      progress = ParseOneRequest();
    } else {
      progress = false;
    }
  }
  IssueRecv();
  MaybeFinish();
}

bool Connection::ParseHandshake() {
  size_t want = handshake_->BytesWanted();
  if (rtail_ - rhead_ < want) return false;
  std::vector<uint8_t> out;
  auto state = handshake_->Feed(std::span<const uint8_t>(rbuf_ + rhead_, want), &out);
  rhead_ += want;
  if (!out.empty()) QueueRaw(std::move(out));
  switch (state) {
    case nbd::Handshake::State::kNegotiating:
      return true;
    case nbd::Handshake::State::kTransmission:
      EnterTransmission(handshake_->selected_export());
      return true;
    case nbd::Handshake::State::kClose:
      spdlog::info("{}: closing during negotiation: {}", peer_, handshake_->close_reason());
      BeginDrain("negotiation ended");
      return false;
  }
  return false;
}

bool Connection::ParseOneRequest() {
  if (discard_left_ > 0 || payload_slot_ != nullptr) return ConsumePayload();
  if (rtail_ - rhead_ < nbd::kRequestHeaderSize) return false;
  if (free_slots_.empty()) {
    paused_ = true;  // resumes in OnSend() when a reply frees a slot
    return false;
  }
  nbd::Request req;
  if (!nbd::DecodeRequest(rbuf_ + rhead_, &req)) {
    Fail("bad request magic; the stream is out of sync");
    return false;
  }
  rhead_ += nbd::kRequestHeaderSize;
  stats_.requests++;
  if (req.type == nbd::kCmdDisc) {
    BeginDrain("client sent DISC");
    return false;
  }
  nbd::Verdict verdict = nbd::ValidateRequest(req, view_);
  Slot* s = AllocSlot(req);
  if (verdict.error != 0) {
    if (stats_.errors < kLoggedErrors) {
      spdlog::info("{}: rejecting request type {} offset {} length {} flags {:#x}: {}", peer_,
                   req.type, req.offset, req.length, req.flags, strerror(verdict.error));
    }
    s->nbd_error = nbd::ErrnoToNbd(verdict.error);
    s->err = verdict.error;
    discard_left_ = verdict.payload;
    QueueReply(s);
    return true;
  }
  if (req.type == nbd::kCmdRead || req.type == nbd::kCmdWrite) {
    s->buf = pool_.Get(req.length, &s->buf_cap);
    s->data = s->buf;
    if (s->buf == nullptr) {
      s->nbd_error = nbd::kNbdENOMEM;
      s->err = ENOMEM;
      discard_left_ = verdict.payload;
      QueueReply(s);
      return true;
    }
  }
  if (req.type == nbd::kCmdWrite) {
    payload_slot_ = s;
    payload_done_ = 0;
    return true;
  }
  SubmitToBackend(s);
  return true;
}

// Copies the buffered part of a WRITE payload, or skips a rejected one.
// Returns false when more bytes must arrive first.
bool Connection::ConsumePayload() {
  size_t avail = rtail_ - rhead_;
  if (discard_left_ > 0) {
    size_t n = std::min<uint64_t>(avail, discard_left_);
    rhead_ += n;
    discard_left_ -= n;
    return discard_left_ == 0;
  }
  Slot* s = payload_slot_;
  size_t n = std::min<size_t>(avail, s->length - payload_done_);
  std::memcpy(s->buf + payload_done_, rbuf_ + rhead_, n);
  rhead_ += n;
  payload_done_ += static_cast<uint32_t>(n);
  if (payload_done_ < s->length) return false;
  payload_slot_ = nullptr;
  SubmitToBackend(s);
  return true;
}

// ---------------------------------------------------------------- requests

Connection::Slot* Connection::AllocSlot(const nbd::Request& req) {
  Slot* s = free_slots_.back();
  free_slots_.pop_back();
  s->type = ToIoType(req.type);
  s->flags = ToIoFlags(req.flags);
  s->offset = req.offset;
  s->length = req.length;
  s->cookie = req.cookie;
  s->nbd_error = 0;
  s->err = 0;
  s->op = -1;
  s->stat = kStatNone;
  if (cells_ != nullptr) {
    if (auto op = IoOpOfNbdCommand(req.type)) {
      if (parse_now_ns_ == 0) parse_now_ns_ = MonotonicNowNs();
      s->op = static_cast<int8_t>(*op);
      s->received_ns = parse_now_ns_;
    }
  }
  s->reply_payload = false;
  s->buf = nullptr;
  s->buf_cap = 0;
  s->data = nullptr;
  return s;
}

void Connection::FreeSlot(Slot* s) {
  // A reply that never reached StartSend (the socket died first) still ends
  // its request's latency here.
  if (s->stat == kStatCompleted) RecordReplied(s, MonotonicNowNs());
  if (s->buf != nullptr) pool_.Put(s->buf, s->buf_cap);
  s->buf = nullptr;
  s->data = nullptr;
  free_slots_.push_back(s);
}

void Connection::RecordReplied(Slot* s, uint64_t now_ns) {
  s->stat = kStatReplied;
  if (cells_ != nullptr) cells_->Replied(static_cast<IoOp>(s->op), s->received_ns, now_ns);
}

void Connection::SubmitToBackend(Slot* s) {
  inflight_++;
  if (cells_ != nullptr) cells_->SetInflight(static_cast<int64_t>(inflight_));
  export_.backend->Submit(loop_, *s);  // may complete inline
}

void Connection::OnIoDone(Slot* s, int result) {
  inflight_--;
  if (cells_ != nullptr) cells_->SetInflight(static_cast<int64_t>(inflight_));
  if (result < 0) {
    s->nbd_error = nbd::ErrnoToNbd(-result);
    s->err = -result;
    if (stats_.errors < kLoggedErrors) {
      spdlog::warn("{}: {} offset {} length {} failed: {}", peer_, IoTypeName(s->type), s->offset,
                   s->length, strerror(-result));
    }
  } else if (s->type == IoType::kRead) {
    s->reply_payload = true;
    stats_.bytes_read += s->length;
  } else if (s->type == IoType::kWrite) {
    stats_.bytes_written += s->length;
  }
  if (s->type != IoType::kRead && s->buf != nullptr) {  // only READ replies carry data
    pool_.Put(s->buf, s->buf_cap);
    s->buf = nullptr;
  }
  QueueReply(s);
}

void Connection::QueueReply(Slot* s) {
  if (s->nbd_error != 0) stats_.errors++;
  if (cells_ != nullptr && s->op >= 0) {
    IoOp op = static_cast<IoOp>(s->op);
    cells_->Completed(op, op == IoOp::kFlush ? 0 : s->length, s->err);
    s->stat = kStatCompleted;
  }
  if (socket_dead_) {
    FreeSlot(s);
    MaybeFinish();
    return;
  }
  nbd::EncodeSimpleReply(s->reply, s->nbd_error, s->cookie);
  send_queue_.push_back(OutItem{s, {}});
  ScheduleSend();
}

// ---------------------------------------------------------------- send side

void Connection::QueueRaw(std::vector<uint8_t> bytes) {
  if (socket_dead_) return;
  send_queue_.push_back(OutItem{nullptr, std::move(bytes)});
  ScheduleSend();
}

// Sends are batched: every reply queued during one loop iteration goes out in
// the same sendmsg.
void Connection::ScheduleSend() {
  if (send_scheduled_) return;
  send_scheduled_ = true;
  loop_.Defer([this] {
    send_scheduled_ = false;
    StartSend();
    MaybeFinish();
  });
}

void Connection::StartSend() {
  if (send_inflight_ || send_queue_.empty() || socket_dead_) return;
  iov_.clear();
  size_t skip = send_offset_;
  size_t items = 0;
  auto add = [&](const void* p, size_t len) {
    if (skip >= len) {
      skip -= len;
      return;
    }
    iov_.push_back(iovec{const_cast<uint8_t*>(static_cast<const uint8_t*>(p)) + skip, len - skip});
    skip = 0;
  };
  uint64_t now_ns = 0;  // one clock read for every reply of this sendmsg
  for (const OutItem& item : send_queue_) {
    if (iov_.size() + 2 > kMaxIov) break;
    if (item.slot != nullptr) {
      add(item.slot->reply, sizeof(item.slot->reply));
      if (item.slot->reply_payload) add(item.slot->buf, item.slot->length);
      if (item.slot->stat == kStatCompleted) {
        if (now_ns == 0) now_ns = MonotonicNowNs();
        RecordReplied(item.slot, now_ns);
      }
    } else {
      add(item.raw.data(), item.raw.size());
    }
    items++;
  }
  send_items_ = items;
  msg_ = msghdr{};
  msg_.msg_iov = iov_.data();
  msg_.msg_iovlen = iov_.size();
  io_uring_prep_sendmsg(loop_.GetSqe(&send_op_), fd_.get(), &msg_, MSG_NOSIGNAL);
  send_inflight_ = true;
}

void Connection::OnSend(int res) {
  send_inflight_ = false;
  if (res <= 0 || socket_dead_) {
    if (!socket_dead_) {
      spdlog::info("{}: send failed: {}", peer_, res < 0 ? strerror(-res) : "connection closed");
      Fail("send failed");
    }
    for (OutItem& item : send_queue_) {
      if (item.slot != nullptr) FreeSlot(item.slot);
    }
    send_queue_.clear();
    send_offset_ = 0;
    MaybeFinish();
    return;
  }
  size_t bytes = send_offset_ + static_cast<size_t>(res);
  send_offset_ = 0;
  while (!send_queue_.empty()) {
    OutItem& item = send_queue_.front();
    size_t len = item.slot != nullptr
                     ? sizeof(item.slot->reply) + (item.slot->reply_payload ? item.slot->length : 0)
                     : item.raw.size();
    if (bytes < len) {
      send_offset_ = bytes;
      break;
    }
    bytes -= len;
    if (item.slot != nullptr) FreeSlot(item.slot);
    send_queue_.pop_front();
  }
  if (paused_ && !free_slots_.empty()) {
    paused_ = false;
    Parse();
  }
  StartSend();
  MaybeFinish();
}

// ---------------------------------------------------------------- teardown

void Connection::BeginDrain(const char* why) {
  if (phase_ == Phase::kDraining || phase_ == Phase::kClosed) return;
  spdlog::debug("{}: draining: {}", peer_, why);
  phase_ = Phase::kDraining;
  paused_ = false;
  if (recv_inflight_ && !cancel_inflight_) {
    cancel_inflight_ = true;
    io_uring_prep_cancel(loop_.GetSqe(&cancel_op_), &recv_op_, 0);
  }
  ScheduleSend();
}

// The stream can't be trusted or the socket is broken: stop talking to this
// client at once. In-flight backend I/O still completes before the close.
void Connection::Fail(const std::string& why) {
  if (phase_ == Phase::kClosed) return;
  spdlog::info("{}: closing connection: {}", peer_, why);
  socket_dead_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);  // ends a recv or send in flight
  if (!send_inflight_) {
    for (OutItem& item : send_queue_) {
      if (item.slot != nullptr) FreeSlot(item.slot);
    }
    send_queue_.clear();
  }
  // No-op when already draining: the shutdown() above has ended any recv.
  BeginDrain("connection failed");
  MaybeFinish();
}

void Connection::MaybeFinish() {
  if (phase_ != Phase::kDraining) return;
  if (inflight_ > 0 || recv_inflight_ || send_inflight_ || send_scheduled_ || cancel_inflight_) return;
  if (!socket_dead_ && !send_queue_.empty()) return;
  if (payload_slot_ != nullptr) FreeSlot(std::exchange(payload_slot_, nullptr));
  for (OutItem& item : send_queue_) {
    if (item.slot != nullptr) FreeSlot(item.slot);
  }
  send_queue_.clear();
  phase_ = Phase::kClosed;
  fd_.Reset();
  // Folded into the export's totals now: a closed connection is not live.
  cells_ = nullptr;
  io_stats_ = IoStatsHandle();
  spdlog::debug("{}: closed after {} requests ({} errors)", peer_, stats_.requests, stats_.errors);
  // Moved out first: the callback may delete this connection, and with it
  // on_closed_ itself, while the callback is still running.
  loop_.Defer([this] {
    ClosedFn cb = std::move(on_closed_);
    cb(this);
  });
}

}  // namespace rbdnbd
