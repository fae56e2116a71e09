// VolumeStore: one JSON file per volume in the plugin's state directory.
//
// Contract
// * Save() is atomic and durable: it writes a temporary file (mode 0600),
//   fsyncs it, renames it over the old one and fsyncs the directory, so a
//   crash leaves either the old record or the new one, never a torn file.
// * File names are the SHA-256 of the volume_id (hex), so any volume_id is a
//   safe file name; the record itself carries the volume_id.
// * Load() of an unknown volume returns std::nullopt, not an error.
// * Records never contain secrets (see volume_record.h).
// * Thread-safe for different volume_ids; callers serialise per volume with
//   VolumeLocks. Called from gRPC threads.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>  // the full header (slow to compile) only where json is used

#include "common/result.h"
#include "csi/volume_record.h"

namespace rbdnbd::csi {

class VolumeStore {
 public:
  // Creates `dir` (0700) if missing.
  static Result<VolumeStore> Create(std::string dir);

  Result<void> Save(const VolumeRecord& record);
  Result<std::optional<VolumeRecord>> Load(const std::string& volume_id) const;
  Result<void> Remove(const std::string& volume_id);  // a missing record is fine

  std::string PathFor(const std::string& volume_id) const;
  const std::string& dir() const { return dir_; }

 private:
  explicit VolumeStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

nlohmann::json RecordToJson(const VolumeRecord& r);
Result<VolumeRecord> RecordFromJson(const nlohmann::json& j);
std::string Sha256Hex(const std::string& text);

}  // namespace rbdnbd::csi
