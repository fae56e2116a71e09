#include "fake_daemon.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "api/socket.h"

namespace rbdnbd::csi::testing {

using nlohmann::json;

FakeDaemon::FakeDaemon(std::string socket_path) : path_(std::move(socket_path)) {
  ::unlink(path_.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 16) != 0) {
    std::abort();
  }
  thread_ = std::thread([this] { Serve(); });
}

FakeDaemon::~FakeDaemon() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  ::unlink(path_.c_str());
}

std::vector<json> FakeDaemon::requests() {
  std::lock_guard lock(mu_);
  return requests_;
}

void FakeDaemon::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto line = api::ReadLine(fd);
    json reply;
    if (!line) {
      reply = json{{"ok", false}, {"errno", EINVAL}, {"error", "no request"}};
    } else {
      json request = json::parse(*line, nullptr, false);
      reply = Handle(request);
    }
    (void)api::WriteAll(fd, reply.dump() + "\n");
    ::close(fd);
  }
}

void FakeDaemon::SetDeviceFields(const std::string& device, json fields) {
  std::lock_guard lock(mu_);
  device_fields_[device] = std::move(fields);
}

json FakeDaemon::Handle(const json& request) {
  std::lock_guard lock(mu_);
  requests_.push_back(request);
  std::string op = request.value("op", "");
  if (op == "status" || op == "list") {
    json devices = devices_;
    for (json& d : devices) {
      auto extra = device_fields_.find(d["device"].get<std::string>());
      if (extra != device_fields_.end()) d.update(extra->second);
    }
    json reply{{"ok", true}, {"devices", devices}, {"pid", 1}};
    if (nbd_driver >= 0) reply["nbd_driver"] = nbd_driver == 1;
    return reply;
  }
  if (op == "map") {
    if (fail_map != 0) return json{{"ok", false}, {"errno", fail_map.load()}, {"error", "fake map failure"}};
    std::string spec = request.value("spec", "");
    for (const auto& d : devices_) {
      if (d["spec"] == spec) return json{{"ok", false}, {"errno", EEXIST}, {"error", spec + " is already mapped"}};
    }
    std::string prefix = request.value("device_type", "nbd") == "ublk" ? "/dev/ublkb" : "/dev/nbd";
    std::string device = prefix + std::to_string(next_index_++);
    std::string cookie = "rbd-nbdd-fake-" + std::to_string(next_index_);
    devices_.push_back(json{{"device", device}, {"spec", spec}, {"cookie", cookie}, {"size", 1 << 30},
                            {"read_only", request.value("read_only", false)}});
    return json{{"ok", true}, {"device", device}, {"cookie", cookie}};
  }
  if (op == "unmap") {
    std::string target = request.value("target", "");
    for (auto it = devices_.begin(); it != devices_.end(); ++it) {
      if ((*it)["device"] == target || (*it)["spec"] == target) {
        devices_.erase(it);
        return json{{"ok", true}};
      }
    }
    return json{{"ok", false}, {"errno", ENOENT}, {"error", target + " is not mapped by this daemon"}};
  }
  return json{{"ok", false}, {"errno", EINVAL}, {"error", "unknown op"}};
}

}  // namespace rbdnbd::csi::testing
