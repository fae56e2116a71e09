// VolumeRecord: what the plugin remembers about one staged volume.
//
// Unstage, publish, stats and expand receive no volume_context, so stage
// writes this record (before it maps anything, so that a crash mid-stage can
// still be unstaged) and the later calls read it. It never holds a secret:
// the key and the passphrase live only in the stage request and in the daemon.
#pragma once

#include <string>
#include <vector>

#include "csi/device_type.h"

namespace rbdnbd::csi {

enum class VolumeMode { kMount, kBlock };

struct PublishedTarget {
  std::string target_path;
  bool read_only = false;
  VolumeMode mode = VolumeMode::kMount;  // the capability it was published with
  int access_mode = 0;

  bool operator==(const PublishedTarget&) const = default;
};

struct VolumeRecord {
  std::string volume_id;
  std::string spec;          // pool/[namespace/]image, canonical
  VolumeMode mode = VolumeMode::kMount;
  std::string fs_type;       // requested (mount), then the one found or made
  std::vector<std::string> mount_flags;
  bool read_only = false;    // mapped read-only (a *_READER_ONLY access mode)
  int access_mode = 0;       // csi.v1 AccessMode.Mode value
  std::string staging_path;
  std::string device;        // /dev/nbdN or /dev/ublkbN once mapped
  // What `device` is: nbd or ublk, never auto (stage resolves it). Records
  // written before the field existed are nbd.
  DeviceType device_type = DeviceType::kNbd;
  std::string cookie;        // the daemon's backend identifier for the device
  bool staged = false;       // true once stage finished (mapped and mounted)
  std::vector<PublishedTarget> published;

  bool operator==(const VolumeRecord&) const = default;
};

const char* VolumeModeName(VolumeMode mode);

}  // namespace rbdnbd::csi
