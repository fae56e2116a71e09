// Publisher: NodePublishVolume and NodeUnpublishVolume (bind mounts).
//
// Contract
// * Publish needs a finished stage of the volume at the same staging path
//   (else kFailedPrecondition). Mount volumes: mkdir -p the target, bind the
//   staging mount on it. Block volumes: create the target file (and parents),
//   bind the /dev/nbdN node on it. Read-only (the readonly flag or a
//   *_READER_ONLY access mode) remounts the bind read-only.
// * Publishing again to the same target with the same mode/readonly is OK;
//   with different ones it is kAlreadyExists.
// * Unpublish unmounts the target and removes the directory or file it left;
//   a target already gone is OK.
// * Published targets are recorded in the volume's record.
// gRPC threads; serialised per volume by VolumeLocks (taken here).
#pragma once

#include "common/result.h"
#include "csi/node_context.h"

namespace rbdnbd::csi {

class Publisher {
 public:
  explicit Publisher(NodeContext ctx) : ctx_(std::move(ctx)) {}

  Result<void> Publish(const PublishRequest& request);
  Result<void> Unpublish(const std::string& volume_id, const std::string& target_path);

 private:
  NodeContext ctx_;
};

}  // namespace rbdnbd::csi
