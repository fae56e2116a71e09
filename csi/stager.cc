#include "csi/stager.h"

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "csi/cluster_config.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

const MappedDevice* FindBySpec(const DaemonStatus& status, const std::string& spec) {
  for (const auto& d : status.devices) {
    if (d.spec == spec) return &d;
  }
  return nullptr;
}

const MappedDevice* FindByDevice(const DaemonStatus& status, const std::string& device) {
  for (const auto& d : status.devices) {
    if (d.device == device) return &d;
  }
  return nullptr;
}

// The options a second stage must repeat to be "the same stage".
bool SameStage(const VolumeRecord& a, const VolumeRecord& b) {
  return a.spec == b.spec && a.mode == b.mode && a.read_only == b.read_only && a.staging_path == b.staging_path &&
         a.mount_flags == b.mount_flags;
}

Result<void> MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Err(ec.value(), "mkdir -p {}: {}", path, ec.message());
  return {};
}

}  // namespace

std::vector<std::string> StageMountOptions(const VolumeRecord& record) {
  std::vector<std::string> options = record.mount_flags;
  if (record.fs_type == "xfs") options.push_back("nouuid");
  if (record.read_only) {
    options.push_back("ro");
    // A read-only device cannot replay a journal; mount what is there.
    if (IsExtFamily(record.fs_type) && record.fs_type != "ext2") options.push_back("noload");
    if (record.fs_type == "xfs") options.push_back("norecovery");
  }
  return options;
}

Result<void> Stager::Stage(const StageRequest& req) {
  const Capability& cap = req.capability;
  // The capability's fs_type, else the StorageClass's fsType (volume_context),
  // else ext4.
  auto context_fs = req.context.find("fsType");
  bool from_context = cap.fs_type.empty() && context_fs != req.context.end() && !context_fs->second.empty();
  std::string fs_type = !cap.fs_type.empty() ? cap.fs_type : from_context ? context_fs->second : "ext4";
  if (cap.mode == VolumeMode::kMount && !IsSupportedFsType(fs_type)) {
    return Err(kInvalidArgument, "{} '{}' is not supported (ext4 or xfs)",
               from_context ? "volume_context 'fsType'" : "volume_capability.mount.fs_type", fs_type);
  }
  auto clusters = LoadClusterConfig(ctx_.cluster_config_path);
  if (!clusters) return Err(EIO, "cluster config: {}", clusters.error().message);
  auto params = ParseVolumeParams(req.volume_id, req.context, req.secrets, *clusters);
  if (!params) return Unexpected(params.error());

  auto guard = ctx_.locks->TryLock(req.volume_id);
  if (!guard) return Unexpected(guard.error());

  VolumeRecord want;
  want.volume_id = req.volume_id;
  want.spec = params->spec;
  want.mode = cap.mode;
  want.fs_type = cap.mode == VolumeMode::kMount ? fs_type : "";
  want.mount_flags = cap.mode == VolumeMode::kMount ? cap.mount_flags : std::vector<std::string>{};
  want.read_only = IsReaderOnly(cap.access_mode);
  want.access_mode = cap.access_mode;
  want.staging_path = req.staging_path;

  auto loaded = ctx_.store->Load(req.volume_id);
  if (!loaded) return Unexpected(loaded.error());
  const std::optional<VolumeRecord>& previous = *loaded;
  if (previous && previous->staged) {
    if (!SameStage(*previous, want)) {
      return Err(kAlreadyExists, "volume {} is already staged at {} ({}, {}) with other options", req.volume_id,
                 previous->staging_path, previous->spec, VolumeModeName(previous->mode));
    }
    if (params->device_type != DeviceType::kAuto && params->device_type != previous->device_type) {
      return Err(kAlreadyExists, "volume {} is already staged as {} at {}, not deviceType {}", req.volume_id,
                 DeviceTypeName(previous->device_type), previous->device, DeviceTypeName(params->device_type));
    }
    auto still = StillStaged(*previous);
    if (!still) return Unexpected(still.error());
    if (*still) {
      spdlog::info("stage {}: already staged ({} at {})", req.volume_id, previous->device, previous->staging_path);
      return {};
    }
    spdlog::warn("stage {}: recorded as staged but {} or its mount is gone; staging again", req.volume_id,
                 previous->device);
  }

  VolumeRecord record = want;
  // An unfinished earlier stage of this volume mapped whatever device the spec has now:
  // a failure of this attempt unmaps it. A finished stage keeps its device on failure.
  bool owned = false;
  if (previous) {
    record.published = previous->published;
    if (previous->spec == want.spec) {
      record.device = previous->device;
      record.device_type = previous->device_type;
      record.cookie = previous->cookie;
      owned = !previous->staged;
    } else if (!previous->staged) {
      // An unfinished stage of another image under this volume_id: clean it up first.
      if (auto r = UnmapRecorded(*previous); !r) return r;
    }
  }
  // Written before mapping: a crash from here on leaves a record unstage can use.
  if (auto r = ctx_.store->Save(record); !r) return r;

  Undo undo;
  auto done = EnsureMapped(&record, &*params, owned, &undo);
  if (done) done = EnsureMounted(&record, *params, &undo);
  if (done) {
    record.staged = true;
    done = ctx_.store->Save(record);
  }
  if (!done) {
    spdlog::warn("stage {} failed: {}", req.volume_id, done.error().message);
    Rollback(record, undo, previous);
    return done;
  }
  spdlog::info("staged {} ({}) as {} ({}) {} at {}{}", req.volume_id, record.spec, record.device,
               DeviceTypeName(record.device_type), VolumeModeName(record.mode), record.staging_path,
               record.read_only ? " read-only" : "");
  return {};
}

