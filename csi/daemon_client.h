// DaemonClient: the plugin's side of the rbd-nbdd daemon's control API
// (gateway/api/: its messages, codec and socket helpers; no JSON here).
//
// Contract
// * Each call is one request and one reply on a new connection; blocking
//   (a map waits up to the volume's connectTimeout, 30 s by default, plus the
//   device set-up: api::MapReplyTimeout; a status, 5 s); safe to call from
//   several gRPC threads at once.
// * A daemon that cannot be reached is kUnavailable with the socket named; a
//   daemon that does not answer in time is ETIMEDOUT. An error the daemon
//   answers keeps the daemon's errno (ENOENT for a missing image or an
//   unmapped target, EEXIST for a spec mapped with other options, EBUSY for a
//   device in use) and its message; csi_error.h's WithCsiCodes() turns those
//   into plugin codes, once, around this client.
// * Map() of a spec that the daemon has mapped with the same options returns
//   that device with already_mapped set (the daemon's map is idempotent).
// * Map() sends the cephx key and the LUKS passphrase in the request only;
//   the encoded copy is wiped after sending (api::CallDaemon) and the wire
//   request's Secrets on destruction. Nothing secret is logged.
// * The spec is VolumeParams' canonical text, parsed once in
//   volume_params.cc and passed through as it is.
// * Map() maps params.device_type, nbd or ublk (the request's device_type);
//   auto must be resolved first (ChooseDeviceType, device_type.h): it is
//   EINVAL, never a silent nbd.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/messages.h"
#include "common/result.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

struct MappedDevice {
  std::string device;  // /dev/nbdN or /dev/ublkbN
  std::string spec;    // canonical pool/[ns/]image[@snap]
  std::string cookie;
  uint64_t size = 0;
  bool read_only = false;
  uint64_t image_size = 0;  // the image's size as the daemon sees it (0: an older daemon)
  // How the device is doing (volume_condition.h reads these). The first five
  // are the device entry's own (defaults on daemons that predate them);
  // `health` is the daemon's health object, unset on daemons that predate it.
  api::DeviceState state = api::DeviceState::kMapped;
  std::string last_error{};  // the last failed reattach try ({}: positional initialisers may stop before it)
  uint64_t last_error_unix = 0;
  uint32_t reattach_attempts = 0;
  bool kernel_connected = true;
  std::optional<api::DeviceHealth> health{};
};

struct DaemonStatus {
  std::vector<MappedDevice> devices;
  std::optional<bool> nbd_driver;  // absent on daemons that predate the field
};

struct MapResult {
  std::string device;
  std::string cookie;
  bool already_mapped = false;  // the daemon had it mapped with the same options
};

class DaemonClient {
 public:
  virtual ~DaemonClient() = default;
  virtual Result<DaemonStatus> Status() = 0;
  virtual Result<MapResult> Map(const VolumeParams& params, bool read_only) = 0;
  // `target`: /dev/nbdN, /dev/ublkbN or a spec. Never forced: a device in use stays.
  virtual Result<void> Unmap(const std::string& target) = 0;
  virtual const std::string& socket_path() const = 0;
};

std::unique_ptr<DaemonClient> MakeDaemonClient(std::string socket_path);

// The map request the plugin sends for a volume (holds the key and the
// passphrase, as Secrets).
api::MapRequest BuildMapRequest(const VolumeParams& params, bool read_only);
// A status reply line as the plugin sees it: the daemon's error (errno and
// message) for an error reply, EPROTO for a malformed one.
Result<DaemonStatus> ParseStatusReply(std::string_view line);

}  // namespace rbdnbd::csi
