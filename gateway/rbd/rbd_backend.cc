#include "rbd/rbd_backend.h"

#include <cassert>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "rbd/rbd_op_plan.h"
#include "uring/event_loop.h"

namespace rbdnbd {

Result<EncryptionFormat> ParseEncryptionFormat(std::string_view text) {
  if (text.empty() || text == "none") return EncryptionFormat::kNone;
  if (text == "luks1") return EncryptionFormat::kLuks1;
  if (text == "luks2") return EncryptionFormat::kLuks2;
  return Err(EINVAL, "unknown encryption format '{}' (luks1|luks2)", text);
}

// One request in librbd: the steps of its plan (rbd_op_plan.h), run in order.
struct RbdBackend::Op {
  RbdBackend* backend;
  EventLoop* loop;
  IoRequest* io;
  RbdOpPlan plan;
  uint8_t step = 0;  // index into plan.ops of the librbd call in flight
};

RbdBackend::RbdBackend(std::shared_ptr<RadosCluster> cluster, rados_ioctx_t io, rbd_image_t image,
                       const RbdOpenOptions& o)
    : cluster_(std::move(cluster)), io_(io), image_(image), spec_(o.spec),
      read_only_(o.read_only || o.spec.is_snapshot()), notrim_(o.notrim),
      encrypted_(o.encryption != EncryptionFormat::kNone) {}

namespace {

std::string OpenErrorText(int r, const ImageSpec& spec, const RadosCluster& c) {
  switch (-r) {
    case ENOENT:
      return spec.is_snapshot()
                 ? fmt::format("image or snapshot '{}' does not exist", spec.ToString())
                 : fmt::format("image '{}' does not exist", spec.ToString());
    case EPERM:
    case EACCES:
      return fmt::format("{} is not allowed to open '{}' (check its caps)", c.client_name(), spec.ToString());
    default:
      return fmt::format("cannot open image '{}': {}", spec.ToString(), strerror(-r));
  }
}

Result<void> LoadEncryption(rbd_image_t image, const RbdOpenOptions& o) {
  const std::string& pass = o.passphrase.reveal();
  if (pass.empty()) return Err(EINVAL, "an encrypted image needs --encryption-passphrase-file");
  int r;
  if (o.encryption == EncryptionFormat::kLuks1) {
    rbd_encryption_luks1_format_options_t opts{RBD_ENCRYPTION_ALGORITHM_AES256, pass.data(), pass.size()};
    r = rbd_encryption_load(image, RBD_ENCRYPTION_FORMAT_LUKS1, &opts, sizeof(opts));
  } else {
    rbd_encryption_luks2_format_options_t opts{RBD_ENCRYPTION_ALGORITHM_AES256, pass.data(), pass.size()};
    r = rbd_encryption_load(image, RBD_ENCRYPTION_FORMAT_LUKS2, &opts, sizeof(opts));
  }
  // EKEYREJECTED, not EPERM: EPERM/EACCES already mean "cephx refused the user"
  // (cluster.cc, OpenErrorText), and the CSI plugin must tell the two apart to
  // name the right secret (csi/csi_error.h).
  if (r == -EPERM || r == -EACCES) {
    return Err(EKEYREJECTED, "wrong encryption passphrase for '{}'", o.spec.ToString());
  }
  if (r == -EINVAL) {
    return Err(EINVAL, "'{}' is not a {} encrypted image (or the passphrase is wrong)", o.spec.ToString(),
               o.encryption == EncryptionFormat::kLuks1 ? "LUKS1" : "LUKS2");
  }
  if (r < 0) return Err(-r, "cannot load encryption of '{}': {}", o.spec.ToString(), strerror(-r));
  return {};
}

Result<void> TakeExclusiveLock(rbd_image_t image, const ImageSpec& spec) {
  // A lock held by another client is an error, not something to wait for or
  // to take over: two writers on one image corrupt its filesystem.
  rbd_lock_mode_t mode;
  char* owners[8];
  size_t n = 8;
  int r = rbd_lock_get_owners(image, &mode, owners, &n);
  if (r == 0 && n > 0) {
    std::string who = owners[0];
    rbd_lock_get_owners_cleanup(owners, n);
    return Err(EBUSY, "image '{}' is locked by another client ({})", spec.ToString(), who);
  }
  r = rbd_lock_acquire(image, RBD_LOCK_MODE_EXCLUSIVE);
  if (r == -EINVAL) return Err(EINVAL, "--exclusive needs the exclusive-lock feature on '{}'", spec.ToString());
  if (r == -EROFS || r == -EBUSY) return Err(EBUSY, "image '{}' is locked by another client", spec.ToString());
  if (r < 0) return Err(-r, "cannot lock image '{}': {}", spec.ToString(), strerror(-r));
  return {};
}

}  // namespace

Result<std::shared_ptr<RbdBackend>> RbdBackend::Open(std::shared_ptr<RadosCluster> cluster,
                                                     const RbdOpenOptions& o) {
  auto io = cluster->OpenPool(o.spec.pool, o.spec.ns);
  if (!io) return Unexpected(io.error());
  rbd_image_t image = nullptr;
  const char* snap = o.spec.is_snapshot() ? o.spec.snap.c_str() : nullptr;
  bool ro = o.read_only || o.spec.is_snapshot();
  int r = ro ? rbd_open_read_only(*io, o.spec.image.c_str(), &image, snap)
             : rbd_open(*io, o.spec.image.c_str(), &image, snap);
  if (r < 0) {
    rados_ioctx_destroy(*io);
    return Err(-r, "{}", OpenErrorText(r, o.spec, *cluster));
  }
  std::shared_ptr<RbdBackend> b(new RbdBackend(std::move(cluster), *io, image, o));
  if (o.encryption != EncryptionFormat::kNone) {
    if (auto e = LoadEncryption(image, o); !e) return Unexpected(e.error());
  }
  if (o.exclusive && !ro) {
    if (auto e = TakeExclusiveLock(image, o.spec); !e) return Unexpected(e.error());
  }
  uint64_t size = 0;
  r = rbd_get_size(image, &size);
  if (r < 0) return Err(-r, "cannot read the size of '{}': {}", o.spec.ToString(), strerror(-r));
  b->size_ = size;
  rbd_get_features(image, &b->features_);
  if (rbd_update_watch(image, &b->watch_handle_, &RbdBackend::OnUpdate, b.get()) == 0) {
    b->watching_ = true;
  }
  return b;
}

RbdBackend::~RbdBackend() {
  UnwatchQuiesce();
  if (watching_) rbd_update_unwatch(image_, watch_handle_);
  int r = rbd_close(image_);  // flushes librbd's cache
  if (r < 0) spdlog::error("closing image '{}': {}", spec_.ToString(), strerror(-r));
  rados_ioctx_destroy(io_);
}

void RbdBackend::OnUpdate(void* arg) {
  auto* b = static_cast<RbdBackend*>(arg);
  b->size_stale_.store(true);
  std::lock_guard lock(b->listener_mu_);
  if (b->listener_) b->listener_();
}

void RbdBackend::SetUpdateListener(std::function<void()> fn) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(fn);
}

