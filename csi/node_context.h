// NodeContext: what the node operations (stager, publisher, expander, volume
// stats) share, and the plain-C++ form of the requests they take.
//
// The gRPC layer (node_service.cc) validates the protobuf requests and turns
// them into these structs; nothing below it sees protobuf. Every pointer is
// owned by PluginServer and outlives the operations.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "csi/block_device.h"
#include "csi/daemon_client.h"
#include "csi/device_type.h"
#include "csi/fs_tools.h"
#include "csi/mounter.h"
#include "csi/volume_locks.h"
#include "csi/volume_params.h"
#include "csi/volume_record.h"
#include "csi/volume_store.h"

namespace rbdnbd::csi {

struct NodeContext {
  VolumeStore* store = nullptr;
  VolumeLocks* locks = nullptr;
  Mounter* mounter = nullptr;
  FsTools* fs = nullptr;
  BlockDevices* devices = nullptr;
  DaemonClient* daemon = nullptr;
  UblkProbe* ublk = nullptr;                         // deviceType ublk|auto, and expand on ublk; null: no ublk
  std::string cluster_config_path;                   // read on every stage
  std::chrono::milliseconds resize_wait{30000};      // expand: wait for the kernel's new size
  std::chrono::milliseconds image_grace{3000};       // expand: how long an image may look too small
};

// csi.v1 AccessMode.Mode values the node logic cares about.
inline constexpr int kSingleNodeReaderOnly = 2;
inline constexpr int kMultiNodeReaderOnly = 3;
inline bool IsReaderOnly(int access_mode) {
  return access_mode == kSingleNodeReaderOnly || access_mode == kMultiNodeReaderOnly;
}

struct Capability {
  VolumeMode mode = VolumeMode::kMount;
  std::string fs_type;                   // mount only; empty: ext4
  std::vector<std::string> mount_flags;  // mount only; never logged
  int access_mode = 0;
};

struct StageRequest {
  std::string volume_id;
  std::string staging_path;
  Capability capability;
  StringMap context;
  StringMap secrets;
};

struct PublishRequest {
  std::string volume_id;
  std::string staging_path;
  std::string target_path;
  Capability capability;
  bool readonly = false;
};

}  // namespace rbdnbd::csi
