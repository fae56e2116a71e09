// VolumeParams: what a NodeStageVolume needs to map an image, parsed from the
// request's volume_context and node_stage_secrets (see csi/README.md).
//
// Contract: ParseVolumeParams() is pure (the cluster list is passed in). Every
// problem is kInvalidArgument (csi_error.h) with the key named: missing userID,
// userKey, pool, imageName (unless staticVolume), clusterID/monitors; an
// unknown clusterID; a bad number or boolean; an encryption format without its
// passphrase; mkfsOptions over 1024 bytes or with a word that is
// a path (starts with '/': mkfs takes the device as its own argument); a
// deviceType other than nbd, ublk or auto (device_type.h). A message names a key, never a secret's value. The key and the
// passphrase stay in Secret objects (wiped on destruction). Any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "csi/cluster_config.h"
#include "csi/device_type.h"
#include "rbd/secret.h"

namespace rbdnbd::csi {

using StringMap = std::map<std::string, std::string>;

struct VolumeParams {
  std::string spec;            // canonical pool/[namespace/]image
  std::string mon_host;        // comma-separated monitors
  std::string client_name;     // client.<userID>
  Secret key;                  // the cephx key
  uint32_t connections = 1;
  uint32_t io_timeout_s = 30;
  uint32_t connect_timeout_s = 30;  // bound on reaching the monitors and logging in
  uint32_t reattach_timeout_s = 60;
  bool exclusive = false;
  std::string encryption;      // "", "luks1" or "luks2"
  Secret passphrase;           // only with encryption
  // mkfsOptions split on blanks: they replace the default mkfs options
  // (ceph-csi's meaning). Empty: the defaults (fs_tools.h).
  std::vector<std::string> mkfs_options;
  // deviceType as asked (nbd when absent). Stage resolves auto
  // (ChooseDeviceType) before it maps: DaemonClient::Map() takes nbd or ublk.
  DeviceType device_type = DeviceType::kNbd;
  // ublkQueueDepth / ublkMaxIoSize: the shape of a ublk device (0: the daemon's
  // default, 128 and 512 KiB). Sent only when the device is ublk; with deviceType
  // auto they apply if auto picks ublk.
  uint32_t ublk_queue_depth = 0;
  uint32_t ublk_max_io_bytes = 0;
};

Result<VolumeParams> ParseVolumeParams(const std::string& volume_id, const StringMap& context,
                                       const StringMap& secrets, const ClusterConfig& clusters);

}  // namespace rbdnbd::csi
