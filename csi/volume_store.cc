#include "csi/volume_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/unique_fd.h"

namespace rbdnbd::csi {

using nlohmann::json;

const char* VolumeModeName(VolumeMode mode) { return mode == VolumeMode::kBlock ? "block" : "mount"; }

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

json RecordToJson(const VolumeRecord& r) {
  json published = json::array();
  for (const auto& p : r.published) {
    published.push_back({{"target_path", p.target_path},
                         {"read_only", p.read_only},
                         {"mode", VolumeModeName(p.mode)},
                         {"access_mode", p.access_mode}});
  }
  return json{{"version", 1},
              {"volume_id", r.volume_id},
              {"spec", r.spec},
              {"mode", VolumeModeName(r.mode)},
              {"fs_type", r.fs_type},
              {"mount_flags", r.mount_flags},
              {"read_only", r.read_only},
              {"access_mode", r.access_mode},
              {"staging_path", r.staging_path},
              {"device", r.device},
              {"device_type", DeviceTypeName(r.device_type)},
              {"cookie", r.cookie},
              {"staged", r.staged},
              {"published", published}};
}

Result<VolumeRecord> RecordFromJson(const json& j) {
  if (!j.is_object()) return Err(EINVAL, "volume record is not a JSON object");
  VolumeRecord r;
  try {
    r.volume_id = j.at("volume_id").get<std::string>();
    r.spec = j.value("spec", "");
    std::string mode = j.value("mode", "mount");
    if (mode != "mount" && mode != "block") return Err(EINVAL, "volume record: bad mode '{}'", mode);
    r.mode = mode == "block" ? VolumeMode::kBlock : VolumeMode::kMount;
    r.fs_type = j.value("fs_type", "");
    r.mount_flags = j.value("mount_flags", std::vector<std::string>{});
    r.read_only = j.value("read_only", false);
    r.access_mode = j.value("access_mode", 0);
    r.staging_path = j.value("staging_path", "");
    r.device = j.value("device", "");
    std::string type = j.value("device_type", "nbd");
    if (type != "nbd" && type != "ublk") return Err(EINVAL, "volume record: bad device_type '{}'", type);
    r.device_type = type == "ublk" ? DeviceType::kUblk : DeviceType::kNbd;
    r.cookie = j.value("cookie", "");
    r.staged = j.value("staged", false);
    for (const auto& p : j.value("published", json::array())) {
      r.published.push_back({p.at("target_path").get<std::string>(), p.value("read_only", false),
                             p.value("mode", "mount") == "block" ? VolumeMode::kBlock : VolumeMode::kMount,
                             p.value("access_mode", 0)});
    }
  } catch (const json::exception& e) {
    return Err(EINVAL, "volume record: {}", e.what());
  }
  if (r.volume_id.empty()) return Err(EINVAL, "volume record without a volume_id");
  return r;
}

Result<VolumeStore> VolumeStore::Create(std::string dir) {
  if (dir.empty()) return Err(EINVAL, "the state directory must not be empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(ec.value(), "creating state directory {}: {}", dir, ec.message());
  ::chmod(dir.c_str(), 0700);
  // Temporaries of a Save() cut short by a crash; the records themselves are whole.
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(".json.tmp.") != std::string::npos) {
      std::filesystem::remove(e.path(), ec);
    }
  }
  return VolumeStore(std::move(dir));
}

std::string VolumeStore::PathFor(const std::string& volume_id) const {
  return dir_ + "/" + Sha256Hex(volume_id) + ".json";
}

Result<void> VolumeStore::Save(const VolumeRecord& record) {
  return WriteFileAtomically(PathFor(record.volume_id), RecordToJson(record).dump(2) + "\n", 0600);
}

Result<std::optional<VolumeRecord>> VolumeStore::Load(const std::string& volume_id) const {
  const std::string path = PathFor(volume_id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<VolumeRecord>();
    return Err(errno, "open {}: {}", path, strerror(errno));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "read {}: {}", path, strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) return Err(EFBIG, "{} is over 1 MiB", path);
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Err(EBADMSG, "{} is not valid JSON", path);
  auto r = RecordFromJson(j);
  if (!r) return WithContext(r.error(), path);
  if (r->volume_id != volume_id) return Err(EBADMSG, "{} belongs to another volume", path);
  return std::optional<VolumeRecord>(std::move(r).value());
}

Result<void> VolumeStore::Remove(const std::string& volume_id) {
  const std::string path = PathFor(volume_id);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return Err(errno, "unlink {}: {}", path, strerror(errno));
  }
  return SyncDirectory(dir_);
}

}  // namespace rbdnbd::csi
