// LibrbdSession: snapshots of head images.
#include <time.h>

#include "csi/controller/librbd_session.h"
#include "csi/controller/librbd_util.h"

namespace rbdnbd::csi {
namespace {

uint32_t SnapCreateFlags(QuiesceMode mode) {
  switch (mode) {
    case QuiesceMode::kRequired:
      return 0;
    case QuiesceMode::kBestEffort:
      return RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR;
    case QuiesceMode::kSkip:
      return RBD_SNAP_CREATE_SKIP_QUIESCE;
  }
  return 0;
}

}  // namespace

Result<SnapInfo> LibrbdSession::SnapOf(rbd_image_t img, const std::string& image, const std::string& snap) {
  std::string spec = fmt::format("{}@{}", Spec(image), snap);
  auto snaps = ListSnapshots(img, Spec(image));
  if (!snaps) return Unexpected(snaps.error());
  for (const auto& s : *snaps) {
    if (s.name != snap) continue;
    // Trash-namespace snapshots are named by a uuid; never the caller's.
    rbd_snap_namespace_type_t type = RBD_SNAP_NAMESPACE_TYPE_USER;
    if (int r = rbd_snap_get_namespace_type(img, s.id, &type); r < 0) {
      return Err(-r, "cannot read the namespace of snapshot '{}': {}", spec, Why(r));
    }
    if (type != RBD_SNAP_NAMESPACE_TYPE_USER) continue;
    timespec ts{};
    if (int r = rbd_snap_get_timestamp(img, s.id, &ts); r < 0) {
      return Err(-r, "cannot read the creation time of snapshot '{}': {}", spec, Why(r));
    }
    SnapInfo info;
    info.image = image;
    info.name = snap;
    info.id = s.id;
    info.size_bytes = s.size;
    info.created_unix_s = ts.tv_sec;
    info.created_nanos = static_cast<int32_t>(ts.tv_nsec);
    return info;
  }
  return Err(ENOENT, "snapshot '{}' does not exist", spec);
}

Result<SnapInfo> LibrbdSession::CreateSnapshot(const std::string& image, const std::string& snap,
                                               QuiesceMode quiesce) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  std::string spec = fmt::format("{}@{}", Spec(image), snap);
  // Read-write: librbd takes a snapshot only through a writable handle. Our
  // own watch registers no quiesce callback, so it acks the quiesce at once.
  auto img = OpenImage(*io, image, OpenMode::kReadWrite, Spec(image));
  if (!img) return Unexpected(img.error());
  int r = rbd_snap_create2(img->get(), snap.c_str(), SnapCreateFlags(quiesce), NoProgress, nullptr);
  if (r == -EEXIST) return Err(EEXIST, "snapshot '{}' exists already", spec);
  if (r < 0) {
    return Err(-r, "cannot take snapshot '{}'{}: {}", spec,
               quiesce == QuiesceMode::kRequired ? " (quiesce required: a client that maps it may have failed to "
                                                   "freeze its filesystem)"
                                                 : "",
               Why(r));
  }
  // kBestEffort: librbd reports no quiesce failure to us (librbd_store.h), so
  // quiesce_failed stays false.
  return SnapOf(img->get(), image, snap);
}

Result<SnapInfo> LibrbdSession::StatSnapshot(const std::string& image, const std::string& snap) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto img = OpenImage(*io, image, OpenMode::kReadOnly, Spec(image));
  if (!img) return Unexpected(img.error());
  return SnapOf(img->get(), image, snap);
}

Result<void> LibrbdSession::RemoveSnapshot(const std::string& image, const std::string& snap) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  std::string spec = fmt::format("{}@{}", Spec(image), snap);
  auto img = OpenImage(*io, image, OpenMode::kReadWrite, Spec(image));
  if (!img) return Unexpected(img.error());
  // Clone v2: a snapshot with children goes to the trash namespace instead
  // of failing, and librbd removes it with its last child.
  int r = rbd_snap_remove2(img->get(), snap.c_str(), 0, NoProgress, nullptr);
  if (r == -ENOENT) return Err(ENOENT, "snapshot '{}' does not exist", spec);
  if (r < 0) return Err(-r, "cannot remove snapshot '{}': {}", spec, Why(r));
  return {};
}

Result<std::vector<std::string>> LibrbdSession::SnapshotNames(const std::string& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  std::string spec = Spec(image);
  auto img = OpenImage(*io, image, OpenMode::kReadOnly, spec);
  if (!img) return Unexpected(img.error());
  auto snaps = ListSnapshots(img->get(), spec);
  if (!snaps) return Unexpected(snaps.error());
  std::vector<std::string> names;
  for (const auto& s : *snaps) {
    rbd_snap_namespace_type_t type = RBD_SNAP_NAMESPACE_TYPE_USER;
    if (int r = rbd_snap_get_namespace_type(img->get(), s.id, &type); r < 0) {
      return Err(-r, "cannot read the namespace of snapshot '{}@{}': {}", spec, s.name, Why(r));
    }
    if (type == RBD_SNAP_NAMESPACE_TYPE_USER) names.push_back(s.name);
  }
  return names;
}

}  // namespace rbdnbd::csi
