#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/unique_fd.h"

namespace rbdnbd {
namespace {

std::string ParentDirectory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Removes the temporary file unless it was renamed into place, so no failure
// path can leave one behind.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void Dismiss() { path_.clear(); }

 private:
  std::string path_;
};

Result<void> WriteAll(int fd, std::string_view contents) {
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "{}", strerror(errno));
    off += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<void> SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Err(errno, "open directory {}: {}", dir, strerror(errno));
  if (::fsync(fd.get()) != 0) return Err(errno, "fsync directory {}: {}", dir, strerror(errno));
  return {};
}

Result<void> WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  if (path.empty() || path.back() == '/') return Err(EINVAL, "writing '{}': not a file name", path);
  std::string tmp = path + ".tmp.XXXXXX";
  // mkostemp, not a fixed ".tmp" name: two writers (or a leftover of a crash)
  // can never share, truncate or rename each other's temporary file.
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return Err(errno, "writing {}: cannot create a temporary file: {}", path, strerror(errno));
  TempFileGuard guard(tmp);
  if (::fchmod(fd.get(), mode) != 0) {
    return Err(errno, "writing {}: chmod {:o} of {}: {}", path, mode, tmp, strerror(errno));
  }
  if (auto w = WriteAll(fd.get(), contents); !w) {
    return Err(w.error().code, "writing {}: write to {}: {}", path, tmp, w.error().message);
  }
  if (::fsync(fd.get()) != 0) return Err(errno, "writing {}: fsync {}: {}", path, tmp, strerror(errno));
  // close() can report a deferred write error (NFS, quota): check it rather
  // than let UniqueFd drop it.
  if (::close(fd.Release()) != 0) {
    return Err(errno, "writing {}: close {}: {}", path, tmp, strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Err(errno, "writing {}: rename from {}: {}", path, tmp, strerror(errno));
  }
  guard.Dismiss();
  if (auto s = SyncDirectory(ParentDirectory(path)); !s) {
    return WithContext(s.error(), fmt::format("{} was replaced but may not survive a crash", path));
  }
  return {};
}

}  // namespace rbdnbd
