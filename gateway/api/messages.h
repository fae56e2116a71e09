// The rbd-nbdd daemon's control API: its messages, one struct per message.
//
// The wire: one JSON object per line on a Unix socket (root-only, mode 0600,
// SO_PEERCRED checked), one request and one reply per connection. One line
// per op, request then reply:
//
//   map     -> {"op":"map","spec":"kube/pvc-1","connections":4,"client_name":"client.kube",
//               "mon_host":"10.0.0.1:3300","key":"AQB...","connect_timeout":30,...}
//           <- {"ok":true,"device":"/dev/nbd0","cookie":"rbd-nbdd-6f1c..."}
//           -> {"op":"map","spec":"kube/pvc-2","device_type":"ublk","queue_depth":64,
//               "max_io_bytes":262144,...}            <- {"ok":true,"device":"/dev/ublkb0",...}
//   unmap   -> {"op":"unmap","target":"/dev/nbd0","force":false}      <- {"ok":true}
//   attach  -> {"op":"attach","spec":"kube/pvc-1","device":0,"cookie":"rbd-nbdd-6f1c...",
//               "keyring":"/etc/ceph/kube.keyring",...}
//           <- {"ok":true,"device":"/dev/nbd0","cookie":"rbd-nbdd-6f1c..."}
//   detach  -> {"op":"detach","target":"kube/pvc-1"}                 <- {"ok":true}
//   list    -> {"op":"list"}
//           <- {"ok":true,"devices":[{"device":"/dev/nbd0","type":"nbd","index":0,"spec":"kube/pvc-1",
//               "state":"mapped","last_error":"","reattach_attempts":0,...,
//               ("queue_depth":64,"max_io_bytes":262144 for a ublk device),
//               "health":{"state":"mapped","last_error":"","last_error_time":0,
//                         "seconds_since_last_io":3,"inflight":0,"recent_errors":0,
//                         "stalled":false}}],"pid":812,"nbd_driver":true,"netlink":true}
//   status  -> {"op":"status"}                                       <- as list
//   any op  <- {"ok":false,"errno":2,"error":"image 'kube/pvc-9' does not exist"}
//
// Contract
// * Plain value types; no shared state; any thread.
// * Secrets: MapRequest's `key` (a cephx key) and `passphrase` (LUKS) are
//   Secrets, on the wire only inside a map request; they reach no log, and
//   the daemon never writes them to disk (it parks them in the kernel keyring
//   for its successor). An attach carries neither: it names files instead.
// * The spec travels as text: the plugin sends the canonical spec it parsed
//   once (csi/volume_params.cc), the daemon parses it once where it maps
//   (DeviceManager), so neither edge parses it twice.
// * Defaults are the daemon's when a field is absent or null, so a request
//   from an older client decodes as it did before; unknown fields are ignored,
//   so an older daemon accepts a newer client's request. Replies from older
//   daemons lack the newer fields (state, last_error, ..., nbd_driver, health):
//   those decode to their defaults (state "mapped", nbd_driver and health unset).
// * The codec is codec.h, the socket helpers are socket.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "rbd/secret.h"

