// VolumeStats: NodeGetVolumeStats.
//
// Contract: an unknown volume_id (no record) or a volume_path that does not
// exist is kNotFound. Mount volumes: statvfs(volume_path) gives bytes and
// inodes. Block volumes: the device size is the byte total (no usage is
// knowable). Then the volume's condition, from the daemon's status
// (volume_condition.h; the daemon being unreachable makes the volume abnormal,
// not the call fail). Reads only, so it takes no volume lock; gRPC threads.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "csi/node_context.h"
#include "csi/volume_condition.h"

namespace rbdnbd::csi {

struct VolumeUsageStats {
  bool has_inodes = false;
  int64_t bytes_total = 0, bytes_available = 0, bytes_used = 0;
  int64_t inodes_total = 0, inodes_available = 0, inodes_used = 0;
  VolumeCondition condition;
};

class VolumeStats {
 public:
  explicit VolumeStats(NodeContext ctx) : ctx_(std::move(ctx)) {}
  Result<VolumeUsageStats> Get(const std::string& volume_id, const std::string& volume_path);

 private:
  VolumeCondition Condition(const VolumeRecord& record);
  NodeContext ctx_;
};

}  // namespace rbdnbd::csi
