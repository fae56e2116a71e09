// The replies of codec.h: mapped (map, attach), ok (unmap, detach), status
// (list, status) and the error reply of any op.
#include <cerrno>
#include <limits>

#include "api/codec.h"
#include "api/json_fields.h"

namespace rbdnbd::api {

using nlohmann::json;

const char* DeviceStateName(DeviceState state) {
  switch (state) {
    case DeviceState::kReattaching: return "reattaching";
    case DeviceState::kUnmapping: return "unmapping";
    case DeviceState::kMapped: break;
  }
  return "mapped";
}

namespace {

json HealthJson(const DeviceHealth& h) {
  return json{{"state", DeviceStateName(h.state)},
              {"last_error", h.last_error},
              {"last_error_time", h.last_error_time},
              {"seconds_since_last_io", h.seconds_since_last_io},
              {"inflight", h.inflight},
              {"recent_errors", h.recent_errors},
              {"stalled", h.stalled}};
}

json DeviceJson(const DeviceEntry& d) {
  json j{{"device", d.device},
              {"type", d.type},
              {"index", d.index},
              {"spec", d.spec},
              {"cookie", d.cookie},
              {"connections", d.connections},
              {"live_connections", d.live_connections},
              {"size", d.size},
              {"image_size", d.image_size},
              {"read_only", d.read_only},
              {"exclusive", d.exclusive},
              {"encryption", d.encryption},
              {"io_timeout", d.io_timeout_s},
              {"reattach_timeout", d.reattach_timeout_s},
              {"client_name", d.client_name},
              {"kernel_connected", d.kernel_connected},
              {"state", DeviceStateName(d.state)},
              {"last_error", d.last_error},
              {"last_error_unix", d.last_error_unix},
              {"reattach_attempts", d.reattach_attempts}};
  if (d.queue_depth != 0) j["queue_depth"] = d.queue_depth;
  if (d.max_io_bytes != 0) j["max_io_bytes"] = d.max_io_bytes;
  if (d.health) j["health"] = HealthJson(*d.health);
  return j;
}

json StatusJson(const StatusReply& r) {
  json devices = json::array();
  for (const DeviceEntry& d : r.devices) devices.push_back(DeviceJson(d));
  json j{{"ok", true}, {"devices", std::move(devices)}, {"pid", r.pid}};
  if (r.nbd_driver) j["nbd_driver"] = *r.nbd_driver;
  if (r.netlink) j["netlink"] = *r.netlink;
  return j;
}

// The daemon's own failure, from {"ok":false,"errno":N,"error":"..."}.
Error DecodeError(const JsonFields& f) {
  int code = 0;
  std::string message;
  if (!f.Has("errno")) return f.Bad("errno", "is required").error();
  if (auto r = f.Optional("errno", &code, 1, 4095); !r) return r.error();
  if (auto r = f.Required("error", &message); !r) return r.error();
  return Error{code, std::move(message)};
}

// Parses a reply and returns it only if it says "ok":true; an error reply
// becomes the daemon's Error, anything malformed EPROTO.
Result<json> SuccessfulReply(std::string_view line, const char* what) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Err(EPROTO, "{}: the daemon sent a malformed reply", what);
  JsonFields f(j, EPROTO, what);
  bool ok = false;
  RBDNBD_API_TRY(f.Required("ok", &ok));
  if (!ok) return Unexpected(DecodeError(f));
  return j;
}

template <typename T>
Result<void> OptionalOf(const JsonFields& f, const char* key, std::optional<T>* out) {
  if (!f.Has(key)) return {};
  T v{};
  RBDNBD_API_TRY(f.Optional(key, &v));
  *out = v;
  return {};
}

// "mapped", "reattaching" or "unmapping" in field `key` of `f`.
Result<void> DecodeState(const JsonFields& f, const char* key, DeviceState* out) {
  std::string state = DeviceStateName(*out);
  RBDNBD_API_TRY(f.Optional(key, &state));
  if (state == "mapped") {
    *out = DeviceState::kMapped;
  } else if (state == "reattaching") {
    *out = DeviceState::kReattaching;
  } else if (state == "unmapping") {
    *out = DeviceState::kUnmapping;
  } else {
    return f.Bad(key, fmt::format("must be mapped, reattaching or unmapping, not '{}'", state));
  }
  return {};
}

Result<DeviceHealth> DecodeHealth(const json& j, const std::string& device_what) {
  std::string what = device_what + ": health";
  if (!j.is_object()) return Err(EPROTO, "{} is not an object", what);
  JsonFields f(j, EPROTO, what);
  DeviceHealth h;
  RBDNBD_API_TRY(DecodeState(f, "state", &h.state));
  RBDNBD_API_TRY(f.Optional("last_error", &h.last_error));
  RBDNBD_API_TRY(f.Optional("last_error_time", &h.last_error_time));
  RBDNBD_API_TRY(f.OptionalSigned("seconds_since_last_io", &h.seconds_since_last_io, -1,
                                  std::numeric_limits<int64_t>::max()));
  RBDNBD_API_TRY(f.Optional("inflight", &h.inflight));
  RBDNBD_API_TRY(f.Optional("recent_errors", &h.recent_errors));
  RBDNBD_API_TRY(f.Optional("stalled", &h.stalled));
  return h;
}

Result<DeviceEntry> DecodeDevice(const json& j, size_t i) {
  std::string what = fmt::format("status reply: devices[{}]", i);
  if (!j.is_object()) return Err(EPROTO, "{} is not an object", what);
  JsonFields f(j, EPROTO, what);
  DeviceEntry d;
  RBDNBD_API_TRY(f.Required("device", &d.device));
  RBDNBD_API_TRY(f.Optional("type", &d.type));
  if (d.type.empty()) d.type = "nbd";  // a newer daemon's other kinds pass as they are
  RBDNBD_API_TRY(f.Optional("index", &d.index));
  RBDNBD_API_TRY(f.Required("spec", &d.spec));
  RBDNBD_API_TRY(f.Optional("cookie", &d.cookie));
  RBDNBD_API_TRY(f.Optional("connections", &d.connections));
  RBDNBD_API_TRY(f.Optional("live_connections", &d.live_connections));
  RBDNBD_API_TRY(f.Optional("queue_depth", &d.queue_depth));
  RBDNBD_API_TRY(f.Optional("max_io_bytes", &d.max_io_bytes));
  RBDNBD_API_TRY(f.Optional("size", &d.size));
  RBDNBD_API_TRY(f.Optional("image_size", &d.image_size));
  RBDNBD_API_TRY(f.Optional("read_only", &d.read_only));
  RBDNBD_API_TRY(f.Optional("exclusive", &d.exclusive));
  RBDNBD_API_TRY(f.Optional("encryption", &d.encryption));
  RBDNBD_API_TRY(f.Optional("io_timeout", &d.io_timeout_s));
  RBDNBD_API_TRY(f.Optional("reattach_timeout", &d.reattach_timeout_s));
  RBDNBD_API_TRY(f.Optional("client_name", &d.client_name));
  RBDNBD_API_TRY(f.Optional("kernel_connected", &d.kernel_connected));
  RBDNBD_API_TRY(DecodeState(f, "state", &d.state));
  RBDNBD_API_TRY(f.Optional("last_error", &d.last_error));
  RBDNBD_API_TRY(f.Optional("last_error_unix", &d.last_error_unix));
  RBDNBD_API_TRY(f.Optional("reattach_attempts", &d.reattach_attempts));
  if (f.Has("health")) {
    auto h = DecodeHealth(j["health"], what);
    if (!h) return Unexpected(h.error());
    d.health = std::move(h).value();
  }
  return d;
}

}  // namespace

