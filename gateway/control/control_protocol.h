// The daemon's control API: one JSON object per line over a Unix socket
// (root-only, mode 0600). A client sends one request and reads one reply:
//
//   -> {"op":"map","spec":"rbd/img","connections":2,"keyring":"/etc/ceph/k",...}
//   <- {"ok":true,"device":"/dev/nbd0","cookie":"rbd-nbdd-..."}
//   <- {"ok":false,"errno":2,"error":"image 'rbd/img' does not exist"}
//
// Ops: map, unmap {target, force}, attach {device, cookie, spec, ...},
// detach {target}, list, status. A map request may carry "key" (a cephx key
// in memory, e.g. from a CSI secret) and "passphrase" (a LUKS passphrase in
// memory); the daemon never logs them or writes them to disk (it parks them
// in the kernel keyring for its successor). list/status replies carry
// "nbd_driver" (the nbd module is loaded) and "netlink" (devices survive a
// daemon restart).
//
// Contract: pure conversions, any thread; parse errors are EINVAL with the
// field named. The wire helpers (ReadLine/WriteAll) are blocking and bounded
// to 1 MiB per message.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>  // the full header (slow to compile) only where json is used

#include "common/result.h"
#include "control/device_manager.h"

namespace rbdnbd {

inline constexpr const char* kDefaultControlSocket = "/run/rbd-nbdd/control.sock";
inline constexpr const char* kDefaultStateDir = "/var/lib/rbd-nbdd";

nlohmann::json MapRequestToJson(const MapRequest& r);  // includes "key" if any
Result<MapRequest> MapRequestFromJson(const nlohmann::json& j);
nlohmann::json MappedInfoToJson(const MappedInfo& m);
Result<DeviceRecord> RecordFromJson(const nlohmann::json& j);  // for attach
nlohmann::json ErrorReply(const Error& e);

Result<std::string> ReadLine(int fd);
Result<void> WriteAll(int fd, const std::string& data);
// Client side: connect, send `request`, return the parsed reply.
Result<nlohmann::json> CallDaemon(const std::string& socket_path, const nlohmann::json& request);

}  // namespace rbdnbd
