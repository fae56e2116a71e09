// DaemonClient: the plugin's side of the rbd-nbdd daemon's control API
// (JSON lines on a Unix socket, see gateway/control/control_protocol.h).
//
// Contract
// * Each call is one request and one reply on a new connection; blocking
//   (the daemon answers a map within its connect timeout: the volume's
//   connectTimeout, 30 s by default); safe to
//   call from several gRPC threads at once.
// * A daemon that cannot be reached is kUnavailable (EHOSTDOWN) with the
//   socket named; an error the daemon answers keeps the daemon's errno
//   (ENOENT for a missing image or an unmapped target, EEXIST for a spec that
//   is already mapped, EBUSY for a device in use) and its message.
// * Map() sends the cephx key and the LUKS passphrase in the request only;
//   the JSON copy is wiped after sending. Nothing secret is logged.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>  // the full header (slow to compile) only where json is used

#include "common/result.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

struct MappedDevice {
  std::string device;  // /dev/nbdN
  std::string spec;    // canonical pool/[ns/]image[@snap]
  std::string cookie;
  uint64_t size = 0;
  bool read_only = false;
};

struct DaemonStatus {
  std::vector<MappedDevice> devices;
  std::optional<bool> nbd_driver;  // absent on daemons that predate the field
};

struct MapResult {
  std::string device;
  std::string cookie;
};

class DaemonClient {
 public:
  virtual ~DaemonClient() = default;
  virtual Result<DaemonStatus> Status() = 0;
  virtual Result<MapResult> Map(const VolumeParams& params, bool read_only) = 0;
  // `target`: /dev/nbdN or a spec. Never forced: a device in use stays.
  virtual Result<void> Unmap(const std::string& target) = 0;
  virtual const std::string& socket_path() const = 0;
};

std::unique_ptr<DaemonClient> MakeDaemonClient(std::string socket_path);

// The map request as sent (holds the key: wipe it with WipeSecrets()).
nlohmann::json BuildMapRequest(const VolumeParams& params, bool read_only);
void WipeSecrets(nlohmann::json* request);
Result<DaemonStatus> ParseStatusReply(const nlohmann::json& reply);

}  // namespace rbdnbd::csi
