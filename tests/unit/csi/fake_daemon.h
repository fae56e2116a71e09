// FakeDaemon: a tiny stand-in for `rbd-nbdd daemon`'s control socket (one
// JSON object per line, one request and one reply per connection), so the
// real DaemonClient and the real gRPC server can be tested end to end
// without a kernel or a cluster. It answers status/list, map and unmap from
// an in-memory device list and records every request it received.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace rbdnbd::csi::testing {

class FakeDaemon {
 public:
  explicit FakeDaemon(std::string socket_path);
  ~FakeDaemon();

  const std::string& socket_path() const { return path_; }
  std::vector<nlohmann::json> requests();  // copies, in arrival order

  // Knobs (set before the request that should see them).
  std::atomic<int> fail_map{0};                  // errno to answer map with
  std::atomic<int> nbd_driver{1};                // 1 true, 0 false, -1 field absent
  // Fields merged into a mapped device's entry in status/list replies (state,
  // health, ...), as a newer daemon would send them.
  void SetDeviceFields(const std::string& device, nlohmann::json fields);

 private:
  void Serve();
  nlohmann::json Handle(const nlohmann::json& request);

  std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<nlohmann::json> requests_;
  std::vector<nlohmann::json> devices_;
  std::map<std::string, nlohmann::json> device_fields_;
  int next_index_ = 0;
  std::thread thread_;
};

}  // namespace rbdnbd::csi::testing
