// MapRequest: what `map` asks of the daemon, and the one conversion each way
// between it and the DeviceRecord that the state file keeps.
//
// Contract: pure conversions, any thread. A DeviceRecord never holds a
// secret: RecordForMap() keeps the paths of key and passphrase files and
// marks secrets handed over in memory (key_in_memory, passphrase_in_memory);
// MapRequestForRecord() gives a request without them, for the caller to fill
// in from those files or the kernel keyring.
#pragma once

#include <string>

#include "control/state_store.h"
#include "device/kernel_device.h"
#include "rbd/cluster.h"
#include "rbd/image_spec.h"
#include "rbd/rbd_backend.h"

namespace rbdnbd {

struct MapRequest {
  std::string spec;
  DeviceType type = DeviceType::kNbd;  // the kernel frontend (`map -t`)
  // The device: for ublk, `index` is the ublk id and `cookie` names the
  // mapping (the kernel has no use for it); the rest is nbd's.
  KernelDeviceParams device;
  // ublk only (`map -t ublk --queue-depth N --max-io SIZE`): requests per
  // queue and the largest request in bytes; 0: the defaults (128, 512 KiB).
  uint32_t ublk_queue_depth = 0;
  uint32_t ublk_max_io_bytes = 0;
  RbdOpenOptions image;         // `spec` is filled in by the device manager
  std::string passphrase_file;  // read by the daemon
  ClusterOptions cluster;       // may carry an in-memory key
  std::string keyfile_path;     // read by the daemon
};

// The record of a device mapped for `request`, whose spec parsed as `spec`.
// The index and the client address are the caller's to fill in. A ublk
// record holds the queue depth and max I/O size it is mapped with (the
// defaults filled in); an nbd record holds 0 for both.
DeviceRecord RecordForMap(const MapRequest& request, const ImageSpec& spec);

// The request that serves `record` again (restore, attach): no secrets.
Result<MapRequest> MapRequestForRecord(const DeviceRecord& record);

const char* EncryptionName(EncryptionFormat format);  // "", "luks1", "luks2"

}  // namespace rbdnbd
