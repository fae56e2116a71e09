// StateStore: the daemon's persistent list of mapped devices, so a new daemon
// (after a crash, SIGKILL or an upgrade) can reattach every device.
//
// Contract: control thread (callers serialise). Save() is atomic
// (WriteFileAtomically: a unique state.json.tmp.XXXXXX, fsync, rename over
// state.json, fsync of the directory), so a crash leaves either the old or
// the new file, never a torn one; Init() removes temporaries a crash left.
// The file is mode 0600 in a 0700 directory. It holds no secret: keys and
// passphrases are stored only as the paths of files the admin manages.
// One file lists both kinds of device (nbd and ublk), each with its "type".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rbdnbd {

// The kernel frontend of a device: /dev/nbdN (the NBD socket frontend) or
// /dev/ublkbN (ublk_drv). In the state file and on the wire as "nbd"/"ublk".
enum class DeviceType : uint8_t { kNbd, kUblk };

const char* DeviceTypeName(DeviceType type);  // "nbd", "ublk"
// "nbd" or "ublk" (also "" as nbd, what older state files and clients mean); EINVAL otherwise.
Result<DeviceType> ParseDeviceType(std::string_view name);
// /dev/nbdN or /dev/ublkbN.
std::string DevicePath(DeviceType type, uint32_t index);

struct DeviceRecord {
  DeviceType type = DeviceType::kNbd;  // absent in the file (older daemons): nbd
  uint32_t index = 0;                  // N of /dev/nbdN, or the ublk device id
  std::string spec;        // pool/[ns/]image[@snap]
  std::string cookie;      // NBD backend identifier
  uint32_t connections = 1;
  // ublk: requests per queue and the largest request in bytes, as the device
  // was added. Absent in the file (older daemons) a ublk record loads the
  // defaults, 128 and 512 KiB; an nbd record has 0 for both.
  uint32_t queue_depth = 0;
  uint32_t max_io_bytes = 0;
  uint64_t io_timeout_s = 0;
  uint64_t reattach_timeout_s = 0;
  uint64_t connect_timeout_s = 0;  // each reattach try's bound; 0: the default (30 s)
  bool read_only = false;
  bool exclusive = false;
  bool notrim = false;
  std::string encryption;       // "", luks1, luks2
  std::string passphrase_file;  // a path, never the passphrase
  // Cluster: where and who. Never a key.
  std::string client_name;
  std::string conf_path;
  std::string mon_host;
  std::string keyring_path;
  std::string keyfile_path;
  bool key_in_memory = false;         // mapped with a key that was never on disk
  bool passphrase_in_memory = false;  // LUKS passphrase handed over in memory (CSI)
  std::string client_addr;     // the serving daemon's rados address, fenced by its successor
};

class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  Result<void> Init();  // creates the directory (0700)
  Result<std::vector<DeviceRecord>> Load() const;
  Result<void> Save(const std::vector<DeviceRecord>& devices) const;
  std::string path() const { return dir_ + "/state.json"; }

 private:
  std::string dir_;
};

}  // namespace rbdnbd
