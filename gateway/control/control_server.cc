#include "control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "api/codec.h"
#include "api/socket.h"
#include "control/control_protocol.h"
#include "metrics/errno_label.h"

namespace rbdnbd {

namespace {

// An error reply; the error goes to *err (for the call counter and the log).
std::string Failed(const Error& e, Error* err) {
  *err = e;
  return api::EncodeReply(e);
}

std::string Mapped(const Result<MappedInfo>& info, Error* err) {
  if (!info) return Failed(info.error(), err);
  return api::EncodeReply(api::MappedReply{info->device, info->record.cookie, info->already_mapped});
}

std::string Done(const Result<void>& r, Error* err) {
  return r ? api::EncodeReply(api::OkReply{}) : Failed(r.error(), err);
}

std::string Status(DeviceManager& manager) {
  api::StatusReply reply;
  for (const MappedInfo& m : manager.List()) reply.devices.push_back(ToWire(m));
  reply.pid = ::getpid();
  struct stat st;
  reply.nbd_driver = ::stat("/sys/module/nbd", &st) == 0;
  reply.netlink = manager.uses_netlink();
  return api::EncodeReply(reply);
}

// The reply to one decoded request; *err: code 0, or the error of an error reply.
std::string Dispatch(api::Request request, DeviceManager& manager, Error* err) {
  return std::visit(
      [&manager, err](auto&& r) -> std::string {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, api::MapRequest>) {
          auto map = FromWire(std::move(r));
          if (!map) return Failed(map.error(), err);
          return Mapped(manager.Map(std::move(map).value()), err);
        } else if constexpr (std::is_same_v<T, api::AttachRequest>) {
          auto record = RecordForAttach(r);
          if (!record) return Failed(record.error(), err);
          return Mapped(manager.Attach(*record), err);
        } else if constexpr (std::is_same_v<T, api::UnmapRequest>) {
          return Done(manager.Unmap(r.target, r.force), err);
        } else if constexpr (std::is_same_v<T, api::DetachRequest>) {
          return Done(manager.Detach(r.target), err);
        } else {
          static_assert(std::is_same_v<T, api::ListRequest> || std::is_same_v<T, api::StatusRequest>);
          return Status(manager);
        }
      },
      std::move(request));
}

}  // namespace

void ServeClient(UniqueFd fd, DeviceManager& manager, ControlCalls* calls) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != 0 && cred.uid != ::geteuid())) {
    (void)api::WriteAll(fd.get(), api::EncodeReply(Error{EPERM, "only root may use the rbd-nbdd control socket"}) + "\n");
    return;
  }
  auto line = api::ReadLine(fd.get());
  if (!line) {
    // A client still there learns why (a line over the limit); one that left gets nothing.
    if (line.error().code == EMSGSIZE) (void)api::WriteAll(fd.get(), api::EncodeReply(line.error()) + "\n");
    return;
  }
  auto request = api::DecodeRequest(*line);
  explicit_bzero(line->data(), line->size());
  const char* op = request ? api::OpName(*request) : "bad request";
  auto t0 = std::chrono::steady_clock::now();
  Error err{0, ""};
  std::string reply = request ? Dispatch(std::move(request).value(), manager, &err) : Failed(request.error(), &err);
  if (calls != nullptr) calls->Record(request ? op : "invalid", err.code);
  // How long the daemon took (not the client's start-up): the answer to "does
  // one slow map hold up the others?", and a first look at a slow call.
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (err.code != 0) {
    // The admin reading the daemon's log sees why a call was refused, not only
    // the client that made it (error messages never carry a key).
    spdlog::warn("control: {} refused in {:.1f} ms: {} ({})", op, ms, err.message, metrics::ErrnoLabel(err.code));
  } else {
    spdlog::debug("control: {} answered in {:.1f} ms", op, ms);
  }
  (void)api::WriteAll(fd.get(), reply + "\n");
}

}  // namespace rbdnbd