std::string EncodeReply(const MappedReply& r) {
  return DumpJson(json{{"ok", true}, {"device", r.device}, {"cookie", r.cookie}, {"already_mapped", r.already_mapped}});
}

std::string EncodeReply(const OkReply&) { return DumpJson(json{{"ok", true}}); }
std::string EncodeReply(const StatusReply& r) { return DumpJson(StatusJson(r)); }

std::string EncodeReply(const Error& e) {
  return DumpJson(json{{"ok", false}, {"errno", e.code}, {"error", e.message}});
}

Result<MappedReply> DecodeMappedReply(std::string_view line) {
  auto j = SuccessfulReply(line, "map reply");
  if (!j) return Unexpected(j.error());
  JsonFields f(*j, EPROTO, "map reply");
  MappedReply r;
  RBDNBD_API_TRY(f.Required("device", &r.device));
  RBDNBD_API_TRY(f.Optional("cookie", &r.cookie));
  RBDNBD_API_TRY(f.Optional("already_mapped", &r.already_mapped));
  return r;
}

Result<OkReply> DecodeOkReply(std::string_view line) {
  auto j = SuccessfulReply(line, "reply");
  if (!j) return Unexpected(j.error());
  return OkReply{};
}

Result<StatusReply> DecodeStatusReply(std::string_view line) {
  auto j = SuccessfulReply(line, "status reply");
  if (!j) return Unexpected(j.error());
  JsonFields f(*j, EPROTO, "status reply");
  StatusReply r;
  if (!f.Has("devices")) return f.Bad("devices", "is required");
  const json& devices = (*j)["devices"];
  if (!devices.is_array()) return f.Bad("devices", "must be a list");
  for (size_t i = 0; i < devices.size(); i++) {
    auto d = DecodeDevice(devices[i], i);
    if (!d) return Unexpected(d.error());
    r.devices.push_back(std::move(d).value());
  }
  RBDNBD_API_TRY(f.Optional("pid", &r.pid));
  RBDNBD_API_TRY(OptionalOf(f, "nbd_driver", &r.nbd_driver));
  RBDNBD_API_TRY(OptionalOf(f, "netlink", &r.netlink));
  return r;
}

std::string FormatDevices(const std::vector<DeviceEntry>& devices, int indent) {
  json j = json::array();
  for (const DeviceEntry& d : devices) j.push_back(DeviceJson(d));
  return DumpJson(j, indent);
}

std::string FormatStatus(const StatusReply& reply, int indent) {
  return DumpJson(StatusJson(reply), indent);
}

}  // namespace rbdnbd::api
