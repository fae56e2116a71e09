// RbdBackend: an RBD image (or snapshot) served through librbd's async API.
//
// Contract (see backend/backend.h for the general one)
// ----------------------------------------------------
// * Open() runs on a control thread (never a loop): it opens the pool, the
//   image or snapshot, loads LUKS encryption, and takes the exclusive lock when
//   asked. Every failure is one line naming the problem (unknown pool, image or
//   snapshot; permission denied; locked by another client; wrong passphrase).
// * Submit() runs on a loop thread and runs the librbd calls PlanRbdOps()
//   decides (rbd_op_plan.h has the table): one call per request, plus an
//   rbd_aio_flush after a WRITE, TRIM or WRITE_ZEROES with FUA, so that each
//   FUA request is durable when it completes. A wrong passphrase is
//   EKEYREJECTED (EPERM/EACCES mean cephx refused the user).
// * Completions: librbd runs our completion callback on one of its own
//   threads. That callback runs no loop code: it only Post()s (a locked push
//   plus at most one eventfd write) the result to the EventLoop that
//   submitted the request, where OnIoDone() then runs. So each completion goes
//   straight to its owning loop, with no per-image "home" loop to hop through
//   and nothing to tear down when an image closes while others stay open.
// * Multi-connection safety: all connections of an export share this ONE
//   rbd_image_t, and so one librbd cache. rbd_aio_flush() on it makes every
//   write completed on the handle durable, whichever connection sent it (with
//   rbd_cache=true the cache is per handle; writethrough-until-flush does not
//   change that). That is exactly CAN_MULTI_CONN's promise, so we advertise it.
//   Opening one handle per connection would break it, and would also make the
//   exclusive lock bounce between our own handles.
// * Resize: an update watch marks the size stale; Capabilities() (any thread
//   but librbd's) then re-reads it, so new connections see the new size. The
//   optional resize listener is called on librbd's thread and must only post.
// * Quiesce watch (WatchQuiesce): librbd calls on_quiesce before a snapshot
//   with quiesce and on_unquiesce after it, on its own thread; both must only
//   hand off. Each on_quiesce must be answered by exactly one
//   QuiesceComplete(r) from another thread (librbd asserts on an unasked
//   completion and waits forever for a missing one). UnwatchQuiesce() waits
//   while librbd is delivering a quiesce that is not completed yet, so
//   complete first. The destructor unwatches if the owner did not.
// * Destruction waits for nothing: the frontend has drained every request.
#pragma once

#include <rbd/librbd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "backend/backend.h"
#include "common/result.h"
#include "rbd/cluster.h"
#include "rbd/image_spec.h"
#include "rbd/secret.h"

namespace rbdnbd {

enum class EncryptionFormat { kNone, kLuks1, kLuks2 };
Result<EncryptionFormat> ParseEncryptionFormat(std::string_view text);

struct RbdOpenOptions {
  ImageSpec spec;
  bool read_only = false;   // also implied by a snapshot
  bool exclusive = false;   // take the exclusive lock; fail if another client holds it
  bool notrim = false;      // do not advertise TRIM / WRITE_ZEROES
  EncryptionFormat encryption = EncryptionFormat::kNone;
  Secret passphrase = {};
};

class RbdBackend final : public Backend {
 public:
  static Result<std::shared_ptr<RbdBackend>> Open(std::shared_ptr<RadosCluster> cluster,
                                                  const RbdOpenOptions& options);
  ~RbdBackend() override;

  BackendCaps Capabilities() const override;
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

  // Called (on a librbd thread) after the image header changed, e.g. a resize.
  void SetUpdateListener(std::function<void()> fn);
  // Registers librbd's quiesce watch (rbd_quiesce_watch); at most one. EROFS
  // for a read-only image or snapshot (nothing can change under a snapshot).
  Result<void> WatchQuiesce(std::function<void()> on_quiesce, std::function<void()> on_unquiesce);
  void QuiesceComplete(int r);  // rbd_quiesce_complete; any thread but librbd's
  void UnwatchQuiesce();        // no callback runs after it returns
  bool read_only() const { return read_only_; }
  const ImageSpec& spec() const { return spec_; }
  const std::shared_ptr<RadosCluster>& cluster() const { return cluster_; }
  uint64_t features() const { return features_; }

 private:
  struct Op;
  RbdBackend(std::shared_ptr<RadosCluster> cluster, rados_ioctx_t io, rbd_image_t image,
             const RbdOpenOptions& options);
  static void OnRbdComplete(rbd_completion_t c, void* arg);
  static void OnUpdate(void* arg);
  static void OnQuiesce(void* arg);
  static void OnUnquiesce(void* arg);
  int Start(Op* op);

  std::shared_ptr<RadosCluster> cluster_;  // keeps the connection open
  rados_ioctx_t io_;
  rbd_image_t image_;
  ImageSpec spec_;
  bool read_only_;
  bool notrim_;
  bool encrypted_;
  uint64_t features_ = 0;
  uint64_t watch_handle_ = 0;
  bool watching_ = false;
  mutable std::atomic<uint64_t> size_{0};
  mutable std::atomic<bool> size_stale_{false};
  // Set by the first write-like request: until then a FLUSH has nothing to
  // make durable and must not reach librbd (which refuses it with EROFS when
  // another client holds the exclusive lock).
  std::atomic<bool> written_{false};
  std::mutex listener_mu_;
  std::function<void()> listener_;
  std::mutex quiesce_mu_;  // guards the two callbacks below; never held across a librbd call
  std::function<void()> on_quiesce_;
  std::function<void()> on_unquiesce_;
  std::mutex quiesce_watch_mu_;  // serialises WatchQuiesce/UnwatchQuiesce
  uint64_t quiesce_handle_ = 0;
  std::atomic<bool> quiesce_watching_{false};
};

}  // namespace rbdnbd
