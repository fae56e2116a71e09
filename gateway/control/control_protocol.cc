#include "control/control_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

namespace rbdnbd {

using nlohmann::json;

namespace {

constexpr size_t kMaxMessage = 1 << 20;

template <typename T>
Result<void> Field(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return Err(EINVAL, "'{}' must be true or false", key);
    *out = it->get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Err(EINVAL, "'{}' must be a string", key);
    *out = it->get<std::string>();
  } else {
    // Any non-negative integer: JSON built in memory may hold a signed one.
    if (!it->is_number_integer() || it->template get<int64_t>() < 0) {
      return Err(EINVAL, "'{}' must be a non-negative integer", key);
    }
    auto v = static_cast<uint64_t>(it->template get<int64_t>());
    if (v > std::numeric_limits<T>::max()) return Err(ERANGE, "'{}' is too large", key);
    *out = static_cast<T>(v);
  }
  return {};
}

#define RBDNBD_FIELD(j, key, out) \
  if (auto f_ = Field(j, key, out); !f_) return Unexpected(f_.error())

}  // namespace

json MapRequestToJson(const MapRequest& r) {
  json j{{"op", "map"},
         {"spec", r.spec},
         {"connections", r.device.connections},
         {"io_timeout", r.device.io_timeout_s},
         {"reattach_timeout", r.device.reattach_timeout_s},
         {"cookie", r.device.cookie},
         {"read_only", r.image.read_only},
         {"exclusive", r.image.exclusive},
         {"notrim", r.image.notrim},
         {"encryption", r.image.encryption == EncryptionFormat::kLuks1   ? "luks1"
                        : r.image.encryption == EncryptionFormat::kLuks2 ? "luks2"
                                                                         : ""},
         {"passphrase_file", r.passphrase_file},
         {"client_name", r.cluster.client_name},
         {"conf", r.cluster.conf_path},
         {"mon_host", r.cluster.mon_host},
         {"keyring", r.cluster.keyring_path},
         {"keyfile", r.keyfile_path},
         {"connect_timeout", r.cluster.connect_timeout.count()}};
  if (r.device.index) j["device"] = *r.device.index;
  if (!r.cluster.key.empty()) j["key"] = r.cluster.key.reveal();
  if (!r.image.passphrase.empty()) j["passphrase"] = r.image.passphrase.reveal();
  return j;
}

Result<MapRequest> MapRequestFromJson(const json& j) {
  MapRequest r;
  RBDNBD_FIELD(j, "spec", &r.spec);
  if (r.spec.empty()) return Err(EINVAL, "map: 'spec' is required");
  if (j.contains("device")) {
    uint32_t index = 0;
    RBDNBD_FIELD(j, "device", &index);
    r.device.index = index;
  }
  RBDNBD_FIELD(j, "connections", &r.device.connections);
  if (r.device.connections < 1 || r.device.connections > 16) return Err(EINVAL, "connections must be 1..16");
  RBDNBD_FIELD(j, "io_timeout", &r.device.io_timeout_s);
  RBDNBD_FIELD(j, "reattach_timeout", &r.device.reattach_timeout_s);
  RBDNBD_FIELD(j, "cookie", &r.device.cookie);
  RBDNBD_FIELD(j, "read_only", &r.image.read_only);
  RBDNBD_FIELD(j, "exclusive", &r.image.exclusive);
  RBDNBD_FIELD(j, "notrim", &r.image.notrim);
  std::string enc;
  RBDNBD_FIELD(j, "encryption", &enc);
  auto format = ParseEncryptionFormat(enc);
  if (!format) return Unexpected(format.error());
  r.image.encryption = *format;
  RBDNBD_FIELD(j, "passphrase_file", &r.passphrase_file);
  std::string passphrase;
  RBDNBD_FIELD(j, "passphrase", &passphrase);
  r.image.passphrase = Secret(std::move(passphrase));
  if (!r.passphrase_file.empty() && !r.image.passphrase.empty()) {
    return Err(EINVAL, "give 'passphrase_file' or 'passphrase', not both");
  }
  if (r.image.encryption != EncryptionFormat::kNone && r.passphrase_file.empty() && r.image.passphrase.empty()) {
    return Err(EINVAL, "an encrypted map needs 'passphrase_file' or 'passphrase'");
  }
  if (r.image.encryption == EncryptionFormat::kNone && !r.image.passphrase.empty()) {
    return Err(EINVAL, "'passphrase' needs 'encryption' luks1|luks2");
  }
  std::string name;
  RBDNBD_FIELD(j, "client_name", &name);
  if (!name.empty()) {
    if (auto s = SetClientName(&r.cluster, name); !s) return Unexpected(s.error());
  }
  RBDNBD_FIELD(j, "conf", &r.cluster.conf_path);
  RBDNBD_FIELD(j, "mon_host", &r.cluster.mon_host);
  RBDNBD_FIELD(j, "keyring", &r.cluster.keyring_path);
  RBDNBD_FIELD(j, "keyfile", &r.keyfile_path);
  uint64_t timeout = r.cluster.connect_timeout.count();
  RBDNBD_FIELD(j, "connect_timeout", &timeout);
  if (timeout < 1 || timeout > 3600) return Err(EINVAL, "connect_timeout must be 1..3600 s");
  r.cluster.connect_timeout = std::chrono::seconds(timeout);
  std::string key;
  RBDNBD_FIELD(j, "key", &key);
  r.cluster.key = Secret(std::move(key));
  r.cluster.read_ceph_args = false;  // the daemon's environment is not the caller's
  return r;
}

