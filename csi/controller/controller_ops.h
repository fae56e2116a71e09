// ControllerOps: what each Controller RPC does on Ceph, behind the gRPC
// boundary (controller_service.h checks fields and converts errors; this
// does the work). volume_ops.cc has the volume RPCs, snapshot_ops.cc the
// snapshot ones.
//
// Contract
// * Every method returns Result<T>: a plugin code (csi_error.h,
//   controller_error.h) for what it decides, or a CephStore errno passed
//   through (EACCES, ETIMEDOUT, ...) for what Ceph said.
// * Called on gRPC threads, concurrently. Calls on one CSI name (creates) or
//   one id (deletes, expands) wait for each other (NameLocks); no lock is held
//   across a Ceph call except that per-name one.
// * Idempotent by name across processes through the name journal:
//
//     reserve "name/<n>" = {uuid, creating} --- another value there? ---+
//          |                                                            |
//          v                                   same fingerprint+size?  no -> ALREADY_EXISTS
//     make image(s) --fail--> remove them,           | yes
//          |                  drop the key           v
//          v                                   ready and image there? -> return it
//     update "name/<n>" = {uuid, ready}        creating (a crash): redo the make
//          |                                   with the stored uuid
//          v
//     answer
//
// * The cluster config is read on every call (a ConfigMap update needs no
//   restart). Credentials that worked are remembered (CredentialCache) for
//   ListVolumes and GetCapacity, which carry none.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "csi/controller/ceph_store.h"
#include "csi/controller/create_params.h"
#include "csi/controller/credentials.h"
#include "csi/controller/journal_record.h"
#include "csi/controller/name_locks.h"
#include "csi/controller/race.h"
#include "csi/controller/volume_id.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

struct ControllerOptions {
  std::string cluster_config = "/etc/rbd-nbdd-csi/config.json";
  uint32_t max_clone_depth = 8;
  std::chrono::seconds connect_timeout{30};
};

struct CreateVolumeArgs {
  std::string name;
  int64_t required_bytes = 0;
  int64_t limit_bytes = 0;
  StringMap parameters;
  StringMap secrets;
  std::string source_snapshot_id;  // at most one of the two
  std::string source_volume_id;
};

struct VolumeInfo {
  std::string volume_id;
  uint64_t capacity_bytes = 0;
  StringMap context;
};

struct SnapshotInfo {
  std::string snapshot_id;
  std::string source_volume_id;
  uint64_t size_bytes = 0;
  int64_t created_s = 0;
  int32_t created_nanos = 0;
};

template <typename T>
struct Page {
  std::vector<T> entries;
  std::string next_token;
};

// One page of `all` in the order of its ids (`id`): the entries after
// `token` (a next_token handed out before), at most `max_entries` of them (0:
// no limit), and next_token the last one's id when more remain.
template <typename T>
Page<T> Paginate(std::vector<T> all, std::string T::*id, int32_t max_entries, const std::string& token) {
  std::sort(all.begin(), all.end(), [id](const T& a, const T& b) { return a.*id < b.*id; });
  Page<T> page;
  for (auto& e : all) {
    if (!token.empty() && e.*id <= token) continue;
    if (max_entries > 0 && page.entries.size() == static_cast<size_t>(max_entries)) {
      page.next_token = page.entries.back().*id;
      break;
    }
    page.entries.push_back(std::move(e));
  }
  return page;
}

class ControllerOps {
 public:
  ControllerOps(CephStore* store, ControllerOptions options) : store_(store), options_(std::move(options)) {}

  Result<VolumeInfo> CreateVolume(const CreateVolumeArgs& args);
  // A malformed id, or one whose image and record are gone: OK.
  Result<void> DeleteVolume(const std::string& volume_id, const StringMap& secrets);
  // Returns the new size. Malformed or unknown: kNotFound; shrink: kOutOfRange.
  Result<uint64_t> ExpandVolume(const std::string& volume_id, int64_t required_bytes, int64_t limit_bytes,
                                const StringMap& secrets);
  // kNotFound unless the volume exists (secrets optional: else remembered).
  Result<void> CheckVolumeExists(const std::string& volume_id, const StringMap& secrets);
  // kInvalidArgument unless `parameters` would make a volume (Validate).
  Result<void> CheckCreateParameters(const StringMap& parameters) const;
  Result<Page<VolumeInfo>> ListVolumes(int32_t max_entries, const std::string& starting_token);
  Result<uint64_t> GetCapacity(const StringMap& parameters);

