#include "csi/daemon_client.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "control/control_protocol.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

using nlohmann::json;

namespace {

// The reply's failure, with the daemon's errno kept.
Result<json> CheckReply(const json& reply, std::string_view op) {
  if (reply.value("ok", false)) return reply;
  int code = EIO;
  if (auto it = reply.find("errno"); it != reply.end() && it->is_number_integer() && it->get<int>() > 0) {
    code = it->get<int>();
  }
  std::string message = reply.value("error", std::string("no error message"));
  return Err(code, "rbd-nbdd {}: {}", op, message);
}

class SocketDaemonClient final : public DaemonClient {
 public:
  explicit SocketDaemonClient(std::string socket) : socket_(std::move(socket)) {}

  Result<DaemonStatus> Status() override {
    auto reply = Call(json{{"op", "status"}}, "status");
    if (!reply) return Unexpected(reply.error());
    return ParseStatusReply(*reply);
  }

  Result<MapResult> Map(const VolumeParams& params, bool read_only) override {
    json request = BuildMapRequest(params, read_only);
    auto reply = Call(request, "map");
    WipeSecrets(&request);
    if (!reply) return Unexpected(reply.error());
    MapResult r{reply->value("device", ""), reply->value("cookie", "")};
    if (r.device.empty()) return Err(EPROTO, "rbd-nbdd map: the reply names no device");
    return r;
  }

  Result<void> Unmap(const std::string& target) override {
    auto reply = Call(json{{"op", "unmap"}, {"target", target}, {"force", false}}, "unmap");
    if (!reply) return Unexpected(reply.error());
    return {};
  }

  const std::string& socket_path() const override { return socket_; }

 private:
  Result<json> Call(const json& request, std::string_view op) {
    auto reply = CallDaemon(socket_, request);
    if (!reply) {
      return Err(kUnavailable, "rbd-nbdd daemon unreachable at {}: {}", socket_, reply.error().message);
    }
    return CheckReply(*reply, op);
  }

  std::string socket_;
};

}  // namespace

std::unique_ptr<DaemonClient> MakeDaemonClient(std::string socket_path) {
  return std::make_unique<SocketDaemonClient>(std::move(socket_path));
}

json BuildMapRequest(const VolumeParams& p, bool read_only) {
  json j{{"op", "map"},
         {"spec", p.spec},
         {"client_name", p.client_name},
         {"mon_host", p.mon_host},
         {"key", p.key.reveal()},
         {"connections", p.connections},
         {"io_timeout", p.io_timeout_s},
         {"connect_timeout", p.connect_timeout_s},
         {"reattach_timeout", p.reattach_timeout_s},
         {"exclusive", p.exclusive},
         {"read_only", read_only},
         {"encryption", p.encryption}};
  if (!p.encryption.empty()) j["passphrase"] = p.passphrase.reveal();
  return j;
}

void WipeSecrets(json* request) {
  for (const char* field : {"key", "passphrase"}) {
    auto it = request->find(field);
    if (it != request->end() && it->is_string()) {
      auto& s = it->get_ref<std::string&>();
      explicit_bzero(s.data(), s.size());
      s.clear();
    }
  }
}

Result<DaemonStatus> ParseStatusReply(const json& reply) {
  DaemonStatus status;
  auto devices = reply.find("devices");
  if (devices != reply.end() && !devices->is_array()) return Err(EPROTO, "rbd-nbdd status: 'devices' is not a list");
  if (devices != reply.end()) {
    for (const auto& d : *devices) {
      if (!d.is_object()) continue;
      MappedDevice m;
      m.device = d.value("device", "");
      m.spec = d.value("spec", "");
      m.cookie = d.value("cookie", "");
      if (auto s = d.find("size"); s != d.end() && s->is_number_unsigned()) m.size = s->get<uint64_t>();
      m.read_only = d.value("read_only", false);
      if (!m.device.empty()) status.devices.push_back(std::move(m));
    }
  }
  if (auto nbd = reply.find("nbd_driver"); nbd != reply.end() && nbd->is_boolean()) {
    status.nbd_driver = nbd->get<bool>();
  }
  return status;
}

}  // namespace rbdnbd::csi
