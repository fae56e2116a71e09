#include "csi/daemon_client.h"

#include "api/codec.h"
#include "api/socket.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

constexpr std::chrono::seconds kStatusReplyTimeout{5};

class SocketDaemonClient final : public DaemonClient {
 public:
  explicit SocketDaemonClient(std::string socket) : socket_(std::move(socket)) {}

  // A status costs the daemon a look at its own tables (no network wait): one that
  // needs more than kStatusReplyTimeout is sick, and Probe (the livenessprobe
  // sidecar gives up after a few seconds) and NodeGetVolumeStats must not hold a
  // gRPC thread for the 120 s a map may take.
  Result<DaemonStatus> Status() override {
    return Call(api::EncodeRequest(api::StatusRequest{}), "status", ParseStatusReply, kStatusReplyTimeout);
  }

  Result<MapResult> Map(const VolumeParams& params, bool read_only) override {
    if (params.device_type == DeviceType::kAuto) {
      return Err(EINVAL, "rbd-nbdd map {}: deviceType auto must be resolved to nbd or ublk before mapping",
                 params.spec);
    }
    api::MapRequest request = BuildMapRequest(params, read_only);
    auto reply_timeout = api::MapReplyTimeout(request.connect_timeout_s);
    auto reply = Call(api::EncodeRequest(request), "map", api::DecodeMappedReply, reply_timeout);
    if (!reply) return Unexpected(reply.error());
    return MapResult{std::move(reply->device), std::move(reply->cookie), reply->already_mapped};
  }

  Result<void> Unmap(const std::string& target) override {
    auto reply = Call(api::EncodeRequest(api::UnmapRequest{target, false}), "unmap", api::DecodeOkReply);
    if (!reply) return Unexpected(reply.error());
    return {};
  }

  const std::string& socket_path() const override { return socket_; }

 private:
  // One call: an unreachable daemon is kUnavailable; its own failure keeps
  // its errno (ENOENT, EEXIST, EBUSY...) under the op's name.
  template <typename Decode>
  auto Call(std::string request, std::string_view op, Decode decode,
            std::chrono::seconds reply_timeout = api::kDefaultReplyTimeout) -> decltype(decode(std::string_view())) {
    auto line = api::CallDaemon(socket_, std::move(request), reply_timeout);
    if (!line && line.error().code == ETIMEDOUT) {
      return Err(ETIMEDOUT, "rbd-nbdd {}: the daemon at {} did not answer: {}", op, socket_, line.error().message);
    }
    if (!line) return Err(kUnavailable, "rbd-nbdd daemon unreachable at {}: {}", socket_, line.error().message);
    auto reply = decode(*line);
    if (!reply) return Err(reply.error().code, "rbd-nbdd {}: {}", op, reply.error().message);
    return reply;
  }

  std::string socket_;
};

}  // namespace

std::unique_ptr<DaemonClient> MakeDaemonClient(std::string socket_path) {
  return std::make_unique<SocketDaemonClient>(std::move(socket_path));
}

api::MapRequest BuildMapRequest(const VolumeParams& p, bool read_only) {
  api::MapRequest r;
  r.spec = p.spec;
  r.client_name = p.client_name;
  r.mon_host = p.mon_host;
  r.key = p.key;
  r.connections = p.connections;
  r.io_timeout_s = p.io_timeout_s;
  r.connect_timeout_s = p.connect_timeout_s;
  r.reattach_timeout_s = p.reattach_timeout_s;
  r.exclusive = p.exclusive;
  r.read_only = read_only;
  r.device_type = DeviceTypeName(p.device_type);
  if (p.device_type == DeviceType::kUblk) {  // the daemon refuses them for nbd
    r.queue_depth = p.ublk_queue_depth;
    r.max_io_bytes = p.ublk_max_io_bytes;
  }
  r.encryption = p.encryption;
  if (!p.encryption.empty()) r.passphrase = p.passphrase;
  return r;
}

Result<DaemonStatus> ParseStatusReply(std::string_view line) {
  auto reply = api::DecodeStatusReply(line);
  if (!reply) return Unexpected(reply.error());
  DaemonStatus status;
  for (api::DeviceEntry& d : reply->devices) {
    MappedDevice m;
    m.device = std::move(d.device);
    m.spec = std::move(d.spec);
    m.cookie = std::move(d.cookie);
    m.size = d.size;
    m.read_only = d.read_only;
    m.image_size = d.image_size;
    m.state = d.state;
    m.last_error = std::move(d.last_error);
    m.last_error_unix = d.last_error_unix;
    m.reattach_attempts = d.reattach_attempts;
    m.kernel_connected = d.kernel_connected;
    m.health = std::move(d.health);
    status.devices.push_back(std::move(m));
  }
  status.nbd_driver = reply->nbd_driver;
  return status;
}

}  // namespace rbdnbd::csi
