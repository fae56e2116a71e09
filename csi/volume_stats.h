// VolumeStats: NodeGetVolumeStats.
//
// Contract: an unknown volume_id (no record) or a volume_path that does not
// exist is kNotFound. Mount volumes: statvfs(volume_path) gives bytes and
// inodes. Block volumes: the device size is the byte total (no usage is
// knowable). Reads only, so it takes no volume lock; gRPC threads.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "csi/node_context.h"

namespace rbdnbd::csi {

struct VolumeUsageStats {
  bool has_inodes = false;
  int64_t bytes_total = 0, bytes_available = 0, bytes_used = 0;
  int64_t inodes_total = 0, inodes_available = 0, inodes_used = 0;
};

class VolumeStats {
 public:
  explicit VolumeStats(NodeContext ctx) : ctx_(std::move(ctx)) {}
  Result<VolumeUsageStats> Get(const std::string& volume_id, const std::string& volume_path);

 private:
  NodeContext ctx_;
};

}  // namespace rbdnbd::csi
