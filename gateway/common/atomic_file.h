// Atomic, durable replacement of a small file (state records, metadata).
//
// Contract
// --------
// * WriteFileAtomically(path, contents, mode) leaves `path` holding either its
//   old contents or all of `contents`, never a mix, also across a crash or a
//   power cut: it writes a temporary file with a unique name in the same
//   directory (so the rename cannot cross a filesystem), gives it exactly
//   `mode` (the umask does not apply: a 0600 secret-adjacent record must not
//   come out 0644), writes everything, fsyncs it, renames it over `path` and
//   fsyncs the directory, so the rename itself survives a crash.
// * The directory must exist; it is never created here.
// * Every failure is a Result naming the step and the path. Before the rename
//   the temporary file is removed on failure and `path` is untouched. When
//   only the final directory fsync fails, `path` already holds the new
//   contents, but a crash may still bring the old ones back; the error says so.
// * Temporary names are "<path>.tmp.XXXXXX": a caller that finds such files
//   after a crash may delete them (they were never renamed into place).
// * SyncDirectory(dir) fsyncs a directory, for callers that unlink or rename
//   files themselves and need that to be durable.
// * Thread-safe: no shared state; concurrent writers of the same path each
//   leave a whole file (the last rename wins).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd {

Result<void> WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode);

Result<void> SyncDirectory(const std::string& dir);

}  // namespace rbdnbd
