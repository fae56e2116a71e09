// The requests of codec.h: map, attach, unmap, detach, list, status.
#include <cerrno>
#include <iterator>
#include <variant>

#include "api/codec.h"
#include "api/json_fields.h"

namespace rbdnbd::api {

using nlohmann::json;

namespace {

// Everything of a map but its secrets, which only EncodeRequest(MapRequest) adds.
json MapBody(const char* op, const MapRequest& r) {
  json j{{"op", op},
         {"spec", r.spec},
         {"device_type", r.device_type},
         {"connections", r.connections},
         {"io_timeout", r.io_timeout_s},
         {"reattach_timeout", r.reattach_timeout_s},
         {"cookie", r.cookie},
         {"read_only", r.read_only},
         {"exclusive", r.exclusive},
         {"notrim", r.notrim},
         {"encryption", r.encryption},
         {"passphrase_file", r.passphrase_file},
         {"client_name", r.client_name},
         {"conf", r.conf},
         {"mon_host", r.mon_host},
         {"keyring", r.keyring},
         {"keyfile", r.keyfile},
         {"connect_timeout", r.connect_timeout_s}};
  if (r.device) j["device"] = *r.device;
  if (r.queue_depth != 0) j["queue_depth"] = r.queue_depth;
  if (r.max_io_bytes != 0) j["max_io_bytes"] = r.max_io_bytes;
  return j;
}

// Ceph's rule for an entity name, the one SetClientName() applies to --name:
// TYPE.ID with both parts; no white space or '/', which would split a
// ceph.conf section or a keyring path.
bool IsClientName(std::string_view name) {
  auto dot = name.find('.');
  return dot != std::string_view::npos && dot != 0 && dot + 1 != name.size() &&
         name.find_first_of(" \t\n/") == std::string_view::npos;
}

Result<void> DecodeMapBody(const JsonFields& f, MapRequest* r) {
  RBDNBD_API_TRY(f.Required("spec", &r->spec));
  RBDNBD_API_TRY(f.Optional("device_type", &r->device_type));
  if (r->device_type.empty()) r->device_type = "nbd";
  if (r->device_type != "nbd" && r->device_type != "ublk") {
    return f.Bad("device_type", fmt::format("must be nbd or ublk, not '{}'", r->device_type));
  }
  if (f.Has("device")) {
    uint32_t index = 0;
    RBDNBD_API_TRY(f.Optional("device", &index));
    r->device = index;
  }
  // ublk's queue shape: the kernel's limits here, the buffer memory at the daemon (it knows its queues).
  RBDNBD_API_TRY(f.Optional("queue_depth", &r->queue_depth, 0u, kMaxUblkQueueDepth));
  RBDNBD_API_TRY(f.Optional("max_io_bytes", &r->max_io_bytes, 0u, kMaxUblkIoBytes));
  if (r->max_io_bytes != 0 && !IsUblkMaxIoBytes(r->max_io_bytes)) {
    return f.Bad("max_io_bytes", fmt::format("must be a multiple of 4096 from 4096 to {}, not {}", kMaxUblkIoBytes,
                                             r->max_io_bytes));
  }
  if (r->device_type != "ublk") {
    if (r->queue_depth != 0) return f.Bad("queue_depth", "applies to device_type ublk only");
    if (r->max_io_bytes != 0) return f.Bad("max_io_bytes", "applies to device_type ublk only");
  }
  RBDNBD_API_TRY(f.Optional("connections", &r->connections, 1u, 16u));
  RBDNBD_API_TRY(f.Optional("io_timeout", &r->io_timeout_s));
  RBDNBD_API_TRY(f.Optional("reattach_timeout", &r->reattach_timeout_s));
  RBDNBD_API_TRY(f.Optional("cookie", &r->cookie));
  RBDNBD_API_TRY(f.Optional("read_only", &r->read_only));
  RBDNBD_API_TRY(f.Optional("exclusive", &r->exclusive));
  RBDNBD_API_TRY(f.Optional("notrim", &r->notrim));
  RBDNBD_API_TRY(f.Optional("encryption", &r->encryption));
  if (r->encryption == "none") r->encryption.clear();
  if (!r->encryption.empty() && r->encryption != "luks1" && r->encryption != "luks2") {
    return f.Bad("encryption", fmt::format("must be luks1 or luks2, not '{}'", r->encryption));
  }
  RBDNBD_API_TRY(f.Optional("passphrase_file", &r->passphrase_file));
  RBDNBD_API_TRY(f.Optional("passphrase", &r->passphrase));
  if (!r->passphrase_file.empty() && !r->passphrase.empty()) {
    return f.Fail("give 'passphrase_file' or 'passphrase', not both");
  }
  if (!r->encryption.empty() && r->passphrase_file.empty() && r->passphrase.empty()) {
    return f.Fail("an encrypted map needs 'passphrase_file' or 'passphrase'");
  }
  if (r->encryption.empty() && !r->passphrase.empty()) return f.Bad("passphrase", "needs 'encryption' luks1|luks2");
  std::string name;
  RBDNBD_API_TRY(f.Optional("client_name", &name));
  if (!name.empty()) {
    if (!IsClientName(name)) {
      return f.Bad("client_name", fmt::format("is a bad client name '{}' (expected TYPE.ID, e.g. client.kube)", name));
    }
    r->client_name = std::move(name);
  }
  RBDNBD_API_TRY(f.Optional("conf", &r->conf));
  RBDNBD_API_TRY(f.Optional("mon_host", &r->mon_host));
  RBDNBD_API_TRY(f.Optional("keyring", &r->keyring));
  RBDNBD_API_TRY(f.Optional("keyfile", &r->keyfile));
  RBDNBD_API_TRY(f.Optional("connect_timeout", &r->connect_timeout_s, 1u, 3600u));
  RBDNBD_API_TRY(f.Optional("key", &r->key));
  return {};
}

Result<Request> DecodeOp(const std::string& op, const json& j) {
  JsonFields f(j, EINVAL, op);
  if (op == "map") {
    MapRequest r;
    RBDNBD_API_TRY(DecodeMapBody(f, &r));
    return Request(std::move(r));
  }
  if (op == "attach") {
    AttachRequest r;
    RBDNBD_API_TRY(DecodeMapBody(f, &r.map));
    if (!r.map.device) return f.Bad("device", "is required");
    if (r.map.cookie.empty()) return f.Bad("cookie", "is required");
    // An attach serves a device again from what the state file names: files.
    RBDNBD_API_TRY(f.Absent("key", "is refused: give 'keyring' or 'keyfile', not an in-memory key"));
    RBDNBD_API_TRY(f.Absent("passphrase", "is refused: give 'passphrase_file', not an in-memory passphrase"));
    return Request(std::move(r));
  }
  if (op == "unmap") {
    UnmapRequest r;
    RBDNBD_API_TRY(f.Required("target", &r.target));
    RBDNBD_API_TRY(f.Optional("force", &r.force));
    return Request(std::move(r));
  }
  if (op == "detach") {
    DetachRequest r;
    RBDNBD_API_TRY(f.Required("target", &r.target));
    return Request(std::move(r));
  }
  if (op == "list") return Request(ListRequest{});
  if (op == "status") return Request(StatusRequest{});
  return Err(EINVAL, "unknown op '{}' (map|unmap|attach|detach|list|status)", op);
}

std::string Dump(json* j) {
  std::string text = DumpJson(*j);
  WipeStringField(j, "key");
  WipeStringField(j, "passphrase");
  return text;
}

}  // namespace

std::string EncodeRequest(const MapRequest& r) {
  json j = MapBody("map", r);
  if (!r.key.empty()) j["key"] = r.key.reveal();
  if (!r.passphrase.empty()) j["passphrase"] = r.passphrase.reveal();
  return Dump(&j);
}

std::string EncodeRequest(const AttachRequest& r) { return DumpJson(MapBody("attach", r.map)); }

std::string EncodeRequest(const UnmapRequest& r) {
  return DumpJson(json{{"op", "unmap"}, {"target", r.target}, {"force", r.force}});
}

const char* OpName(const Request& request) {
  static constexpr const char* kNames[] = {"map", "unmap", "attach", "detach", "list", "status"};
  static_assert(std::variant_size_v<Request> == std::size(kNames), "one name per request type, in order");
  return kNames[request.index()];
}

std::string EncodeRequest(const DetachRequest& r) { return DumpJson(json{{"op", "detach"}, {"target", r.target}}); }
std::string EncodeRequest(const ListRequest&) { return DumpJson(json{{"op", "list"}}); }
std::string EncodeRequest(const StatusRequest&) { return DumpJson(json{{"op", "status"}}); }

Result<Request> DecodeRequest(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  auto op = j.is_object() ? j.find("op") : j.end();
  if (j.is_discarded() || !j.is_object() || op == j.end() || !op->is_string()) {
    return Err(EINVAL, "malformed request: expected a JSON object with a string \"op\"");
  }
  auto request = DecodeOp(op->get<std::string>(), j);
  WipeStringField(&j, "key");
  WipeStringField(&j, "passphrase");
  return request;
}

}  // namespace rbdnbd::api
