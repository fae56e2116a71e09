#include "csi/cluster_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace rbdnbd::csi {

using nlohmann::json;

Result<ClusterConfig> ParseClusterConfig(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Err(EINVAL, "cluster config is not valid JSON");
  if (!j.is_array()) return Err(EINVAL, "cluster config must be a JSON array of clusters");
  ClusterConfig config;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& c = j[i];
    if (!c.is_object()) return Err(EINVAL, "cluster config entry {} is not an object", i);
    auto id = c.find("clusterID");
    if (id == c.end() || !id->is_string() || id->get<std::string>().empty()) {
      return Err(EINVAL, "cluster config entry {} has no clusterID", i);
    }
    ClusterEntry e;
    e.cluster_id = id->get<std::string>();
    auto mons = c.find("monitors");
    if (mons == c.end() || !mons->is_array()) {
      return Err(EINVAL, "cluster '{}' has no monitors array", e.cluster_id);
    }
    for (const auto& m : *mons) {
      if (!m.is_string() || m.get<std::string>().empty()) {
        return Err(EINVAL, "cluster '{}': every monitor must be a non-empty string", e.cluster_id);
      }
      e.monitors.push_back(m.get<std::string>());
    }
    if (auto rbd = c.find("rbd"); rbd != c.end() && rbd->is_object()) {
      if (auto ns = rbd->find("radosNamespace"); ns != rbd->end() && ns->is_string()) {
        e.rados_namespace = ns->get<std::string>();
      }
    }
    config.push_back(std::move(e));
  }
  return config;
}

Result<ClusterConfig> LoadClusterConfig(const std::string& path) {
  if (path.empty()) return ClusterConfig{};
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return ClusterConfig{};
    return Err(errno ? errno : EIO, "cannot read cluster config {}: {}", path, strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseClusterConfig(ss.str());
  if (!config) return WithContext(config.error(), path);
  return config;
}

const ClusterEntry* FindCluster(const ClusterConfig& config, std::string_view cluster_id) {
  for (const auto& e : config) {
    if (e.cluster_id == cluster_id) return &e;
  }
  return nullptr;
}

}  // namespace rbdnbd::csi
