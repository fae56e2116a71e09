#include "csi/controller/journal_record.h"

#include <cerrno>

#include <nlohmann/json.hpp>

#include "csi/controller/volume_id.h"

namespace rbdnbd::csi {

using nlohmann::json;

std::string EncodeRecord(const VolumeJournalRecord& r) {
  json j = {{"uuid", r.uuid},     {"size", r.size},   {"capacity", r.capacity},   {"fingerprint", r.fingerprint},
            {"source", r.source}, {"state", r.ready ? "ready" : "creating"}, {"context", r.context}};
  if (!r.attempt.empty()) j["attempt"] = r.attempt;
  return j.dump();
}

std::string EncodeRecord(const SnapshotJournalRecord& r) {
  json j = {{"uuid", r.uuid},           {"source_uuid", r.source_uuid},
            {"state", r.ready ? "ready" : "creating"},
            {"size", r.size},           {"created_s", r.created_s},
            {"created_nanos", r.created_nanos}};
  if (!r.attempt.empty()) j["attempt"] = r.attempt;
  return j.dump();
}

Result<VolumeJournalRecord> DecodeVolumeJournalRecord(std::string_view text, std::string_view key) {
  try {
    json j = json::parse(text);
    VolumeJournalRecord r;
    r.uuid = j.at("uuid").get<std::string>();
    r.size = j.at("size").get<uint64_t>();
    r.capacity = j.value("capacity", uint64_t{0});
    r.fingerprint = j.at("fingerprint").get<std::string>();
    r.source = j.value("source", "");
    r.ready = j.at("state").get<std::string>() == "ready";
    if (j.contains("context")) r.context = j.at("context").get<StringMap>();
    r.attempt = j.value("attempt", "");
    if (!IsUuid(r.uuid)) return Err(EIO, "journal key '{}': the uuid is malformed", key);
    return r;
  } catch (const json::exception& e) {
    return Err(EIO, "journal key '{}' holds no volume record: {}", key, e.what());
  }
}

Result<SnapshotJournalRecord> DecodeSnapshotJournalRecord(std::string_view text, std::string_view key) {
  try {
    json j = json::parse(text);
    SnapshotJournalRecord r;
    r.uuid = j.at("uuid").get<std::string>();
    r.source_uuid = j.at("source_uuid").get<std::string>();
    r.ready = j.at("state").get<std::string>() == "ready";
    r.size = j.value("size", uint64_t{0});
    r.created_s = j.value("created_s", int64_t{0});
    r.created_nanos = j.value("created_nanos", int32_t{0});
    r.attempt = j.value("attempt", "");
    if (!IsUuid(r.uuid) || !IsUuid(r.source_uuid)) return Err(EIO, "journal key '{}': a uuid is malformed", key);
    return r;
  } catch (const json::exception& e) {
    return Err(EIO, "journal key '{}' holds no snapshot record: {}", key, e.what());
  }
}

}  // namespace rbdnbd::csi