Result<void> RbdBackend::WatchQuiesce(std::function<void()> on_quiesce, std::function<void()> on_unquiesce) {
  if (read_only_) return Err(EROFS, "'{}' is read-only: nothing to quiesce", spec_.ToString());
  std::lock_guard watch_lock(quiesce_watch_mu_);
  if (quiesce_watching_) return Err(EBUSY, "'{}' already has a quiesce watch", spec_.ToString());
  {
    std::lock_guard lock(quiesce_mu_);
    on_quiesce_ = std::move(on_quiesce);
    on_unquiesce_ = std::move(on_unquiesce);
  }
  int r = rbd_quiesce_watch(image_, &RbdBackend::OnQuiesce, &RbdBackend::OnUnquiesce, this, &quiesce_handle_);
  if (r < 0) {
    std::lock_guard lock(quiesce_mu_);
    on_quiesce_ = nullptr;
    on_unquiesce_ = nullptr;
    return Err(-r, "cannot watch '{}' for quiesce requests: {}", spec_.ToString(), strerror(-r));
  }
  quiesce_watching_ = true;
  return {};
}

void RbdBackend::UnwatchQuiesce() {
  std::lock_guard watch_lock(quiesce_watch_mu_);
  if (!quiesce_watching_) return;
  // Not under quiesce_mu_: librbd may be running OnQuiesce, which takes it.
  int r = rbd_quiesce_unwatch(image_, quiesce_handle_);
  if (r < 0) spdlog::warn("'{}': removing the quiesce watch: {}", spec_.ToString(), strerror(-r));
  quiesce_watching_ = false;
  std::lock_guard lock(quiesce_mu_);
  on_quiesce_ = nullptr;
  on_unquiesce_ = nullptr;
}

void RbdBackend::QuiesceComplete(int r) { rbd_quiesce_complete(image_, quiesce_handle_, r); }

void RbdBackend::OnQuiesce(void* arg) {
  auto* b = static_cast<RbdBackend*>(arg);
  std::lock_guard lock(b->quiesce_mu_);
  if (b->on_quiesce_) {
    b->on_quiesce_();
  } else {
    // Unreachable (set before the watch, cleared after it); but librbd must
    // never be left waiting for an answer.
    b->QuiesceComplete(0);
  }
}

void RbdBackend::OnUnquiesce(void* arg) {
  auto* b = static_cast<RbdBackend*>(arg);
  std::lock_guard lock(b->quiesce_mu_);
  if (b->on_unquiesce_) b->on_unquiesce_();
}