Result<bool> Stager::StillStaged(const VolumeRecord& record) {
  auto status = ctx_.daemon->Status();
  if (!status) return Unexpected(status.error());
  const MappedDevice* d = FindByDevice(*status, record.device);
  if (d == nullptr || d->spec != record.spec) return false;
  if (record.mode == VolumeMode::kBlock) return true;
  auto m = ctx_.mounter->MountAt(record.staging_path);
  if (!m) return Unexpected(m.error());
  return m->has_value() && (*m)->source == record.device;
}

Result<void> Stager::EnsureMapped(VolumeRecord* record, VolumeParams* params, bool owned, Undo* undo) {
  auto status = ctx_.daemon->Status();
  if (!status) return Unexpected(status.error());
  const MappedDevice* d = FindBySpec(*status, record->spec);
  const DeviceType requested = params->device_type;
  if (d == nullptr) {
    auto choice = ChooseDeviceType(requested, ctx_.ublk);
    if (!choice) return Unexpected(choice.error());
    if (requested != DeviceType::kNbd) {
      spdlog::log(choice->warn ? spdlog::level::warn : spdlog::level::info, "stage {}: {}", record->volume_id,
                  choice->reason);
    }
    params->device_type = choice->type;
    auto mapped = ctx_.daemon->Map(*params, record->read_only);
    if (!mapped && mapped.error().code == kAlreadyExists) {
      // Mapped by a concurrent request for the same image: use that device.
      status = ctx_.daemon->Status();
      if (!status) return Unexpected(status.error());
      d = FindBySpec(*status, record->spec);
      if (d == nullptr) return Unexpected(mapped.error());
    } else if (!mapped) {
      return Unexpected(mapped.error());
    } else {
      record->device = mapped->device;
      record->device_type = DeviceTypeOfPath(mapped->device);
      record->cookie = mapped->cookie;
      // Mapped meanwhile by someone else with the same options (the daemon's
      // map is idempotent): not ours to undo unless this volume owns it.
      undo->mapped = mapped->already_mapped ? owned : true;
      spdlog::info("stage {}: {} {} at {}", record->volume_id, mapped->already_mapped ? "found" : "mapped",
                   record->spec, record->device);
      if (record->device_type != choice->type) {
        // A daemon that predates device_type ignores it and maps nbd.
        return Err(kFailedPrecondition, "asked the rbd-nbdd daemon for a {} device for {}, it mapped {}: the daemon "
                   "does not serve ublk (upgrade it), or use deviceType nbd",
                   DeviceTypeName(choice->type), record->spec, record->device);
      }
    }
  }
  if (d != nullptr) {
    DeviceType type = DeviceTypeOfPath(d->device);
    if (requested != DeviceType::kAuto && requested != type) {
      undo->mapped = owned;  // an unfinished stage's device of the other type: free it for the next try
      return Err(kFailedPrecondition, "{} is already mapped as {} at {}; deviceType {} needs it unmapped first",
                 record->spec, DeviceTypeName(type), d->device, DeviceTypeName(requested));
    }
    if (d->read_only && !record->read_only) {
      return Err(kFailedPrecondition, "{} is already mapped read-only at {}; a writable stage needs it unmapped first",
                 record->spec, d->device);
    }
    undo->mapped = owned;
    record->device = d->device;
    record->device_type = type;
    record->cookie = d->cookie;
    spdlog::info("stage {}: {} is already mapped at {}", record->volume_id, record->spec, record->device);
  }
  return ctx_.store->Save(*record);
}

