#include "csi/publisher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

namespace fs = std::filesystem;

// Creates the publish target; returns whether this call created it.
Result<bool> CreateTarget(const std::string& target, VolumeMode mode) {
  std::error_code ec;
  bool existed = fs::exists(fs::symlink_status(target, ec));
  if (mode == VolumeMode::kMount) {
    fs::create_directories(target, ec);
    if (ec) return Err(ec.value(), "mkdir -p {}: {}", target, ec.message());
    return !existed;
  }
  fs::path parent = fs::path(target).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return Err(ec.value(), "mkdir -p {}: {}", parent.string(), ec.message());
  }
  UniqueFd fd(::open(target.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd && errno != EISDIR) return Err(errno, "create {}: {}", target, strerror(errno));
  return !existed;
}

Result<void> RemoveTarget(const std::string& target) {
  struct stat st{};
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Err(errno, "stat {}: {}", target, strerror(errno));
  }
  int r = S_ISDIR(st.st_mode) ? ::rmdir(target.c_str()) : ::unlink(target.c_str());
  if (r != 0 && errno != ENOENT) {
    return Err(errno, "remove {}: {} (not removed: it was not a mount point)", target, strerror(errno));
  }
  return {};
}

// Is `m` (a mount at the target) the bind this volume would make?
bool IsOurBind(const MountEntry& m, const VolumeRecord& record) {
  if (record.mode == VolumeMode::kMount) return m.source == record.device;
  std::string dev_name = record.device.substr(record.device.rfind('/') + 1);
  return m.root == "/" + dev_name || m.root == record.device;
}

}  // namespace

Result<void> Publisher::Publish(const PublishRequest& req) {
  auto guard = ctx_.locks->TryLock(req.volume_id);
  if (!guard) return Unexpected(guard.error());
  auto loaded = ctx_.store->Load(req.volume_id);
  if (!loaded) return Unexpected(loaded.error());
  if (!loaded->has_value() || !(*loaded)->staged) {
    return Err(kFailedPrecondition, "volume {} is not staged on this node (NodeStageVolume first)", req.volume_id);
  }
  VolumeRecord record = **loaded;
  const bool read_only = req.readonly || IsReaderOnly(req.capability.access_mode);
  const PublishedTarget wanted{req.target_path, read_only, req.capability.mode, req.capability.access_mode};

  // Already published at this target? The same publish is OK; another one is ALREADY_EXISTS.
  auto current = ctx_.mounter->MountAt(req.target_path);
  if (!current) return Unexpected(current.error());
  auto entry = std::find_if(record.published.begin(), record.published.end(),
                            [&](const PublishedTarget& p) { return p.target_path == req.target_path; });
  if (current->has_value()) {
    if (!IsOurBind(**current, record)) {
      return Err(kAlreadyExists, "{} already has {} mounted on it", req.target_path, (*current)->source);
    }
    bool mounted_ro = (*current)->read_only();
    // A bind found without an entry (a crash between mount and record) is judged by what is mounted.
    PublishedTarget existing = entry != record.published.end()
                                   ? *entry
                                   : PublishedTarget{req.target_path, mounted_ro, record.mode, req.capability.access_mode};
    if (existing != wanted || mounted_ro != read_only) {
      return Err(kAlreadyExists, "volume {} is already published at {} ({}, {}, access mode {})", req.volume_id,
                 req.target_path, VolumeModeName(existing.mode), existing.read_only ? "read-only" : "read-write",
                 existing.access_mode);
    }
    if (entry == record.published.end()) {
      record.published.push_back(wanted);
      if (auto r = ctx_.store->Save(record); !r) return r;
    }
    spdlog::info("publish {}: already at {}", req.volume_id, req.target_path);
    return {};
  }

  if (CanonicalPath(record.staging_path) != CanonicalPath(req.staging_path)) {
    return Err(kFailedPrecondition, "volume {} is staged at {}, not {}", req.volume_id, record.staging_path,
               req.staging_path);
  }
  if (record.mode != req.capability.mode) {
    return Err(kFailedPrecondition, "volume {} is staged as a {} volume, published as {}", req.volume_id,
               VolumeModeName(record.mode), VolumeModeName(req.capability.mode));
  }

  std::string source = record.mode == VolumeMode::kMount ? record.staging_path : record.device;
  if (record.mode == VolumeMode::kMount) {
    auto staged = ctx_.mounter->MountAt(record.staging_path);
    if (!staged) return Unexpected(staged.error());
    if (!staged->has_value() || (*staged)->source != record.device) {
      return Err(kFailedPrecondition, "volume {}: {} is not mounted at {} (stage it again)", req.volume_id,
                 record.device, record.staging_path);
    }
  }
  auto created = CreateTarget(req.target_path, record.mode);
  if (!created) return Unexpected(created.error());
  if (auto r = ctx_.mounter->BindMount(source, req.target_path, read_only); !r) {
    if (*created) (void)RemoveTarget(req.target_path);
    return r;
  }
  record.published.erase(std::remove_if(record.published.begin(), record.published.end(),
                                        [&](const PublishedTarget& p) { return p.target_path == req.target_path; }),
                         record.published.end());
  record.published.push_back(wanted);
  if (auto r = ctx_.store->Save(record); !r) return r;
  spdlog::info("published {} at {}{}", req.volume_id, req.target_path, read_only ? " read-only" : "");
  return {};
}

Result<void> Publisher::Unpublish(const std::string& volume_id, const std::string& target_path) {
  auto guard = ctx_.locks->TryLock(volume_id);
  if (!guard) return Unexpected(guard.error());
  if (auto r = ctx_.mounter->Unmount(target_path); !r) return r;
  if (auto r = RemoveTarget(target_path); !r) return r;
  auto loaded = ctx_.store->Load(volume_id);
  if (!loaded) return Unexpected(loaded.error());
  if (loaded->has_value()) {
    VolumeRecord record = **loaded;
    auto before = record.published.size();
    record.published.erase(std::remove_if(record.published.begin(), record.published.end(),
                                          [&](const PublishedTarget& p) { return p.target_path == target_path; }),
                           record.published.end());
    if (record.published.size() != before) {
      if (auto r = ctx_.store->Save(record); !r) return r;
    }
  }
  spdlog::info("unpublished {} from {}", volume_id, target_path);
  return {};
}

}  // namespace rbdnbd::csi
