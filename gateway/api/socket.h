// The control API's transport: one line each way on the daemon's Unix socket.
//
// Contract
// * Blocking; any thread; no shared state. ReadLine() waits at most `timeout`
//   (kDefaultReplyTimeout unless the caller knows better) for each byte and refuses a line over kMaxMessageBytes (EMSGSIZE), so a stuck
//   or hostile peer cannot hold a thread or memory for ever. WriteAll() never
//   raises SIGPIPE (MSG_NOSIGNAL).
// * CallDaemon() is the client side: connect, send `request` and a newline,
//   read one reply line within `reply_timeout`. A map may take the daemon its
//   connect timeout and then the device set-up: MapReplyTimeout() says how long. It wipes its copies of the request (which may hold a
//   key) once sent. An unreachable daemon is the connect's errno with the
//   socket named and a hint to start `rbd-nbdd daemon`. It returns the reply
//   text undecoded: codec.h decodes it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd::api {

inline constexpr const char* kDefaultControlSocket = "/run/rbd-nbdd/control.sock";
inline constexpr const char* kDefaultStateDir = "/var/lib/rbd-nbdd";
inline constexpr size_t kMaxMessageBytes = 1 << 20;
// Enough for any call but a map: an unmap drains for up to 60 s.
inline constexpr std::chrono::seconds kDefaultReplyTimeout{120};
// A map: the cluster connect (connect_timeout_s), then CONNECT and the wait for
// the kernel's device.
inline std::chrono::seconds MapReplyTimeout(uint32_t connect_timeout_s) {
  return std::chrono::seconds(connect_timeout_s) + kDefaultReplyTimeout;
}

// One line without its newline; a peer that closes after a last unterminated
// line gives that line.
Result<std::string> ReadLine(int fd, std::chrono::seconds timeout = kDefaultReplyTimeout);
Result<void> WriteAll(int fd, std::string_view data);
Result<std::string> CallDaemon(const std::string& socket_path, std::string request,
                               std::chrono::seconds reply_timeout = kDefaultReplyTimeout);

}  // namespace rbdnbd::api
