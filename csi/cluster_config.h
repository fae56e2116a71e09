// ClusterConfig: ceph-csi's cluster list, a JSON array (usually a ConfigMap):
//
//   [{"clusterID": "dev", "monitors": ["10.0.0.1:6789", "10.0.0.2:6789"],
//     "rbd": {"radosNamespace": "ns1"}}]
//
// Contract: ParseClusterConfig() is pure; it rejects anything but an array of
// objects each with a non-empty string clusterID and a string array monitors
// (EINVAL, naming the entry). Unknown keys are ignored (ceph-csi has many).
// LoadClusterConfig() reads the file on every call, so a ConfigMap update
// needs no restart; a missing file is an empty list. Any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rbdnbd::csi {

struct ClusterEntry {
  std::string cluster_id;
  std::vector<std::string> monitors;
  std::string rados_namespace;  // rbd.radosNamespace: the default namespace
};

using ClusterConfig = std::vector<ClusterEntry>;

Result<ClusterConfig> ParseClusterConfig(std::string_view text);
Result<ClusterConfig> LoadClusterConfig(const std::string& path);
const ClusterEntry* FindCluster(const ClusterConfig& config, std::string_view cluster_id);

}  // namespace rbdnbd::csi
