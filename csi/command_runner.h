// RunCommand: runs a helper program (blkid, mkfs, fsck, resize2fs, ...) with
// an argv array through posix_spawnp, never through a shell.
//
// Contract: stdin is /dev/null; stdout and stderr are captured together (at
// most 64 KiB kept). PATH is extended with the sbin directories, since the
// plugin's container may not have them. Returns the exit code (or 128+signal)
// and the output; fails only when the program cannot be started (ENOENT when
// it is not installed). argv must never carry a secret. Blocking; any thread.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace rbdnbd::csi {

struct CommandResult {
  int exit_code = 0;
  std::string output;  // stdout + stderr, truncated
};

Result<CommandResult> RunCommand(const std::vector<std::string>& argv);

}  // namespace rbdnbd::csi
