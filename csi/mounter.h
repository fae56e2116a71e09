// Mounter: mount(2)/umount2(2) and "what is mounted here" (mountinfo).
//
// Contract
// * MountAt(path): the top-most mount at exactly `path` (after resolving
//   symlinks when the path exists), or nullopt.
// * Mount(): mounts a filesystem; `options` are mount(8)-style words
//   ("noatime", "ro", "discard", "nouuid"): the flag words become MS_* flags,
//   the rest the data string. The data string is never logged (CSI mount
//   flags may be sensitive).
// * BindMount(): bind-mounts `source` on `target`, then remounts it
//   read-only when asked (a bind mount ignores MS_RDONLY on the first call).
// * Unmount(): unmounts every mount stacked at `target`; nothing mounted is
//   success. Never lazy (MNT_DETACH): a busy mount is an error (EBUSY).
// Blocking system calls; any gRPC thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "csi/mount_info.h"

namespace rbdnbd::csi {

class Mounter {
 public:
  virtual ~Mounter() = default;
  virtual Result<std::optional<MountEntry>> MountAt(const std::string& path) = 0;
  virtual Result<void> Mount(const std::string& source, const std::string& target, const std::string& fs_type,
                             const std::vector<std::string>& options) = 0;
  virtual Result<void> BindMount(const std::string& source, const std::string& target, bool read_only) = 0;
  virtual Result<void> Unmount(const std::string& target) = 0;
};

std::unique_ptr<Mounter> MakeSystemMounter();

struct MountOptions {
  unsigned long flags = 0;  // MS_*
  std::string data;         // the remaining words, comma-joined
};
MountOptions ParseMountOptions(const std::vector<std::string>& options);  // pure

// Canonical form of a path for comparing with mountinfo: realpath when it
// exists, else lexically normalised.
std::string CanonicalPath(const std::string& path);

}  // namespace rbdnbd::csi
