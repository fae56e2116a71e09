#include "control/state_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "ublk/ublk_params.h"

namespace rbdnbd {

using nlohmann::json;

namespace {

json ToJson(const DeviceRecord& d) {
  json j = json{{"type", DeviceTypeName(d.type)},
              {"index", d.index},           {"spec", d.spec},
              {"cookie", d.cookie},         {"connections", d.connections},
              {"io_timeout", d.io_timeout_s}, {"reattach_timeout", d.reattach_timeout_s},
              {"connect_timeout", d.connect_timeout_s},
              {"read_only", d.read_only},   {"exclusive", d.exclusive},
              {"notrim", d.notrim},         {"encryption", d.encryption},
              {"passphrase_file", d.passphrase_file},
              {"client_name", d.client_name}, {"conf", d.conf_path},
              {"mon_host", d.mon_host},     {"keyring", d.keyring_path},
              {"keyfile", d.keyfile_path},  {"key_in_memory", d.key_in_memory},
              {"passphrase_in_memory", d.passphrase_in_memory},
              {"client_addr", d.client_addr}};
  if (d.type == DeviceType::kUblk) {
    j["queue_depth"] = d.queue_depth;
    j["max_io_bytes"] = d.max_io_bytes;
  }
  return j;
}

template <typename T>
void Get(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) {
    if constexpr (std::is_same_v<T, bool>) {
      if (it->is_boolean()) *out = it->get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (it->is_string()) *out = it->get<std::string>();
    } else {
      if (it->is_number_unsigned()) *out = it->get<T>();
    }
  }
}

}  // namespace

const char* DeviceTypeName(DeviceType type) { return type == DeviceType::kUblk ? "ublk" : "nbd"; }

Result<DeviceType> ParseDeviceType(std::string_view name) {
  if (name.empty() || name == "nbd") return DeviceType::kNbd;
  if (name == "ublk") return DeviceType::kUblk;
  return Err(EINVAL, "device type '{}' is not nbd or ublk", name);
}

std::string DevicePath(DeviceType type, uint32_t index) {
  return (type == DeviceType::kUblk ? "/dev/ublkb" : "/dev/nbd") + std::to_string(index);
}

Result<void> StateStore::Init() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Err(errno, "cannot create state directory {}: {}", dir_, strerror(errno));
  }
  // A Save() cut short by a crash leaves its uniquely named temporary file;
  // state.json itself is whole. Only one daemon owns this directory, so no
  // temporary here can belong to a Save() still running.
  std::error_code ec;
  const std::string prefix = "state.json.tmp.";
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.path().filename().string().starts_with(prefix)) std::filesystem::remove(e.path(), ec);
  }
  return {};
}

Result<std::vector<DeviceRecord>> StateStore::Load() const {
  std::ifstream f(path());
  if (!f) return std::vector<DeviceRecord>{};
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err(EINVAL, "state file {} is not valid JSON", path());
  std::vector<DeviceRecord> out;
  auto devices = j.find("devices");
  if (devices == j.end() || !devices->is_array()) return out;
  for (const json& d : *devices) {
    if (!d.is_object()) continue;
    DeviceRecord r;
    std::string type;
    Get(d, "type", &type);
    auto t = ParseDeviceType(type);
    if (!t) return Err(EINVAL, "state file {}: {} (written by a newer daemon?)", path(), t.error().message);
    r.type = *t;
    Get(d, "index", &r.index);
    Get(d, "spec", &r.spec);
    Get(d, "cookie", &r.cookie);
    Get(d, "connections", &r.connections);
    if (r.type == DeviceType::kUblk) {
      Get(d, "queue_depth", &r.queue_depth);
      Get(d, "max_io_bytes", &r.max_io_bytes);
      if (r.queue_depth == 0) r.queue_depth = kUblkDefaultDepth;  // an older daemon's record
      if (r.max_io_bytes == 0) r.max_io_bytes = kUblkDefaultMaxIoBytes;
    }
    Get(d, "io_timeout", &r.io_timeout_s);
    Get(d, "reattach_timeout", &r.reattach_timeout_s);
    Get(d, "connect_timeout", &r.connect_timeout_s);
    Get(d, "read_only", &r.read_only);
    Get(d, "exclusive", &r.exclusive);
    Get(d, "notrim", &r.notrim);
    Get(d, "encryption", &r.encryption);
    Get(d, "passphrase_file", &r.passphrase_file);
    Get(d, "client_name", &r.client_name);
    Get(d, "conf", &r.conf_path);
    Get(d, "mon_host", &r.mon_host);
    Get(d, "keyring", &r.keyring_path);
    Get(d, "keyfile", &r.keyfile_path);
    Get(d, "key_in_memory", &r.key_in_memory);
    Get(d, "passphrase_in_memory", &r.passphrase_in_memory);
    Get(d, "client_addr", &r.client_addr);
    if (r.spec.empty() || r.cookie.empty()) continue;
    out.push_back(std::move(r));
  }
  return out;
}

Result<void> StateStore::Save(const std::vector<DeviceRecord>& devices) const {
  json j{{"version", 1}, {"devices", json::array()}};
  for (const auto& d : devices) j["devices"].push_back(ToJson(d));
  return WriteFileAtomically(path(), j.dump(2) + "\n", 0600);
}

}  // namespace rbdnbd
