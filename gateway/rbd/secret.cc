#include "rbd/secret.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

namespace rbdnbd {

void Secret::Wipe() {
  // explicit_bzero is not optimised away, unlike memset on a dying buffer.
  if (!value_.empty()) explicit_bzero(value_.data(), value_.size());
  value_.clear();
}

Result<Secret> ReadSecretFd(int fd, std::string_view what) {
  constexpr size_t kMax = 64 * 1024;
  std::string buf;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      explicit_bzero(chunk, sizeof(chunk));
      return Err(e, "reading the {}: {}", what, strerror(e));
    }
    if (n == 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    if (buf.size() > kMax) {
      explicit_bzero(buf.data(), buf.size());
      explicit_bzero(chunk, sizeof(chunk));
      return Err(EFBIG, "the {} is larger than {} bytes", what, kMax);
    }
  }
  explicit_bzero(chunk, sizeof(chunk));
  while (!buf.empty() && (buf.back() == '\n' || buf.back() == '\r')) buf.pop_back();
  Secret s(std::move(buf));
  if (s.empty()) return Err(EINVAL, "the {} is empty", what);
  return s;
}

Result<Secret> ReadSecretFile(const std::string& path, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Err(errno, "cannot open the {} '{}': {}", what, path, strerror(errno));
  return ReadSecretFd(fd.get(), what);
}

}  // namespace rbdnbd
