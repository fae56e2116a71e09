// The snapshot RPCs of ControllerOps (controller_ops.h). A CSI snapshot is an
// image of its own (README.md, "Snapshots, clones, and deletes"):
//
//   source csi-vol-U ──snap (quiesce)──> csi-vol-U@csi-tmp-A
//        clone v2 ──> csi-snap-S ──snap──> csi-snap-S@csi-snap-S  (what volumes clone)
//   then csi-vol-U@csi-tmp-A is removed (clone v2 keeps it in the trash
//   namespace while csi-snap-S needs it); A is the create attempt's id.
#include <rbd/features.h>
#include <spdlog/spdlog.h>

#include "csi/controller/controller_ops.h"

namespace rbdnbd::csi {

namespace {

constexpr std::string_view kSecret = "snapshotter";

// The temporary snapshot of the source (TmpSnapshotName, by the attempt that
// makes it). Records written before attempts existed named it by the
// snapshot's uuid.
std::string TmpSnapName(const SnapshotJournalRecord& record) {
  return TmpSnapshotName(record.attempt.empty() ? record.uuid : record.attempt);
}

}  // namespace

Result<QuiesceMode> ParseQuiesce(const std::string& value) {
  if (value.empty() || value == "best-effort") return QuiesceMode::kBestEffort;
  if (value == "required") return QuiesceMode::kRequired;
  if (value == "skip") return QuiesceMode::kSkip;
  return Err(kInvalidArgument, "parameter 'quiesce' must be best-effort, required or skip, not '{}'", value);
}

Result<SnapshotInfo> ControllerOps::CreateSnapshot(const std::string& source_volume_id, const std::string& name,
                                                   const StringMap& parameters, const StringMap& secrets) {
  QuiesceMode quiesce = QuiesceMode::kBestEffort;
  std::string cluster_id;
  for (const auto& [key, value] : parameters) {
    if (key == "quiesce") {
      auto q = ParseQuiesce(value);
      if (!q) return Unexpected(q.error());
      quiesce = *q;
    } else if (key == "clusterID") {
      cluster_id = value;
    } else if (key.rfind(kK8sParamPrefix, 0) != 0) {
      return Err(kInvalidArgument, "unknown parameter '{}' (known: quiesce, clusterID)", key);
    }
  }
  auto source = DecodeVolumeId(source_volume_id);
  if (!source) return Err(kNotFound, "source volume not found: {}", source.error().message);
  if (!cluster_id.empty() && !(source->cluster.by_id && source->cluster.value == cluster_id)) {
    return Err(kInvalidArgument, "parameter 'clusterID' '{}' is not the source volume's cluster", cluster_id);
  }
  auto user = UserFromSecrets(secrets, kSecret);
  if (!user) return Unexpected(user.error());
  SnapshotRef probe{*source, std::string(32, '0')};
  if (size_t n = EncodeSnapshotId(probe).size(); n > kMaxIdBytes) {
    return Err(kInvalidArgument, "the snapshot_id would be {} bytes, over CSI's {}: use a shorter clusterID", n,
               kMaxIdBytes);
  }

  auto guard = locks_.Lock("snapshot-name/" + name);
  auto s = OpenForVolume(*source, *user);
  if (!s) return Unexpected(s.error());
  std::string key = NameKey(name);
  SnapshotJournalRecord mine;
  mine.uuid = NewUuid();
  mine.source_uuid = source->uuid;
  mine.attempt = NewUuid();
  std::string held = EncodeRecord(mine);
  for (int round = 0;; ++round) {
    auto stored = s->session->JournalReserve(std::string(kSnapshotsObject), key, held);
    if (!stored) {
      if (stored.error().code == ENOENT) return Err(kNotFound, "source volume {} does not exist (no pool)", source_volume_id);
      return Unexpected(stored.error());
    }
    if (*stored == held) break;  // reserved: a new uuid
    auto record = DecodeSnapshotJournalRecord(*stored, key);
    if (!record) return Unexpected(record.error());
    SnapshotRef ref{*source, record->uuid};
    if (record->source_uuid != mine.source_uuid) {
      return Err(kAlreadyExists, "a snapshot named '{}' exists already, of another volume", name);
    }
    if (record->ready) {
      auto snap = s->session->StatSnapshot(ref.ImageName(), ref.ImageName());
      if (snap) {
        RememberSuccess(*s, source->cluster);
        return SnapshotInfo{EncodeSnapshotId(ref), source_volume_id, snap->size_bytes, snap->created_unix_s,
                            snap->created_nanos};
      }
      if (snap.error().code != ENOENT) return Unexpected(snap.error());
    }
    // A crash left it half made, or another controller is making it now:
    // take the record over atomically (journal_record.h), then start over on
    // its uuid.
    SnapshotJournalRecord taken = *record;
    auto taken_value = TakeOver(*s->session, kSnapshotsObject, key, *stored, &taken);
    if (!taken_value) return Unexpected(taken_value.error());
    if (!*taken_value) {
      if (round + 1 == kJournalRounds) {
        return Err(kAborted, "another create of snapshot '{}' keeps changing its journal record; retry", name);
      }
      continue;  // it changed under us: look again
    }
    if (record->ready) {
      spdlog::warn("CreateSnapshot {}: the journal says ready but {} is gone: making it again", name, ref.ImageName());
    } else {
      spdlog::warn("CreateSnapshot {}: finishing a snapshot that was interrupted or is still under way elsewhere ({})",
                   name, ref.ImageName());
    }
    if (auto r = RemoveSnapshotImages(*s, ref, TmpSnapName(*record)); !r) {
      return Unexpected(
          TakeOverCleanupError(r.error(), fmt::format("create of snapshot '{}'", name), ref.ImageName()));
    }
    mine = std::move(taken);
    held = std::move(**taken_value);
    break;
  }
  SnapshotRef ref{*source, mine.uuid};
  auto made = MakeSnapshot(*s, ref, name, key, mine, held, quiesce);
  if (!made) return Unexpected(made.error());
  made->source_volume_id = source_volume_id;
  RememberSuccess(*s, source->cluster);
  return made;
}

Result<void> ControllerOps::RemoveSnapshotImages(Session& s, const SnapshotRef& ref, const std::string& tmp) {
  std::string image = ref.ImageName();
  Result<void> outcome;
  // Another attempt still running may snapshot the image between the two
  // removals (ENOTEMPTY): remove its snapshot and go again. Never the trash:
  // a trashed image that keeps a snapshot would stay there for good.
  for (int round = 0;; ++round) {
    if (auto r = s.session->RemoveSnapshot(image, image); !r && r.error().code != ENOENT) {
      spdlog::warn("cleanup: cannot remove snapshot {}@{}: {}", image, image, r.error().message);
    }
    auto r = s.session->RemoveNew(image);
    if (r) break;
    if (r.error().code == ENOTEMPTY && round + 1 < kJournalRounds) continue;
    if (IsRemovalRace(r.error().code) && BackOffForRace(round)) continue;
    spdlog::warn("cleanup: cannot remove {}: {}", image, r.error().message);
    outcome = Unexpected(r.error());
    break;
  }
  if (auto r = RemoveTmpSnapshot(*s.session, ref.source.ImageName(), tmp); !r) {
    spdlog::warn("cleanup: cannot remove snapshot {}@{}: {}", ref.source.ImageName(), tmp, r.error().message);
  }
  return outcome;
}

Result<SnapshotInfo> ControllerOps::MakeSnapshot(Session& s, const SnapshotRef& ref, const std::string& name,
                                                 const std::string& key, SnapshotJournalRecord record,
                                                 const std::string& held, QuiesceMode quiesce) {
  CephSession& ceph = *s.session;
  std::string src = ref.source.ImageName();
  std::string tmp = TmpSnapName(record);
  std::string image = ref.ImageName();
  // Its temporary snapshot is its own, whoever holds the record now.
  auto remove_own_tmp = [&] {
    if (auto r = RemoveTmpSnapshot(ceph, src, tmp); !r) {
      spdlog::warn("rollback: cannot remove snapshot {}@{}: {}", src, tmp, r.error().message);
    }
  };
  auto rollback = [&](Error error) -> Unexpected {
    if (error.code == EEXIST) {
      remove_own_tmp();
      return KeepForRetry(fmt::format("snapshot '{}'", name), image, error);
    }
    // RemoveSnapshotImages logs what it cannot remove; the original error is the answer.
    bool lost = UndoAttempt(ceph, kSnapshotsObject, key, held, ref.snap_uuid,
                            [&] { (void)RemoveSnapshotImages(s, ref, tmp); });
    if (lost) remove_own_tmp();
    if (!lost && error.code != ECANCELED) return Unexpected(std::move(error));
    // Another controller took the name over meanwhile (it holds the record
    // now, or held it and undid it). Not this request's failure: retry.
    return Unexpected(Error{kAborted, fmt::format("another create of snapshot '{}' took it over while this one "
                                                  "made {}; retry ({})",
                                                  name, image, error.message)});
  };

  auto info = ceph.Stat(src);
  if (!info) {
    if (info.error().code == ENOENT) {
      return rollback(Error{kNotFound, fmt::format("source volume image {} does not exist", src)});
    }
    return rollback(info.error());
  }
  auto tmp_snap = ceph.CreateSnapshot(src, tmp, quiesce);
  if (!tmp_snap) {
    const Error& e = tmp_snap.error();
    bool quiesce_failure = quiesce == QuiesceMode::kRequired && e.code != EACCES && e.code != EPERM &&
                           e.code != ETIMEDOUT && e.code != ENOENT;
    if (quiesce_failure) {
      return rollback(Error{kAborted, fmt::format("quiesce is required, and the snapshot of {} failed (a node that "
                                                  "maps it did not quiesce its filesystem?): {}",
                                                  src, e.message)});
    }
    return rollback(e);
  }
  if (tmp_snap->quiesce_failed) {
    spdlog::warn("CreateSnapshot {}: a node mapping {} did not quiesce: the snapshot is crash-consistent only", name,
                 src);
  }
  NewImage clone;
  clone.name = image;
  clone.size_bytes = tmp_snap->size_bytes;
  clone.features = info->features | RBD_FEATURE_LAYERING;
  clone.data_pool = info->data_pool;
  clone.metadata = {{"csi.name", name}, {"csi.source", ref.source.uuid}};
  if (auto r = ceph.Clone(ceph, src, tmp, clone); !r) return rollback(CloneError(r.error(), src, tmp));
  auto snap = ceph.CreateSnapshot(image, image, QuiesceMode::kSkip);
  if (!snap) return rollback(snap.error());
  if (auto r = RemoveTmpSnapshot(ceph, src, tmp); !r) {
    spdlog::warn("CreateSnapshot {}: cannot remove the temporary snapshot {}@{}: {}", name, src, tmp,
                 r.error().message);
  }
  record.ready = true;
  record.size = snap->size_bytes;
  record.created_s = snap->created_unix_s;
  record.created_nanos = snap->created_nanos;
  if (auto r = ceph.JournalSwap(std::string(kSnapshotsObject), key, held, EncodeRecord(record)); !r) {
    return rollback(r.error());
  }
  spdlog::info("CreateSnapshot {}: made {} from {} ({} bytes)", name, image, src, snap->size_bytes);
  return SnapshotInfo{EncodeSnapshotId(ref), "", snap->size_bytes, snap->created_unix_s, snap->created_nanos};
}

Result<void> ControllerOps::DeleteSnapshot(const std::string& snapshot_id, const StringMap& secrets) {
  auto ref = DecodeSnapshotId(snapshot_id);
  if (!ref) {
    spdlog::info("DeleteSnapshot {}: not an id of this driver, nothing to delete ({})", snapshot_id,
                 ref.error().message);
    return {};
  }
  auto user = UserFromSecrets(secrets, kSecret);
  if (!user) return Unexpected(user.error());
  auto guard = locks_.Lock("snapshot-id/" + snapshot_id);
  auto s = OpenForVolume(ref->source, *user);
  if (!s) return Unexpected(s.error());
  std::string image = ref->ImageName();
  auto name = CsiNameOf(*s->session, image);
  if (!name) return Unexpected(name.error());
  if (auto r = s->session->RemoveSnapshot(image, image); !r && r.error().code != ENOENT) return Unexpected(r.error());
  auto removed = s->session->Remove(image);
  if (!removed) {
    if (removed.error().code != ENOENT) return Unexpected(removed.error());
    return {};  // the pool is gone
  }
  if (auto r = DropJournalKeys(*s->session, kSnapshotsObject, *name, ref->snap_uuid); !r) return Unexpected(r.error());
  if (auto purged = s->session->PurgeTrash("csi-"); !purged) {
    spdlog::warn("DeleteSnapshot {}: purging the trash of {}: {}", snapshot_id, s->target.pool,
                 purged.error().message);
  }
  RememberSuccess(*s, ref->source.cluster);
  return {};
}

Result<std::vector<SnapshotInfo>> ControllerOps::SnapshotsOfPool(const PoolRef& pool, const CephUser& user,
                                                                 const std::string& source_uuid) {
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  auto mons = ResolveMonitors(pool.cluster, *clusters);
  if (!mons) return Unexpected(mons.error());
  auto s = Open(pool.cluster, *mons, pool.pool, pool.ns, user);
  if (!s) return Unexpected(s.error());
  std::vector<SnapshotInfo> out;
  auto entries = ListJournal(*s->session, kSnapshotsObject);
  if (!entries) {
    if (entries.error().code == ENOENT) return out;
    return Unexpected(entries.error());
  }
  for (const auto& [key, value] : *entries) {
    auto record = DecodeSnapshotJournalRecord(value, key);
    if (!record || !record->ready) continue;
    if (!source_uuid.empty() && record->source_uuid != source_uuid) continue;
    VolumeRef source{pool.cluster, pool.pool, pool.ns, record->source_uuid};
    out.push_back(SnapshotInfo{EncodeSnapshotId(SnapshotRef{source, record->uuid}), EncodeVolumeId(source),
                               record->size, record->created_s, record->created_nanos});
  }
  return out;
}

Result<Page<SnapshotInfo>> ControllerOps::ListSnapshots(const std::string& snapshot_id,
                                                        const std::string& source_volume_id, int32_t max_entries,
                                                        const std::string& starting_token, const StringMap& secrets) {
  if (max_entries < 0) return Err(kInvalidArgument, "max_entries must not be negative");
  if (!starting_token.empty() && !DecodeSnapshotId(starting_token)) {
    return Err(kAborted, "starting_token '{}' is not one this controller handed out", starting_token);
  }
  if (!snapshot_id.empty()) {
    auto ref = DecodeSnapshotId(snapshot_id);
    if (!ref) return Page<SnapshotInfo>{};
    if (!source_volume_id.empty() && EncodeVolumeId(ref->source) != source_volume_id) return Page<SnapshotInfo>{};
    auto user = UserFor(ref->source.cluster, secrets, kSecret);
    if (!user) return Unexpected(user.error());
    auto s = OpenForVolume(ref->source, *user);
    if (!s) return Unexpected(s.error());
    auto snap = s->session->StatSnapshot(ref->ImageName(), ref->ImageName());
    if (!snap) {
      if (snap.error().code == ENOENT) return Page<SnapshotInfo>{};
      return Unexpected(snap.error());
    }
    std::vector<SnapshotInfo> one = {SnapshotInfo{EncodeSnapshotId(*ref), EncodeVolumeId(ref->source),
                                                  snap->size_bytes, snap->created_unix_s, snap->created_nanos}};
    return Paginate(std::move(one), &SnapshotInfo::snapshot_id, max_entries, starting_token);
  }
  if (!source_volume_id.empty()) {
    auto ref = DecodeVolumeId(source_volume_id);
    if (!ref) return Page<SnapshotInfo>{};
    auto user = UserFor(ref->cluster, secrets, kSecret);
    if (!user) return Unexpected(user.error());
    auto found = SnapshotsOfPool(PoolRef{ref->cluster, ref->pool, ref->ns}, *user, ref->uuid);
    if (!found) return Unexpected(found.error());
    return Paginate(std::move(found).value(), &SnapshotInfo::snapshot_id, max_entries, starting_token);
  }
  auto pools = credentials_.Pools();
  if (pools.empty() && !HasUser(secrets)) {
    return Err(kFailedPrecondition, "no pool known yet: no call has succeeded since the controller started");
  }
  std::vector<SnapshotInfo> all;
  for (const auto& pool : pools) {
    auto user = UserFor(pool.cluster, secrets, kSecret);
    if (!user) continue;
    auto found = SnapshotsOfPool(pool, *user, "");
    if (!found) {
      if (found.error().code == kInvalidArgument) continue;  // a cluster taken out of the config
      return Unexpected(found.error());
    }
    for (auto& e : *found) all.push_back(std::move(e));
  }
  return Paginate(std::move(all), &SnapshotInfo::snapshot_id, max_entries, starting_token);
}

}  // namespace rbdnbd::csi