Result<void> Stager::EnsureMounted(VolumeRecord* record, const VolumeParams& params, Undo* undo) {
  if (record->mode == VolumeMode::kBlock) return {};
  const std::string& device = record->device;
  if (auto r = MakeDirs(record->staging_path); !r) return r;
  auto current = ctx_.mounter->MountAt(record->staging_path);
  if (!current) return Unexpected(current.error());
  if (current->has_value()) {
    if ((*current)->source != device) {
      return Err(kFailedPrecondition, "{} is already a mount point of {}, not {}", record->staging_path,
                 (*current)->source, device);
    }
    record->fs_type = (*current)->fs_type;
    return {};  // mounted by an earlier attempt
  }

  auto probe = ctx_.fs->Probe(device);
  if (!probe) return Unexpected(probe.error());
  if (!probe->partition_table.empty()) {
    return Err(kFailedPrecondition, "{} ({}) has a '{}' partition table; refusing to format or mount it", device,
               record->spec, probe->partition_table);
  }
  bool fresh = false;
  if (probe->blank) {
    if (record->read_only) {
      return Err(kFailedPrecondition, "{} ({}) has no filesystem and the volume is read-only", device, record->spec);
    }
    spdlog::info("stage {}: formatting {} as {}", record->volume_id, device, record->fs_type);
    if (auto r = ctx_.fs->MakeFs(device, record->fs_type, params.mkfs_options); !r) return r;
    fresh = true;
  } else {
    if (probe->fs_type != record->fs_type) {
      spdlog::warn("stage {}: {} holds {} (requested {}); mounting it as {}", record->volume_id, device,
                   probe->fs_type, record->fs_type, probe->fs_type);
    }
    record->fs_type = probe->fs_type;
    if (!record->read_only) {
      if (auto r = ctx_.fs->Check(device); !r) return r;
    }
  }
  if (auto r = ctx_.mounter->Mount(device, record->staging_path, record->fs_type, StageMountOptions(*record)); !r) {
    return r;
  }
  undo->mounted = true;
  if (!fresh && !record->read_only) {
    // The image may have grown while it was not staged. A failed grow leaves
    // a working (smaller) filesystem: warn, and let NodeExpandVolume report it.
    if (auto r = ctx_.fs->Grow(device, record->staging_path, record->fs_type); !r) {
      spdlog::warn("stage {}: growing the filesystem failed, staged at its old size: {}", record->volume_id,
                   r.error().message);
    }
  }
  return {};
}

Result<void> Stager::UnmapRecorded(const VolumeRecord& record) {
  auto status = ctx_.daemon->Status();
  if (!status) return Unexpected(status.error());
  const MappedDevice* d = record.device.empty() ? nullptr : FindByDevice(*status, record.device);
  if (d != nullptr && d->spec != record.spec) d = nullptr;  // the device number was reused
  if (d == nullptr && !record.spec.empty()) d = FindBySpec(*status, record.spec);
  if (d == nullptr) return {};  // not mapped
  auto r = ctx_.daemon->Unmap(d->device);
  if (!r && r.error().code != kNotFound) return r;
  spdlog::info("unmapped {} ({})", d->device, record.spec);
  return {};
}

void Stager::Rollback(const VolumeRecord& record, const Undo& undo, const std::optional<VolumeRecord>& previous) {
  if (undo.mounted) {
    if (auto r = ctx_.mounter->Unmount(record.staging_path); !r) {
      spdlog::warn("stage {} rollback: {}", record.volume_id, r.error().message);
      return;  // keep the record: unstage can finish the job
    }
  }
  if (undo.mapped) {
    if (auto r = UnmapRecorded(record); !r) {
      spdlog::warn("stage {} rollback: {}", record.volume_id, r.error().message);
      return;
    }
  }
  // A device this call found mapped (not ours) stays mapped and unclaimed.
  if (previous && previous->staged) {
    (void)ctx_.store->Save(*previous);
  } else {
    (void)ctx_.store->Remove(record.volume_id);
  }
}

Result<void> Stager::Unstage(const std::string& volume_id, const std::string& staging_path) {
  auto guard = ctx_.locks->TryLock(volume_id);
  if (!guard) return Unexpected(guard.error());
  auto loaded = ctx_.store->Load(volume_id);
  if (!loaded) return Unexpected(loaded.error());
  if (!loaded->has_value()) {
    spdlog::info("unstage {}: not staged (no record)", volume_id);
    return {};
  }
  const VolumeRecord& record = **loaded;
  if (record.staging_path != staging_path) {
    spdlog::warn("unstage {}: staged at {}, asked for {}", volume_id, record.staging_path, staging_path);
  }
  for (const std::string& path : {staging_path, record.staging_path}) {
    if (path.empty()) continue;
    auto m = ctx_.mounter->MountAt(path);
    if (!m) return Unexpected(m.error());
    if (m->has_value()) {
      if (auto r = ctx_.mounter->Unmount(path); !r) return r;
    }
  }
  if (auto r = UnmapRecorded(record); !r) return r;
  if (auto r = ctx_.store->Remove(volume_id); !r) return r;
  spdlog::info("unstaged {} ({})", volume_id, record.spec);
  return {};
}

}  // namespace rbdnbd::csi
