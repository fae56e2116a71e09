// RbdQuiesceWatch: makes the daemon (or serve) one of the clients that librbd
// asks to quiesce before it snapshots an image with quiesce
// (rbd_snap_create2 without RBD_SNAP_CREATE_SKIP_QUIESCE), as Ceph's
// `rbd-nbd --quiesce` does. It ties a RbdBackend's quiesce watch to a
// QuiesceSession (quiesce_session.h has the state machine and its bounds).
//
// Contract
// --------
// * Start() registers the watch; control thread. Read-only images and
//   snapshots get none (EROFS): nothing can change under them.
// * The destructor returns with nothing quiesced and no callback pending, in
//   this order: the session thaws and refuses new quiesces (-ESHUTDOWN), the
//   watch is removed (librbd waits for a quiesce in flight, which the session
//   still answers), the session's worker ends. Bounded by about twice the
//   timeout. Destroy it before the device goes (unmap, detach, SIGTERM).
// * The watch keeps the backend alive; the backend does not own the watch.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "control/quiesce_session.h"
#include "rbd/rbd_backend.h"

namespace rbdnbd {

class RbdQuiesceWatch {
 public:
  // `device`: /dev/nbdN for a kernel device ("-" for serve). Without a hook
  // the filesystems mounted from `device` are frozen; with one, the hook runs.
  static Result<std::unique_ptr<RbdQuiesceWatch>> Start(std::shared_ptr<RbdBackend> backend,
                                                        const std::string& device, const QuiesceOptions& options);
  // Start() for a kernel device, logging instead of failing: a device
  // without the watch still works, its snapshots are crash-consistent only.
  static std::unique_ptr<RbdQuiesceWatch> StartOrWarn(std::shared_ptr<RbdBackend> backend,
                                                      const std::string& device, const QuiesceOptions& options);
  ~RbdQuiesceWatch();

  QuiesceSession& session() { return *session_; }

 private:
  RbdQuiesceWatch() = default;
  std::shared_ptr<RbdBackend> backend_;
  std::unique_ptr<QuiesceSession> session_;
};

}  // namespace rbdnbd
