// FsTools: the filesystem helpers stage and expand need, run as child
// processes (csi/command_runner.h): blkid, mkfs.ext4/mkfs.xfs, fsck,
// resize2fs, xfs_growfs. Same choices as ceph-csi (see FACTS.md).
//
// Contract
// * Probe(): `blkid -p -s TYPE -s PTTYPE -o export DEV`; exit 2 is a blank
//   device. A partition table is reported, never formatted over.
// * MakeFs(): ext4 `-m0 -Enodiscard,lazy_itable_init=1,lazy_journal_init=1`,
//   xfs `-K`, or `options` instead of those when not empty (mkfsOptions);
//   any other type is kInvalidArgument.
// * Check(): `fsck -a DEV`; exit 0 or 1 (errors fixed) is success; 4 and up
//   (errors left) is kFailedPrecondition; others are internal errors.
// * Grow(): ext2/3/4 `resize2fs DEV` (online when mounted), xfs
//   `xfs_growfs MOUNT_POINT`; other types are left alone.
// * Errors carry the tool's output (no secrets are ever in argv or output).
// Blocking; any gRPC thread (callers hold the volume's lock).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace rbdnbd::csi {

struct DeviceProbe {
  bool blank = false;
  std::string fs_type;          // TYPE=, e.g. ext4, xfs, crypto_LUKS
  std::string partition_table;  // PTTYPE=, e.g. dos, gpt
};

class FsTools {
 public:
  virtual ~FsTools() = default;
  virtual Result<DeviceProbe> Probe(const std::string& device) = 0;
  virtual Result<void> MakeFs(const std::string& device, const std::string& fs_type,
                              const std::vector<std::string>& options = {}) = 0;
  virtual Result<void> Check(const std::string& device) = 0;
  virtual Result<void> Grow(const std::string& device, const std::string& mount_point, const std::string& fs_type) = 0;
};

std::unique_ptr<FsTools> MakeSystemFsTools();

// blkid's exit code and `-o export` output -> DeviceProbe. Pure.
Result<DeviceProbe> ParseBlkidExport(int exit_code, const std::string& output);
bool IsSupportedFsType(const std::string& fs_type);  // ext4 | xfs (what we format)
bool IsExtFamily(const std::string& fs_type);        // ext2 | ext3 | ext4 (e2fsprogs, mount -o noload)

}  // namespace rbdnbd::csi
