// The name journal's records (README.md, "What it stores in Ceph"): one omap
// key "name/<CSI name>" per volume in the object rbd-nbdd-csi.volumes, and per
// snapshot in rbd-nbdd-csi.snapshots, of the pool and namespace they live in.
// The value is one JSON object.
//
// A record is reserved (JournalReserve) in state "creating" before anything
// is made, and turned "ready" (JournalSwap) once everything is; a record
// still "creating" that a later call finds is what a crash left half done, or
// another controller's create still under way: the later call takes it over
// with a JournalSwap that writes its own `attempt`, and from then on every
// change the earlier attempt tries (ready, rollback) finds another value and
// fails (ECANCELED), so only one attempt ever finishes or undoes a uuid.
//
// Contract: pure, any thread. Decode*() of text that is not such a record is
// EIO naming the key (a journal someone else wrote into); no exceptions leave.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

inline constexpr std::string_view kVolumesObject = "rbd-nbdd-csi.volumes";
inline constexpr std::string_view kSnapshotsObject = "rbd-nbdd-csi.snapshots";
inline constexpr std::string_view kNameKeyPrefix = "name/";

inline std::string NameKey(std::string_view name) { return std::string(kNameKeyPrefix) + std::string(name); }

struct VolumeJournalRecord {
  std::string uuid;
  uint64_t size = 0;        // bytes, as created (the idempotency check)
  uint64_t capacity = 0;    // bytes now: ControllerExpandVolume updates it (ListVolumes); 0: `size`
  std::string fingerprint;  // create_params.h Fingerprint()
  std::string source;       // "", "snapshot:<id>" or "volume:<id>"
  bool ready = false;
  StringMap context;        // the volume_context it was created with (ListVolumes)
  std::string attempt;      // the create that holds the record (random; "" in older records)
};

struct SnapshotJournalRecord {
  std::string uuid;
  std::string source_uuid;  // the source volume's uuid (same pool and namespace)
  bool ready = false;
  uint64_t size = 0;          // once ready
  int64_t created_s = 0;      // once ready
  int32_t created_nanos = 0;  // once ready
  std::string attempt;        // the create that holds the record (random; "" in older records)
};

std::string EncodeRecord(const VolumeJournalRecord& record);
std::string EncodeRecord(const SnapshotJournalRecord& record);
Result<VolumeJournalRecord> DecodeVolumeJournalRecord(std::string_view text, std::string_view key);
Result<SnapshotJournalRecord> DecodeSnapshotJournalRecord(std::string_view text, std::string_view key);

}  // namespace rbdnbd::csi