  Result<SnapshotInfo> CreateSnapshot(const std::string& source_volume_id, const std::string& name,
                                      const StringMap& parameters, const StringMap& secrets);
  Result<void> DeleteSnapshot(const std::string& snapshot_id, const StringMap& secrets);
  Result<Page<SnapshotInfo>> ListSnapshots(const std::string& snapshot_id, const std::string& source_volume_id,
                                           int32_t max_entries, const std::string& starting_token,
                                           const StringMap& secrets);

  CredentialCache& credentials() { return credentials_; }

 private:
  struct Session {
    CephTarget target;
    CephUser user;
    std::unique_ptr<CephSession> session;
  };

  Result<ClusterConfig> LoadClusters() const;
  Result<Session> Open(const ClusterRef& cluster, const std::string& mon_host, const std::string& pool,
                       const std::string& ns, const CephUser& user);
  Result<Session> OpenForVolume(const VolumeRef& ref, const CephUser& user);
  // A user from the secrets when they name one, else the remembered one.
  Result<CephUser> UserFor(const ClusterRef& cluster, const StringMap& secrets, std::string_view secret);
  void RememberSuccess(const Session& s, const ClusterRef& cluster);

  // Reads of a journal record that keeps changing under a guarded write before
  // the caller gives up (kAborted: the CO retries).
  static constexpr int kJournalRounds = 4;

  // Takes the journal record `*record` (stored as `stored`) over for a new
  // attempt (journal_record.h): "creating", a new attempt id, written with a
  // swap guarded by `stored`. The value written; nullopt when the record
  // changed meanwhile (the caller reads it again); or the swap's error.
  template <typename Record>
  static Result<std::optional<std::string>> TakeOver(CephSession& s, std::string_view object, const std::string& key,
                                                     const std::string& stored, Record* record) {
    record->ready = false;
    record->attempt = NewUuid();
    std::string value = EncodeRecord(*record);
    auto swapped = s.JournalSwap(std::string(object), key, stored, value);
    if (swapped) return std::optional<std::string>(std::move(value));
    if (swapped.error().code == ECANCELED) return std::optional<std::string>();
    return Unexpected(swapped.error());
  }

