// Stager: NodeStageVolume and NodeUnstageVolume.
//
//   Stage                                         Unstage
//   -----                                         -------
//   parse context+secrets (INVALID_ARGUMENT)      lock volume (ABORTED if busy)
//   lock volume (ABORTED if busy)                 no record -> OK (already gone)
//   staged already? same options -> OK,           umount staging path if mounted
//                   other options -> ALREADY_EXISTS
//   save record (staged=false)  <- before mapping unmap via daemon (device or spec;
//   choose nbd|ublk (device_type.h), map via          "not mapped" is fine)
//     daemon, or reuse the spec's device
//   save record (device, cookie)                  remove record
//   mount: blkid -> [mkfs | fsck] -> mount -> grow
//   save record (staged=true)
//   any failure: umount, unmap, restore/remove record (what this call did)
//
// deviceType: an explicit nbd or ublk must match the device the volume has
// (staged: ALREADY_EXISTS; mapped by an unfinished stage or another request:
// FAILED_PRECONDITION); auto takes whichever it has. The type mapped is kept
// in the record for unstage, stats, expand and a restarted plugin.
//
// Contract: every method is idempotent and may be called again after a crash
// or restart at any step; callers are gRPC threads, serialised per volume by
// VolumeLocks (taken here). Errors use the codes of csi_error.h.
#pragma once

#include "common/result.h"
#include "csi/node_context.h"

namespace rbdnbd::csi {

class Stager {
 public:
  explicit Stager(NodeContext ctx) : ctx_(std::move(ctx)) {}

  Result<void> Stage(const StageRequest& request);
  Result<void> Unstage(const std::string& volume_id, const std::string& staging_path);

 private:
  struct Undo {
    bool mapped = false;   // this call mapped the device
    bool mounted = false;  // this call mounted the staging path
  };

  Result<bool> StillStaged(const VolumeRecord& record);
  Result<void> EnsureMapped(VolumeRecord* record, VolumeParams* params, bool owned, Undo* undo);
  Result<void> EnsureMounted(VolumeRecord* record, const VolumeParams& params, Undo* undo);
  Result<void> UnmapRecorded(const VolumeRecord& record);
  void Rollback(const VolumeRecord& record, const Undo& undo, const std::optional<VolumeRecord>& previous);

  NodeContext ctx_;
};

// Mount options stage uses: the capability's flags, plus nouuid for xfs and
// ro (+ no journal replay) for read-only volumes. Pure.
std::vector<std::string> StageMountOptions(const VolumeRecord& record);

}  // namespace rbdnbd::csi