namespace rbdnbd::api {

// The ublk driver's limits on a map's queue shape (include/uapi/linux/ublk_cmd.h:
// UBLK_MAX_QUEUE_DEPTH, and 1 << UBLK_IO_BUF_BITS bytes per request); the
// daemon checks that its own (ublk/ublk_params.h) agree.
inline constexpr uint32_t kMaxUblkQueueDepth = 4096;
inline constexpr uint32_t kMaxUblkIoBytes = 32u << 20;

// Whether `bytes` can be a ublk device's largest request: whole 4 KiB pages
// from 4 KiB to kMaxUblkIoBytes. The one rule of the CLI, the CSI plugin and
// this codec (each words its own error).
constexpr bool IsUblkMaxIoBytes(uint64_t bytes) {
  return bytes >= 4096 && bytes <= kMaxUblkIoBytes && bytes % 4096 == 0;
}

// map: map `spec` at a /dev/nbdX. Also the body of an attach.
struct MapRequest {
  std::string spec;                       // pool/[ns/]image[@snap], required
  // "nbd" (/dev/nbdN, the default) or "ublk" (/dev/ublkbN, Linux 6.0+ ublk_drv):
  // the kernel frontend, as `rbd device map -t` names it. An absent field is nbd.
  std::string device_type = "nbd";
  std::optional<uint32_t> device;         // the device index (nbdN or ublkbN); absent: the kernel picks one
  // ublk only (refused with nbd): requests per hardware queue, 1..4096
  // (UBLK_MAX_QUEUE_DEPTH), and the largest request in bytes (also each
  // request slot's buffer), a multiple of 4096 from 4 KiB to 32 MiB. 0 or
  // absent: the daemon's defaults, 128 and 512 KiB.
  uint32_t queue_depth = 0;
  uint32_t max_io_bytes = 0;
  uint32_t connections = 1;               // 1..16
  uint64_t io_timeout_s = 0;              // 0: requests never time out
  uint64_t reattach_timeout_s = 0;        // the kernel's DEAD_CONN_TIMEOUT
  std::string cookie;                     // backend identifier; empty: the daemon makes one
  bool read_only = false;
  bool exclusive = false;
  bool notrim = false;
  std::string encryption;                 // "", "luks1" or "luks2" ("none" decodes as "")
  std::string passphrase_file;            // a path the daemon reads
  Secret passphrase;                      // or the passphrase itself (map only)
  std::string client_name = "client.admin";  // TYPE.ID
  std::string conf;                       // ceph.conf path
  std::string mon_host;
  std::string keyring;                    // keyring path
  std::string keyfile;                    // key file path, read by the daemon
  uint32_t connect_timeout_s = 30;        // 1..3600
  Secret key;                             // or the cephx key itself (map only)
};

// attach: serve again a device the kernel still holds. `map.device` and
// `map.cookie` are required; `map.key` and `map.passphrase` must be empty (an
// attach comes from the state file, which names files, never secrets).
struct AttachRequest {
  MapRequest map;
};

// unmap: disconnect and forget a device; refused while it is in use unless `force`.
struct UnmapRequest {
  std::string target;  // /dev/nbdN, /dev/ublkbN, N (an nbd index), or the image spec
  bool force = false;
};

// detach: stop serving a device but leave it in the kernel (for attach or the next daemon).
struct DetachRequest {
  std::string target;  // as UnmapRequest's
};

struct ListRequest {};
struct StatusRequest {};  // the same reply as list; the CLI prints more of it

using Request = std::variant<MapRequest, UnmapRequest, AttachRequest, DetachRequest, ListRequest, StatusRequest>;

// The reply to map and attach.
struct MappedReply {
  std::string device;  // /dev/nbdN
  std::string cookie;
  // The spec was mapped already, with the same options: this is that device
  // (map is idempotent). The caller did not create it, so must not undo it.
  bool already_mapped = false;
};

// The reply to unmap and detach: {"ok":true}.
struct OkReply {};

enum class DeviceState {
  kMapped,       // served
  kReattaching,  // the kernel holds the device and its I/O; the daemon keeps trying
  kUnmapping,    // an unmap (or detach) is in progress
};

// How a device is doing, for people (status, list-mapped) and for the CSI
// plugin's VolumeCondition. The wire names are fixed (the plugin reads them):
//   "state"                  as DeviceEntry's state
//   "last_error"             the last failure the daemon saw on this device (a failed
//                            reattach try, or a request answered with an error); kept
//                            after recovery, so it is history, not the current state
//   "last_error_time"        when, Unix seconds; 0: none
//   "seconds_since_last_io"  seconds since the last completed request; -1: none yet
//   "inflight"               requests at the backend now
//   "recent_errors"          requests answered with an error in the last 60 s
//   "stalled"                reattaching, or requests in flight and none completed
//                            for 30 s or more
struct DeviceHealth {
  DeviceState state = DeviceState::kMapped;
  std::string last_error;
  uint64_t last_error_time = 0;
  int64_t seconds_since_last_io = -1;
  uint64_t inflight = 0;
  uint64_t recent_errors = 0;
  bool stalled = false;
};

// One device of a list/status reply.
struct DeviceEntry {
  std::string device;  // /dev/nbdN or /dev/ublkbN, required
  std::string type = "nbd";  // "nbd" or "ublk"; absent (an older daemon): "nbd"
  uint32_t index = 0;        // N of /dev/nbdN or /dev/ublkbN
  std::string spec;    // required
  std::string cookie;
  uint32_t connections = 0;
  uint64_t live_connections = 0;
  // ublk: requests per queue and the largest request in bytes, as mapped
  // ("queue_depth", "max_io_bytes"); 0 (absent): an nbd device or an older daemon.
  uint32_t queue_depth = 0;
  uint32_t max_io_bytes = 0;
  uint64_t size = 0;        // bytes, the kernel device
  uint64_t image_size = 0;  // bytes, the image now (it leads `size` during a resize); 0: unknown
  bool read_only = false;
  bool exclusive = false;
  std::string encryption;
  uint64_t io_timeout_s = 0;
  uint64_t reattach_timeout_s = 0;
  std::string client_name;
  bool kernel_connected = true;
  DeviceState state = DeviceState::kMapped;
  std::string last_error;        // why the last reattach try failed; may be empty
  uint64_t last_error_unix = 0;  // when, seconds since the epoch; 0: never
  uint32_t reattach_attempts = 0;
  std::optional<DeviceHealth> health;  // unset: an older daemon
};

// The reply to list and status.
struct StatusReply {
  std::vector<DeviceEntry> devices;
  int32_t pid = 0;
  std::optional<bool> nbd_driver;  // the nbd module is loaded; unset: an older daemon
  std::optional<bool> netlink;     // devices survive a daemon restart; unset: an older daemon
};

// The error reply of any op is an Error: {"ok":false,"errno":code,"error":message}.

const char* DeviceStateName(DeviceState state);  // "mapped", "reattaching", "unmapping"
const char* OpName(const Request& request);      // "map", "unmap", ... as on the wire

}  // namespace rbdnbd::api
