// Expander: NodeExpandVolume.
//
// The daemon already follows `rbd resize` (it sends RECONFIGURE with the new
// size), so the node's part is: wait until the kernel shows the device at
// least `required_bytes` big (polled, bounded by NodeContext::resize_wait),
// then grow the filesystem of a mount volume (resize2fs DEV, xfs_growfs on
// the staging mount). Block volumes need nothing more.
//
// Contract: unknown volume or missing volume_path is kNotFound; a volume
// whose stage did not finish is kFailedPrecondition; a device that does not
// reach the size in time is ETIMEDOUT, unless the daemon says the image itself
// is smaller than `required_bytes` (for NodeContext::image_grace, 3 s: a resize
// notification may be on its way): that is OUT_OF_RANGE at once, naming both sizes. A ublk
// device smaller than asked on a kernel without UBLK_F_UPDATE_SIZE is
// FAILED_PRECONDITION at once, naming the missing feature (device_type.h):
// it could never grow, and the old size must not pass for success. Returns the
// device size in bytes.
// gRPC threads; serialised per volume by VolumeLocks (taken here).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "csi/node_context.h"

namespace rbdnbd::csi {

class Expander {
 public:
  explicit Expander(NodeContext ctx) : ctx_(std::move(ctx)) {}
  Result<uint64_t> Expand(const std::string& volume_id, const std::string& volume_path, uint64_t required_bytes);

 private:
  // The image's size as the daemon sees it; 0 when it is not known.
  uint64_t ImageSize(const std::string& device);

  NodeContext ctx_;
};

}  // namespace rbdnbd::csi