json MappedInfoToJson(const MappedInfo& m) {
  const DeviceRecord& r = m.record;
  return json{{"device", m.device},       {"index", r.index},          {"spec", r.spec},
              {"cookie", r.cookie},       {"connections", r.connections},
              {"live_connections", m.live_connections}, {"size", m.size},
              {"read_only", r.read_only}, {"exclusive", r.exclusive},  {"encryption", r.encryption},
              {"io_timeout", r.io_timeout_s}, {"reattach_timeout", r.reattach_timeout_s},
              {"client_name", r.client_name}, {"kernel_connected", m.kernel_connected},
              {"state", m.state}, {"last_error", m.last_error}, {"last_error_unix", m.last_error_unix},
              {"reattach_attempts", m.reattach_attempts}};
}

Result<DeviceRecord> RecordFromJson(const json& j) {
  auto req = MapRequestFromJson(j);
  if (!req) return Unexpected(req.error());
  if (!req->device.index) return Err(EINVAL, "attach: 'device' is required");
  if (req->device.cookie.empty()) return Err(EINVAL, "attach: 'cookie' is required");
  if (!req->cluster.key.empty()) return Err(EINVAL, "attach: give 'keyring' or 'keyfile', not an in-memory key");
  if (!req->image.passphrase.empty()) return Err(EINVAL, "attach: give 'passphrase_file', not an in-memory passphrase");
  auto spec = ParseImageSpec(req->spec);
  if (!spec) return Unexpected(spec.error());
  DeviceRecord r = RecordForMap(*req, *spec);
  r.index = *req->device.index;
  return r;
}

json ErrorReply(const Error& e) { return json{{"ok", false}, {"errno", e.code}, {"error", e.message}}; }

Result<std::string> ReadLine(int fd) {
  std::string line;
  char c;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 120000) <= 0) return Err(ETIMEDOUT, "no answer on the control socket within 120 s");
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "control socket read: {}", strerror(errno));
    if (n == 0) {
      if (line.empty()) return Err(ECONNRESET, "the control socket closed without an answer");
      return line;
    }
    if (c == '\n') return line;
    line.push_back(c);
    if (line.size() > kMaxMessage) return Err(EMSGSIZE, "control message over {} bytes", kMaxMessage);
  }
}

Result<void> WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "control socket write: {}", strerror(errno));
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<json> CallDaemon(const std::string& socket_path, const json& request) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) return Err(ENAMETOOLONG, "control socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Err(errno, "socket: {}", strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    return Err(e, "cannot reach the rbd-nbdd daemon at {}: {} (is `rbd-nbdd daemon` running?)", socket_path,
               strerror(e));
  }
  std::string text = request.dump() + "\n";
  auto w = WriteAll(fd.get(), text);
  explicit_bzero(text.data(), text.size());  // may hold a key
  if (!w) return Unexpected(w.error());
  auto line = ReadLine(fd.get());
  if (!line) return Unexpected(line.error());
  json reply = json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) return Err(EPROTO, "the daemon sent a malformed reply");
  return reply;
}

}  // namespace rbdnbd