BackendCaps RbdBackend::Capabilities() const {
  if (size_stale_.exchange(false)) {
    uint64_t size = 0;
    if (rbd_get_size(image_, &size) == 0 && size != size_.load()) {
      spdlog::info("image '{}' resized: {} -> {} bytes", spec_.ToString(), size_.load(), size);
      size_.store(size);
    }
  }
  BackendCaps c;
  c.size = size_.load();
  c.read_only = read_only_;
  c.can_flush = true;
  c.can_fua = !read_only_;
  c.can_trim = !read_only_ && !notrim_;
  c.can_write_zeroes = !read_only_ && !notrim_;
  c.can_multi_conn = true;  // one shared image handle: see the header
  c.can_cache = false;
  c.min_block = encrypted_ ? 4096 : 1;
  c.preferred_block = 4096;
  c.max_block = 32u << 20;
  return c;
}

std::string RbdBackend::Describe() const {
  return fmt::format("rbd {}{}{}", spec_.ToString(), read_only_ ? " (read-only)" : "",
                     encrypted_ ? " (encrypted)" : "");
}

void RbdBackend::OnRbdComplete(rbd_completion_t c, void* arg) {
  // librbd's thread: no loop code here, only a hand-off to the owning loop.
  auto* op = static_cast<Op*>(arg);
  ssize_t ret = rbd_aio_get_return_value(c);
  rbd_aio_release(c);
  op->loop->Post([op, ret] {
    IoRequest* io = op->io;
    RbdBackend* b = op->backend;
    if (ret >= 0 && op->step + 1 < op->plan.count) {
      op->step++;
      // The flush that makes a FUA request durable (the only second step):
      // logged at trace level so a test can see it was really issued.
      spdlog::trace("rbd {}: {} {}+{} with FUA: flushing", b->spec_.ToString(), IoTypeName(io->type),
                    io->offset, io->length);
      int r = b->Start(op);
      if (r >= 0) return;
      delete op;
      io->OnIoDone(r);
      return;
    }
    int result = ret < 0 ? static_cast<int>(ret) : 0;
    if (ret >= 0 && op->plan.ops[op->step] == RbdOp::kRead && static_cast<uint64_t>(ret) < io->length) {
      std::memset(io->data + ret, 0, io->length - static_cast<size_t>(ret));  // short read
    }
    delete op;
    io->OnIoDone(result);
  });
}

// Starts the librbd call of `op`'s current step; returns <0 if it could not start.
int RbdBackend::Start(Op* op) {
  rbd_completion_t c;
  int r = rbd_aio_create_completion(op, &RbdBackend::OnRbdComplete, &c);
  if (r < 0) return r;
  IoRequest* io = op->io;
  switch (op->plan.ops[op->step]) {
    case RbdOp::kRead:
      r = rbd_aio_read(image_, io->offset, io->length, reinterpret_cast<char*>(io->data), c);
      break;
    case RbdOp::kWrite:
      r = rbd_aio_write(image_, io->offset, io->length, reinterpret_cast<const char*>(io->data), c);
      break;
    case RbdOp::kFlush:
      r = rbd_aio_flush(image_, c);
      break;
    case RbdOp::kDiscard:
      r = rbd_aio_discard(image_, io->offset, io->length, c);
      break;
    case RbdOp::kWriteZeroes:
    case RbdOp::kWriteZeroesThick:
      r = rbd_aio_write_zeroes(image_, io->offset, io->length, c,
                               op->plan.ops[op->step] == RbdOp::kWriteZeroesThick
                                   ? RBD_WRITE_ZEROES_FLAG_THICK_PROVISION : 0,
                               0);
      break;
  }
  if (r < 0) rbd_aio_release(c);
  return r;
}

void RbdBackend::Submit(EventLoop& loop, IoRequest& io) {
  // No range assert here, unlike the other backends: a connection checks
  // requests against the size it advertised, and an image can shrink under it
  // (`rbd resize --allow-shrink`; the kernel's writeback of cached pages does
  // exactly this). librbd then refuses the request and its error goes back in
  // the NBD reply. (With asserts live, the old assert aborted the daemon.)
  assert(io.type != IoType::kRead || io.data != nullptr);
  RbdOpPlan plan = PlanRbdOps(io.type, io.flags);
  if (plan.count == 0) {  // CACHE: never advertised; harmless if asked
    io.OnIoDone(0);
    return;
  }
  if (io.type == IoType::kFlush && !written_.load(std::memory_order_acquire)) {
    io.OnIoDone(0);
    return;
  }
  if (io.type == IoType::kWrite || io.type == IoType::kTrim || io.type == IoType::kWriteZeroes) {
    written_.store(true, std::memory_order_release);
  }
  auto* op = new Op{this, &loop, &io, plan};
  int r = Start(op);
  if (r < 0) {
    delete op;
    io.OnIoDone(r);  // same path as a completion
  }
}

}  // namespace rbdnbd