  // volume_ops.cc
  struct MakeVolume;
  Result<uint64_t> MakeImage(Session& target, const MakeVolume& make);
  // Makes the image of the attempt that holds `key` with the value `held`
  // (`record`, encoded), then swaps the record to "ready".
  Result<VolumeInfo> FinishCreate(Session& s, const MakeVolume& make, VolumeJournalRecord record,
                                  const std::string& held, const std::string& key);
  Result<std::vector<std::pair<std::string, std::string>>> ListJournal(CephSession& s, std::string_view object);
  // The CSI name an image was made for (its csi.name): "" when the image or
  // the key is gone.
  static Result<std::string> CsiNameOf(CephSession& s, const std::string& image);
  // After a delete: drops from the journal `object` (kVolumesObject or
  // kSnapshotsObject) the key of the CSI `name` (the image's csi.name) or,
  // when that is unknown (the image gone already: a retried delete), every
  // key whose record names `uuid`. A key whose record names another uuid
  // stays: the name belongs to a newer volume or snapshot.
  Result<void> DropJournalKeys(CephSession& s, std::string_view object, const std::string& name,
                               const std::string& uuid);
  // The answer when a takeover cannot remove what the attempt it took over
  // left (`what`, an image, for the message) for `call` ("create of 'N'"):
  // kAborted ("retry"), never a final code that would make the
  // external-provisioner give up and leave it behind, when a killed client's
  // watch still holds it (EBUSY, until the OSD times the watch out, ~30 s) or
  // another attempt is changing it (IsRaceErrno); the record stays the
  // caller's, "creating", and the retry takes it over again. Else `e` itself.
  static Error TakeOverCleanupError(const Error& e, std::string_view call, std::string_view what);
  // A clone of a source's temporary snapshot (`image`@`snap`, just made and
  // stat'ed) that fails with ENOENT: another client's change of the source
  // raced it (two controllers on one source), or the source went meanwhile.
  // kAborted ("retry"), never NOT_FOUND, which the CO takes as final: the
  // retry finds the source, or answers NOT_FOUND when it is gone. Other
  // errors are `e` itself.
  static Error CloneError(const Error& e, std::string_view image, std::string_view snap);
  // The answer of a create attempt that found its image made (EEXIST) by
  // another attempt on the same journal record: one it took over that is
  // still running, and may still be in the middle of librbd's create (which
  // is not atomic). Dropping the record and removing the image now would race
  // that create (the removal finds no image yet, the create then finishes):
  // an image nothing refers to. So nothing is undone: the record stays this
  // attempt's, "creating", and the retry's takeover removes what the other
  // attempt made, once it is whole (or is told ABORTED again while that
  // attempt still has it open). kAborted, naming `what` ("'N'",
  // "snapshot 'N'") and the image.
  static Unexpected KeepForRetry(std::string_view what, std::string_view image, const Error& error);
  // Removes the temporary snapshot image@snap (TmpSnapshotName), trying again
  // for ~1.5 s while another client's change of the image collides with it
  // (IsRemovalRace: two controllers on one source). ENOENT is success.
  static Result<void> RemoveTmpSnapshot(CephSession& s, const std::string& image, const std::string& snap);
  // Before a volume's removal: removes the temporary snapshots a create
  // attempt left on `image` (it was killed between its clone and the removal,
  // or the removal failed). Only this driver makes them, and the clones made
  // from one keep it in the trash namespace (clone v2); left in place, one
  // would keep the removed volume in the trash for good. ENOENT (no image) is
  // success.
  static Result<void> RemoveLeftoverTmpSnapshots(CephSession& s, const std::string& image);
  // Undoes a failed create attempt that held `key` of the journal `object`
  // with the value `held`: drops the record if it still holds it, then calls
  // `remove_made` (which removes the images of `uuid`), unless another attempt
  // took the record over (a record naming `uuid` with another value): that
  // attempt owns the uuid's images now. When the journal cannot be changed or
  // read, nothing is removed: the record stays "creating", and the next create
  // of the name takes it over and removes them. Errors are logged only.
  // True when the attempt no longer held the record (another one took it
  // over, or held it and removed it): its failure is the race's, and the
  // caller answers ABORTED ("retry").
  static bool UndoAttempt(CephSession& s, std::string_view object, const std::string& key, const std::string& held,
                          const std::string& uuid, const std::function<void()>& remove_made);

  // snapshot_ops.cc
  // Makes the snapshot of the attempt that holds `key` with the value `held`
  // (`record`, encoded), then swaps the record to "ready".
  Result<SnapshotInfo> MakeSnapshot(Session& s, const SnapshotRef& ref, const std::string& name,
                                    const std::string& key, SnapshotJournalRecord record, const std::string& held,
                                    QuiesceMode quiesce);
  // What a snapshot's create attempt made: the image (never to the trash)
  // and the temporary snapshot `tmp` of the source. Best effort: every step
  // is tried; the image's own removal error is returned.
  Result<void> RemoveSnapshotImages(Session& s, const SnapshotRef& ref, const std::string& tmp);
  Result<std::vector<SnapshotInfo>> SnapshotsOfPool(const PoolRef& pool, const CephUser& user,
                                                    const std::string& source_uuid);

  CephStore* store_;
  ControllerOptions options_;
  CredentialCache credentials_;
  NameLocks locks_;
};

// "best-effort" (default), "required", "skip"; other: kInvalidArgument.
Result<QuiesceMode> ParseQuiesce(const std::string& value);

}  // namespace rbdnbd::csi
