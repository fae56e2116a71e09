// The volume RPCs of ControllerOps (controller_ops.h), and the session and
// credential helpers the snapshot RPCs share.
#include <rbd/features.h>
#include <spdlog/spdlog.h>

#include "csi/controller/controller_ops.h"

namespace rbdnbd::csi {

namespace {

constexpr size_t kJournalPage = 1000;

std::string ImageSpec(const CephTarget& t, const std::string& image) {
  return t.ns.empty() ? t.pool + "/" + image : t.pool + "/" + t.ns + "/" + image;
}

// Best effort on a rollback path: the original error is what the caller
// reports, so a failed cleanup is logged, never returned. The journal key is
// gone by then, so nothing else would ever remove the image: a removal that
// collides with another client's (each sees the other's watch) is tried again.
void RemoveQuietly(CephSession& s, const CephTarget& t, const std::string& image) {
  for (int round = 0;; ++round) {
    auto r = s.Remove(image);
    if (r) return;
    if (IsRemovalRace(r.error().code) && BackOffForRace(round)) continue;
    spdlog::error("rollback: cannot remove {} (nothing refers to it any more: remove it by hand): {}",
                  ImageSpec(t, image), r.error().message);
    return;
  }
}

// The journal record's capacity, for ListVolumes. The image is what counts:
// a record that cannot be updated is logged, and the resize still succeeds.
void RecordCapacity(CephSession& s, const std::string& key, const std::string& uuid, uint64_t bytes) {
  auto value = s.JournalGet(std::string(kVolumesObject), key);
  if (!value || !*value) return;
  auto record = DecodeVolumeJournalRecord(**value, key);
  if (!record || record->uuid != uuid || record->capacity == bytes) return;
  record->capacity = bytes;
  if (auto r = s.JournalSwap(std::string(kVolumesObject), key, **value, EncodeRecord(*record)); !r) {
    spdlog::warn("cannot record the new capacity of {} in the journal: {}", key, r.error().message);
  }
}

// The uuid a journal record names; which kind of record it is follows from
// the journal object it is in.
Result<std::string> RecordUuid(std::string_view object, std::string_view value, std::string_view key) {
  if (object == kSnapshotsObject) {
    auto record = DecodeSnapshotJournalRecord(value, key);
    if (!record) return Unexpected(record.error());
    return record->uuid;
  }
  auto record = DecodeVolumeJournalRecord(value, key);
  if (!record) return Unexpected(record.error());
  return record->uuid;
}

// The volume's image; kNotFound when it is gone.
Result<ImageInfo> StatVolume(CephSession& s, const VolumeRef& ref, const std::string& volume_id) {
  auto info = s.Stat(ref.ImageName());
  if (!info) {
    if (info.error().code == ENOENT) return Err(kNotFound, "volume {} does not exist", volume_id);
    return Unexpected(info.error());
  }
  return info;
}

}  // namespace

struct ControllerOps::MakeVolume {
  std::string name;
  std::string uuid;
  std::string attempt;  // the journal record's attempt: names the source's temporary snapshot
  uint64_t size = 0;
  CreateParams params;
  Secret passphrase;
  std::optional<SnapshotRef> snapshot;
  std::optional<VolumeRef> volume;
  Session* source = nullptr;  // the content source's pool, when there is one
  std::string source_text;    // "", "snapshot:<id>", "volume:<id>"
};

Result<ClusterConfig> ControllerOps::LoadClusters() const {
  auto config = LoadClusterConfig(options_.cluster_config);
  if (!config) return Err(kFailedPrecondition, "cluster config: {}", config.error().message);
  return config;
}

Result<ControllerOps::Session> ControllerOps::Open(const ClusterRef&, const std::string& mon_host,
                                                   const std::string& pool, const std::string& ns,
                                                   const CephUser& user) {
  Session s;
  s.target = CephTarget{mon_host, pool, ns};
  s.user = user;
  s.user.connect_timeout = options_.connect_timeout;
  auto session = store_->Open(s.target, s.user);
  if (!session) return Unexpected(session.error());
  s.session = std::move(session).value();
  return s;
}

Result<ControllerOps::Session> ControllerOps::OpenForVolume(const VolumeRef& ref, const CephUser& user) {
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  auto mons = ResolveMonitors(ref.cluster, *clusters);
  if (!mons) return Unexpected(mons.error());
  return Open(ref.cluster, *mons, ref.pool, ref.ns, user);
}

Result<CephUser> ControllerOps::UserFor(const ClusterRef& cluster, const StringMap& secrets, std::string_view secret) {
  if (HasUser(secrets)) return UserFromSecrets(secrets, secret);
  auto remembered = credentials_.Get(cluster);
  if (!remembered) {
    return Err(kFailedPrecondition,
               "no credentials for cluster '{}' yet: this call carries no secret, and none has succeeded on that "
               "cluster since the controller started",
               cluster.value);
  }
  return *remembered;
}

void ControllerOps::RememberSuccess(const Session& s, const ClusterRef& cluster) {
  credentials_.Remember(cluster, s.user);
  credentials_.RememberPool(PoolRef{cluster, s.target.pool, s.target.ns});
}

Result<std::vector<std::pair<std::string, std::string>>> ControllerOps::ListJournal(CephSession& s,
                                                                                   std::string_view object) {
  std::vector<std::pair<std::string, std::string>> all;
  std::string after;
  for (;;) {
    auto page = s.JournalList(std::string(object), std::string(kNameKeyPrefix), after, kJournalPage);
    if (!page) return Unexpected(page.error());
    for (auto& kv : *page) all.push_back(std::move(kv));
    if (page->size() < kJournalPage) return all;
    after = all.back().first;
  }
}

Result<std::string> ControllerOps::CsiNameOf(CephSession& s, const std::string& image) {
  auto info = s.Stat(image);
  if (!info) {
    if (info.error().code == ENOENT) return std::string();
    return Unexpected(info.error());
  }
  auto it = info->metadata.find("csi.name");
  return it != info->metadata.end() ? it->second : std::string();
}

Result<void> ControllerOps::DropJournalKeys(CephSession& s, std::string_view object, const std::string& name,
                                            const std::string& uuid) {
  std::vector<std::string> keys;
  if (!name.empty()) {
    keys.push_back(NameKey(name));
  } else {
    auto entries = ListJournal(s, object);
    if (!entries) {
      if (entries.error().code != ENOENT) return Unexpected(entries.error());
    } else {
      for (const auto& [key, value] : *entries) {
        auto named = RecordUuid(object, value, key);
        if (named && *named == uuid) keys.push_back(key);
      }
    }
  }
  for (const auto& key : keys) {
    // A record that changes between the read and the guarded removal (a
    // capacity update, say) is read again; one that names another uuid stays.
    for (int round = 0;; ++round) {
      auto value = s.JournalGet(std::string(object), key);
      if (!value) return Unexpected(value.error());
      if (!*value) break;
      auto named = RecordUuid(object, **value, key);
      if (named && *named != uuid) break;  // the name belongs to a newer volume or snapshot
      auto r = s.JournalRemove(std::string(object), key, **value);
      if (r) break;
      if (r.error().code != ECANCELED || round + 1 == kJournalRounds) return Unexpected(r.error());
    }
  }
  return {};
}

Error ControllerOps::TakeOverCleanupError(const Error& e, std::string_view call, std::string_view what) {
  if (e.code == EBUSY) {
    return Error{kAborted,
                 fmt::format("an interrupted {} left {} still open by its dead client; retry: {}", call, what, e.message)};
  }
  if (IsRaceErrno(e.code)) {
    return Error{kAborted, fmt::format("another {} is changing {} meanwhile; retry: {}", call, what, e.message)};
  }
  return e;
}

Error ControllerOps::CloneError(const Error& e, std::string_view image, std::string_view snap) {
  if (e.code != ENOENT) return e;
  return Error{kAborted, fmt::format("the clone of {}@{} found it gone: another create changed {} meanwhile, or it "
                                     "went; retry: {}",
                                     image, snap, image, e.message)};
}

Unexpected ControllerOps::KeepForRetry(std::string_view what, std::string_view image, const Error& error) {
  spdlog::info("rollback: {} is being made by another attempt of {} still running; the journal record stays this "
               "attempt's, for the retry to take over",
               image, what);
  return Unexpected(Error{kAborted, fmt::format("another create of {} is making {} at the same time; retry ({})", what,
                                                image, error.message)});
}

Result<void> ControllerOps::RemoveTmpSnapshot(CephSession& s, const std::string& image, const std::string& snap) {
  for (int round = 0;; ++round) {
    auto r = s.RemoveSnapshot(image, snap);
    if (r || r.error().code == ENOENT) return {};
    if (!IsRemovalRace(r.error().code) || !BackOffForRace(round)) return r;
  }
}

Result<void> ControllerOps::RemoveLeftoverTmpSnapshots(CephSession& s, const std::string& image) {
  auto names = s.SnapshotNames(image);
  if (!names) {
    if (names.error().code == ENOENT) return {};
    return Unexpected(names.error());
  }
  for (const auto& snap : *names) {
    if (!snap.starts_with(kTmpSnapshotPrefix)) continue;
    if (auto r = RemoveTmpSnapshot(s, image, snap); !r) return r;
    spdlog::info("removed {}@{}, a temporary snapshot that an interrupted create left", image, snap);
  }
  return {};
}

bool ControllerOps::UndoAttempt(CephSession& s, std::string_view object, const std::string& key,
                                const std::string& held, const std::string& uuid,
                                const std::function<void()>& remove_made) {
  auto removed = s.JournalRemove(std::string(object), key, held);
  if (removed && *removed) {
    remove_made();
    return false;
  }
  if (!removed && removed.error().code != ECANCELED) {
    // The record may still be ours: it stays "creating", and the next create
    // of the name takes it over and removes what this one made.
    spdlog::warn("rollback: cannot drop journal key {}: {}; left for the next create of the name", key,
                 removed.error().message);
    return false;
  }
  // Not ours any more: another attempt took the record over, or held it and
  // removed it (its own rollback).
  auto now = s.JournalGet(std::string(object), key);
  if (!now) {
    spdlog::warn("rollback: cannot read journal key {}: {}; left for the next create of the name", key,
                 now.error().message);
    return true;
  }
  if (*now) {
    auto named = RecordUuid(object, **now, key);
    if (!named || *named == uuid) {
      spdlog::info("rollback: another create took journal key {} over; its images are that create's now", key);
      return true;
    }
  }
  // The key is gone or names another uuid: nothing can reach this uuid's
  // images any more (a new reservation takes a new uuid), and they are ours
  // to remove.
  remove_made();
  return true;
}

// --------------------------------------------------------------- CreateVolume

Result<VolumeInfo> ControllerOps::CreateVolume(const CreateVolumeArgs& args) {
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  auto params = ParseCreateParams(args.parameters, *clusters);
  if (!params) return Unexpected(params.error());
  auto user = UserFromSecrets(args.secrets, "provisioner");
  if (!user) return Unexpected(user.error());

  MakeVolume make;
  make.name = args.name;
  make.params = std::move(params).value();
  if (make.params.encrypted) {
    auto it = args.secrets.find("encryptionPassphrase");
    if (it == args.secrets.end() || it->second.empty()) {
      return Err(kInvalidArgument, "the provisioner secret's 'encryptionPassphrase' is required for encrypted volumes");
    }
    make.passphrase = Secret(it->second);
  }
  // The id's length is known before anything is made: fail early, not after.
  VolumeRef probe{make.params.cluster, make.params.pool, make.params.ns, std::string(32, '0')};
  if (size_t n = EncodeVolumeId(probe).size(); n > kMaxIdBytes) {
    return Err(kInvalidArgument,
               "the volume_id would be {} bytes, over CSI's {}: use a shorter clusterID (or monitors, pool and "
               "radosNamespace names)",
               n, kMaxIdBytes);
  }

  // The content source: its pool, and its size (the new volume's minimum).
  uint64_t source_bytes = 0;
  std::optional<Session> source;
  if (!args.source_snapshot_id.empty() || !args.source_volume_id.empty()) {
    VolumeRef where;
    std::string what;
    if (!args.source_snapshot_id.empty()) {
      auto ref = DecodeSnapshotId(args.source_snapshot_id);
      if (!ref) return Err(kNotFound, "source snapshot not found: {}", ref.error().message);
      make.snapshot = *ref;
      where = ref->source;
      what = "snapshot " + args.source_snapshot_id;
      make.source_text = "snapshot:" + args.source_snapshot_id;
    } else {
      auto ref = DecodeVolumeId(args.source_volume_id);
      if (!ref) return Err(kNotFound, "source volume not found: {}", ref.error().message);
      make.volume = *ref;
      where = *ref;
      what = "volume " + args.source_volume_id;
      make.source_text = "volume:" + args.source_volume_id;
    }
    auto mons = ResolveMonitors(where.cluster, *clusters);
    if (!mons) return Err(kNotFound, "source {}: {}", what, mons.error().message);
    if (where.cluster != make.params.cluster && *mons != make.params.mon_host) {
      return Err(kInvalidArgument, "the source {} is in another cluster than parameter '{}'", what,
                 make.params.cluster.by_id ? "clusterID" : "monitors");
    }
    auto s = Open(where.cluster, *mons, where.pool, where.ns, *user);
    if (!s) return Unexpected(s.error());
    source = std::move(s).value();
    if (make.snapshot) {
      auto snap = source->session->StatSnapshot(make.snapshot->ImageName(), make.snapshot->ImageName());
      if (!snap) {
        if (snap.error().code == ENOENT) return Err(kNotFound, "source {} does not exist", what);
        return Unexpected(snap.error());
      }
      source_bytes = snap->size_bytes;
    } else {
      auto info = source->session->Stat(make.volume->ImageName());
      if (!info) {
        if (info.error().code == ENOENT) return Err(kNotFound, "source {} does not exist", what);
        return Unexpected(info.error());
      }
      source_bytes = info->size_bytes;
    }
    make.source = &*source;
  }
  auto size = ResolveCapacity(args.required_bytes, args.limit_bytes, source_bytes);
  if (!size) return Unexpected(size.error());
  make.size = *size;

  auto guard = locks_.Lock("volume-name/" + args.name);
  auto target = Open(make.params.cluster, make.params.mon_host, make.params.pool, make.params.ns, *user);
  if (!target) return Unexpected(target.error());
  std::string key = NameKey(args.name);
  VolumeJournalRecord mine;
  mine.uuid = NewUuid();
  mine.size = make.size;
  mine.fingerprint = Fingerprint(make.params, make.source_text);
  mine.source = make.source_text;
  mine.context = VolumeContext(make.params, "csi-vol-" + mine.uuid);
  mine.attempt = NewUuid();
  std::string held = EncodeRecord(mine);
  for (int round = 0;; ++round) {
    auto stored = target->session->JournalReserve(std::string(kVolumesObject), key, held);
    if (!stored) return Unexpected(PoolError(stored.error(), target->target));
    if (*stored == held) break;  // reserved: a new uuid
    auto record = DecodeVolumeJournalRecord(*stored, key);
    if (!record) return Unexpected(record.error());
    if (record->fingerprint != mine.fingerprint || record->source != mine.source) {
      return Err(kAlreadyExists, "a volume named '{}' exists already with other parameters or content source",
                 args.name);
    }
    if (record->size != mine.size) {
      return Err(kAlreadyExists, "a volume named '{}' exists already with {} bytes, not {}", args.name, record->size,
                 mine.size);
    }
    std::string image = "csi-vol-" + record->uuid;
    if (record->ready) {
      auto info = target->session->Stat(image);
      if (info) {
        RememberSuccess(*target, make.params.cluster);
        VolumeRef ref{make.params.cluster, make.params.pool, make.params.ns, record->uuid};
        return VolumeInfo{EncodeVolumeId(ref), info->size_bytes, VolumeContext(make.params, image)};
      }
      if (info.error().code != ENOENT) return Unexpected(info.error());
    }
    // Still "creating" while this process holds the name: a crash left it
    // half made, or another controller (a second replica) is making it now.
    // Either way this attempt takes the record over, atomically: the other
    // one then fails at its next journal change and leaves the uuid to us.
    VolumeJournalRecord taken = *record;
    auto taken_value = TakeOver(*target->session, kVolumesObject, key, *stored, &taken);
    if (!taken_value) return Unexpected(taken_value.error());
    if (!*taken_value) {
      if (round + 1 == kJournalRounds) {
        return Err(kAborted, "another create of '{}' keeps changing its journal record; retry", args.name);
      }
      continue;  // it changed under us: look again
    }
    if (record->ready) {
      spdlog::warn("CreateVolume {}: the journal says ready but {} is gone: making it again", args.name,
                   ImageSpec(target->target, image));
    } else {
      spdlog::warn("CreateVolume {}: finishing a create that was interrupted or is still under way elsewhere ({})",
                   args.name, ImageSpec(target->target, image));
      if (auto removed = target->session->Remove(image); !removed) {
        return Unexpected(TakeOverCleanupError(removed.error(), fmt::format("create of '{}'", args.name),
                                               ImageSpec(target->target, image)));
      }
    }
    mine = std::move(taken);
    held = std::move(**taken_value);
    break;
  }
  make.uuid = mine.uuid;
  make.attempt = mine.attempt;
  return FinishCreate(*target, make, std::move(mine), held, key);
}

Result<VolumeInfo> ControllerOps::FinishCreate(Session& s, const MakeVolume& make, VolumeJournalRecord record,
                                               const std::string& held, const std::string& key) {
  std::string image = "csi-vol-" + make.uuid;
  auto rollback = [&](const Error& error) -> Unexpected {
    if (error.code == EEXIST) return KeepForRetry(fmt::format("'{}'", make.name), ImageSpec(s.target, image), error);
    bool lost = UndoAttempt(*s.session, kVolumesObject, key, held, make.uuid,
                             [&] { RemoveQuietly(*s.session, s.target, image); });
    if (!lost && error.code != ECANCELED) return Unexpected(error);
    // Another controller took the name over meanwhile: it holds the record
    // now (or held it and undid it). Not this request's failure: retry.
    return Unexpected(Error{kAborted, fmt::format("another create of '{}' took it over while this one made {}; "
                                                  "retry ({})",
                                                  make.name, ImageSpec(s.target, image), error.message)});
  };
  auto size = MakeImage(s, make);
  if (!size) return rollback(size.error());
  record.ready = true;
  if (auto r = s.session->JournalSwap(std::string(kVolumesObject), key, held, EncodeRecord(record)); !r) {
    return rollback(r.error());
  }
  RememberSuccess(s, make.params.cluster);
  VolumeRef ref{make.params.cluster, make.params.pool, make.params.ns, make.uuid};
  spdlog::info("CreateVolume {}: made {} ({} bytes{})", make.name, ImageSpec(s.target, image), *size,
               make.source_text.empty() ? "" : ", from " + make.source_text);
  return VolumeInfo{EncodeVolumeId(ref), *size, VolumeContext(make.params, image)};
}

Result<uint64_t> ControllerOps::MakeImage(Session& s, const MakeVolume& make) {
  NewImage image;
  image.name = "csi-vol-" + make.uuid;
  image.size_bytes = make.size;
  image.features = make.params.features;
  image.data_pool = make.params.data_pool;
  image.object_size = make.params.object_size;
  image.metadata = make.params.metadata;
  image.metadata["csi.name"] = make.name;
  if (make.source == nullptr) {
    if (auto r = s.session->Create(image); !r) return Unexpected(r.error());
    if (make.params.encrypted) {
      if (auto r = s.session->FormatLuks(image.name, make.params.luks, make.passphrase); !r) {
        return Unexpected(r.error());
      }
    }
    return make.size;
  }
  // A clone keeps its source's data, LUKS header included: it opens with the
  // source's passphrase, so it is not formatted again.
  image.features |= RBD_FEATURE_LAYERING;
  CephSession& src = *make.source->session;
  if (make.snapshot) {
    std::string snap = make.snapshot->ImageName();
    if (auto r = s.session->Clone(src, snap, snap, image); !r) return Unexpected(r.error());
  } else {
    // A temporary snapshot of the source volume: clone v2 keeps it (in the
    // trash namespace) for as long as the clone needs it; named by the
    // attempt (TmpSnapshotName).
    std::string src_image = make.volume->ImageName();
    std::string tmp = TmpSnapshotName(make.attempt);
    auto snap = src.CreateSnapshot(src_image, tmp, QuiesceMode::kBestEffort);
    if (!snap) return Unexpected(snap.error());
    auto cloned = s.session->Clone(src, src_image, tmp, image);
    if (!cloned) cloned = Unexpected(CloneError(cloned.error(), src_image, tmp));
    if (auto r = RemoveTmpSnapshot(src, src_image, tmp); !r) {
      spdlog::warn("CreateVolume {}: cannot remove the temporary snapshot {}@{}: {}", make.name,
                   ImageSpec(make.source->target, src_image), tmp, r.error().message);
    }
    if (!cloned) return Unexpected(cloned.error());
  }
  auto info = s.session->Stat(image.name);
  if (!info) return Unexpected(info.error());
  if (info->clone_depth > options_.max_clone_depth) {
    spdlog::info("CreateVolume {}: flattening {} (clone depth {} > {})", make.name, ImageSpec(s.target, image.name),
                 info->clone_depth, options_.max_clone_depth);
    if (auto r = s.session->Flatten(image.name); !r) return Unexpected(r.error());
  }
  return info->size_bytes;
}

// --------------------------------------------------------------- DeleteVolume

Result<void> ControllerOps::DeleteVolume(const std::string& volume_id, const StringMap& secrets) {
  auto ref = DecodeVolumeId(volume_id);
  if (!ref) {
    spdlog::info("DeleteVolume {}: not an id of this driver, nothing to delete ({})", volume_id, ref.error().message);
    return {};
  }
  auto user = UserFromSecrets(secrets, "provisioner");
  if (!user) return Unexpected(user.error());
  auto guard = locks_.Lock("volume-id/" + volume_id);
  auto s = OpenForVolume(*ref, *user);
  if (!s) return Unexpected(s.error());
  std::string image = ref->ImageName();
  auto name = CsiNameOf(*s->session, image);
  if (!name) return Unexpected(name.error());
  if (auto r = RemoveLeftoverTmpSnapshots(*s->session, image); !r) return Unexpected(r.error());
  auto removed = s->session->Remove(image);
  if (!removed) {
    if (removed.error().code == EBUSY) {
      return Err(kFailedPrecondition, "volume image {} is still mapped (it has watchers): {}",
                 ImageSpec(s->target, image), removed.error().message);
    }
    if (removed.error().code == ENOENT) return {};  // the pool itself is gone
    return Unexpected(removed.error());
  }
  if (auto r = DropJournalKeys(*s->session, kVolumesObject, *name, ref->uuid); !r) return Unexpected(r.error());
  if (auto purged = s->session->PurgeTrash("csi-"); !purged) {
    spdlog::warn("DeleteVolume {}: purging the trash of {}: {}", volume_id, s->target.pool, purged.error().message);
  } else if (*purged > 0) {
    spdlog::info("DeleteVolume {}: purged {} trash entries", volume_id, *purged);
  }
  RememberSuccess(*s, ref->cluster);
  spdlog::info("DeleteVolume {}: {} {}", volume_id, ImageSpec(s->target, image),
               *removed == RemoveOutcome::kRemoved   ? "removed"
               : *removed == RemoveOutcome::kTrashed ? "moved to the trash (its snapshots back clones)"
                                                     : "was gone already");
  return {};
}

// --------------------------------------------------------- ControllerExpand

Result<uint64_t> ControllerOps::ExpandVolume(const std::string& volume_id, int64_t required_bytes,
                                             int64_t limit_bytes, const StringMap& secrets) {
  auto ref = DecodeVolumeId(volume_id);
  if (!ref) return Err(kNotFound, "volume not found: {}", ref.error().message);
  if (required_bytes <= 0 && limit_bytes <= 0) {
    return Err(kInvalidArgument, "capacity_range.required_bytes is required");
  }
  auto size = ResolveCapacity(required_bytes, limit_bytes, 0);
  if (!size) return Unexpected(size.error());
  auto user = UserFromSecrets(secrets, "controller-expand");
  if (!user) return Unexpected(user.error());
  auto guard = locks_.Lock("volume-id/" + volume_id);
  auto s = OpenForVolume(*ref, *user);
  if (!s) return Unexpected(s.error());
  auto info = StatVolume(*s->session, *ref, volume_id);
  if (!info) return Unexpected(info.error());
  if (*size < info->size_bytes) {
    return Err(kOutOfRange, "volume {} is {} bytes: it cannot shrink to {}", volume_id, info->size_bytes, *size);
  }
  if (*size > info->size_bytes) {
    if (auto r = s->session->Resize(ref->ImageName(), *size); !r) return Unexpected(r.error());
  }
  if (auto it = info->metadata.find("csi.name"); it != info->metadata.end()) {
    RecordCapacity(*s->session, NameKey(it->second), ref->uuid, *size);
  }
  RememberSuccess(*s, ref->cluster);
  return *size;
}

Result<void> ControllerOps::CheckVolumeExists(const std::string& volume_id, const StringMap& secrets) {
  auto ref = DecodeVolumeId(volume_id);
  if (!ref) return Err(kNotFound, "volume not found: {}", ref.error().message);
  auto user = UserFor(ref->cluster, secrets, "controller");
  if (!user) return Unexpected(user.error());
  auto s = OpenForVolume(*ref, *user);
  if (!s) return Unexpected(s.error());
  auto info = StatVolume(*s->session, *ref, volume_id);
  if (!info) return Unexpected(info.error());
  return {};
}

Result<void> ControllerOps::CheckCreateParameters(const StringMap& parameters) const {
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  auto params = ParseCreateParams(parameters, *clusters);
  if (!params) return Unexpected(params.error());
  return {};
}

// --------------------------------------------------- ListVolumes, GetCapacity

Result<Page<VolumeInfo>> ControllerOps::ListVolumes(int32_t max_entries, const std::string& starting_token) {
  if (max_entries < 0) return Err(kInvalidArgument, "max_entries must not be negative");
  if (!starting_token.empty() && !DecodeVolumeId(starting_token)) {
    return Err(kAborted, "starting_token '{}' is not one this controller handed out", starting_token);
  }
  auto pools = credentials_.Pools();
  if (pools.empty()) {
    return Err(kFailedPrecondition,
               "no credentials yet: ListVolumes carries no secret, and no call with one has succeeded since the "
               "controller started");
  }
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  std::vector<VolumeInfo> all;
  for (const auto& pool : pools) {
    auto user = credentials_.Get(pool.cluster);
    if (!user) continue;
    auto mons = ResolveMonitors(pool.cluster, *clusters);
    if (!mons) continue;  // a cluster taken out of the config
    auto s = Open(pool.cluster, *mons, pool.pool, pool.ns, *user);
    if (!s) return Unexpected(s.error());
    auto entries = ListJournal(*s->session, kVolumesObject);
    if (!entries) {
      if (entries.error().code == ENOENT) continue;  // the pool is gone
      return Unexpected(entries.error());
    }
    for (const auto& [key, value] : *entries) {
      auto record = DecodeVolumeJournalRecord(value, key);
      if (!record || !record->ready) continue;
      VolumeRef ref{pool.cluster, pool.pool, pool.ns, record->uuid};
      uint64_t capacity = record->capacity != 0 ? record->capacity : record->size;
      all.push_back(VolumeInfo{EncodeVolumeId(ref), capacity, record->context});
    }
  }
  return Paginate(std::move(all), &VolumeInfo::volume_id, max_entries, starting_token);
}

Result<uint64_t> ControllerOps::GetCapacity(const StringMap& parameters) {
  auto clusters = LoadClusters();
  if (!clusters) return Unexpected(clusters.error());
  auto params = ParseCreateParams(parameters, *clusters);
  if (!params) return Unexpected(params.error());
  auto user = credentials_.Get(params->cluster);
  if (!user) {
    return Err(kFailedPrecondition,
               "no credentials for cluster '{}' yet: GetCapacity carries no secret, and no call with one has "
               "succeeded on that cluster since the controller started",
               params->cluster.value);
  }
  auto s = Open(params->cluster, params->mon_host, params->pool, params->ns, *user);
  if (!s) return Unexpected(s.error());
  auto bytes = s->session->AvailableBytes();
  if (!bytes) {
    // No usage figures yet (the monitors learn them from a ceph-mgr): a state of the
    // cluster that passes, not a bug of ours, so the CO may ask again later.
    if (bytes.error().code == ENODATA) return Err(kUnavailable, "{}", bytes.error().message);
    return Unexpected(PoolError(bytes.error(), s->target));
  }
  return *bytes;
}

}  // namespace rbdnbd::csi
