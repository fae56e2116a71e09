// The control API's codec: one encoder and one decoder per message of
// messages.h, the only code that reads or writes the API's JSON.
//
// Contract
// * Pure functions, any thread. An encoder returns one JSON object as text,
//   without the newline (socket.h adds it); it cannot fail.
// * DecodeRequest() is the daemon's: it validates every field and names the
//   bad one, EINVAL ("map: 'connections' must be 1..16, not 0"). A map is
//   refused for: no spec; connections outside 1..16; connect_timeout outside
//   1..3600; a device index over 2^32-1; an encryption other than
//   luks1|luks2; queue_depth over 4096 or max_io_bytes not a multiple of 4096
//   in 4 KiB..32 MiB (0: the default), or either with a device_type other
//   than ublk; both passphrase and passphrase_file; an encryption without
//   either; a passphrase without an encryption; a client name not TYPE.ID
//   (or with a space, tab, newline or '/'). An attach is refused also without
//   device and cookie, or with an in-memory key or passphrase. An unknown op,
//   a line that is not a JSON object, or one without a string "op" is EINVAL.
// * The reply decoders are the clients': an error reply decodes to the
//   daemon's own Error (its errno and message, unchanged); a malformed reply
//   (not JSON, a field of the wrong type, a missing required field) is
//   EPROTO with the field named, since the fault is the daemon's, not the
//   caller's input.
// * Secrets: EncodeRequest(MapRequest) returns text holding the key and the
//   passphrase; the caller wipes it (CallDaemon() does). The decoder wipes
//   its own JSON copy; the caller wipes the line it read. Error messages
//   name a secret field, never its value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/messages.h"
#include "common/result.h"

namespace rbdnbd::api {

// Requests: encoded by the CLI and the CSI plugin, decoded by the daemon.
std::string EncodeRequest(const MapRequest& request);
std::string EncodeRequest(const AttachRequest& request);  // never carries key or passphrase
std::string EncodeRequest(const UnmapRequest& request);
std::string EncodeRequest(const DetachRequest& request);
std::string EncodeRequest(const ListRequest& request);
std::string EncodeRequest(const StatusRequest& request);
Result<Request> DecodeRequest(std::string_view line);

// Replies: encoded by the daemon, decoded by the clients. An error reply
// decodes, from any of the Decode*Reply(), to its Error.
std::string EncodeReply(const MappedReply& reply);
std::string EncodeReply(const OkReply& reply);
std::string EncodeReply(const StatusReply& reply);
std::string EncodeReply(const Error& error);
Result<MappedReply> DecodeMappedReply(std::string_view line);
Result<OkReply> DecodeOkReply(std::string_view line);
Result<StatusReply> DecodeStatusReply(std::string_view line);

// For people: `rbd-nbdd list-mapped --format json` and `status --format json`,
// indented by `indent` spaces.
std::string FormatDevices(const std::vector<DeviceEntry>& devices, int indent);
std::string FormatStatus(const StatusReply& reply, int indent);

}  // namespace rbdnbd::api
