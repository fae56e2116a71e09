// The controller's volume and snapshot ids: everything a later call needs
// (which cluster, pool, RADOS namespace and image) encoded in the id itself,
// so DeleteVolume, ControllerExpandVolume, ... need no lookup (README.md):
//
//   volume_id   rnv1.<cluster>.<pool>.<namespace>.<uuid>
//   snapshot_id rns1.<cluster>.<pool>.<namespace>.<source uuid>.<snap uuid>
//
// <cluster> is 'c' + the clusterID or 'm' + the monitors; every text part is
// percent-encoded outside [A-Za-z0-9_-] (so '.' never appears inside a part);
// a uuid is 32 lowercase hex digits. The image is csi-vol-<uuid> (a volume)
// or csi-snap-<snap uuid> (a snapshot's own image, whose RBD snapshot has the
// same name); a source's temporary RBD snapshot, while a clone of it is made,
// is csi-tmp-<attempt> (TmpSnapshotName).
//
// Contract: pure, any thread. Decode*() of anything that Encode*() did not
// produce (another prefix, a bad escape, a missing part, a bad uuid) is
// EINVAL naming what is wrong; callers turn that into NOT_FOUND or OK as
// the RPC requires. Encode*() never fails; the 128-byte limit is the
// caller's to check (kMaxIdBytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd::csi {

inline constexpr size_t kMaxIdBytes = 128;  // CSI: ids of at most 128 bytes

// Which cluster: by its clusterID in --cluster-config, or by its monitors.
struct ClusterRef {
  bool by_id = true;
  std::string value;  // the clusterID, or comma-separated monitors

  // "c<id>" / "m<monitors>", unescaped: a key for maps (credentials, pools).
  std::string Key() const { return (by_id ? "c" : "m") + value; }
  bool operator==(const ClusterRef&) const = default;
  auto operator<=>(const ClusterRef&) const = default;
};

struct VolumeRef {
  ClusterRef cluster;
  std::string pool;
  std::string ns;    // RADOS namespace; "" the default one
  std::string uuid;  // 32 hex digits

  std::string ImageName() const { return "csi-vol-" + uuid; }
  bool operator==(const VolumeRef&) const = default;
};

struct SnapshotRef {
  VolumeRef source;       // the source volume (pool and namespace of both)
  std::string snap_uuid;  // 32 hex digits

  // The snapshot's own image, and its RBD snapshot (the same name).
  std::string ImageName() const { return "csi-snap-" + snap_uuid; }
  bool operator==(const SnapshotRef&) const = default;
};

// The temporary RBD snapshot that a create attempt (journal_record.h) takes of
// its source volume to clone from. Named by the attempt, so that an attempt
// taken over (and still running) and the one that took it over never share
// one: each removes its own.
inline constexpr std::string_view kTmpSnapshotPrefix = "csi-tmp-";
inline std::string TmpSnapshotName(std::string_view attempt) {
  return std::string(kTmpSnapshotPrefix) + std::string(attempt);
}

std::string EncodeVolumeId(const VolumeRef& ref);
std::string EncodeSnapshotId(const SnapshotRef& ref);
Result<VolumeRef> DecodeVolumeId(std::string_view id);
Result<SnapshotRef> DecodeSnapshotId(std::string_view id);

// 32 random lowercase hex digits (from the kernel's CSPRNG).
std::string NewUuid();
bool IsUuid(std::string_view s);

// Percent-encoding of everything outside [A-Za-z0-9_-] (exposed for tests).
std::string PercentEncode(std::string_view s);
Result<std::string> PercentDecode(std::string_view s);

}  // namespace rbdnbd::csi
