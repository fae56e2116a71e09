#include "backend/file_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backend/file_op.h"
#include "backend/human_size.h"

namespace rbdnbd {
namespace {

// EINVAL from open(O_DIRECT) or from an aligned read means "this filesystem
// cannot do direct I/O"; anything else is a real error.
constexpr int kNoDirectErrno = EINVAL;

bool ReadSysfsFlag(const std::string& path, bool* value) {
  std::ifstream in(path);
  int v = 0;
  if (!(in >> v)) return false;
  *value = v != 0;
  return true;
}

}  // namespace

Result<std::shared_ptr<Backend>> FileBackend::Create(const FileBackendOptions& options) {
  if (options.path.empty()) return Err(EINVAL, "file backend: path is empty");
  std::shared_ptr<FileBackend> backend(new FileBackend());
  if (auto r = backend->Open(options); !r) return Unexpected(r.error());
  backend->ProbeFeatures();
  spdlog::info("file backend: {}", backend->Describe());
  return std::shared_ptr<Backend>(std::move(backend));
}

Result<void> FileBackend::Open(const FileBackendOptions& options) {
  path_ = options.path;
  read_only_ = options.read_only;
  int flags = (read_only_ ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  buffered_fd_.Reset(::open(path_.c_str(), flags));
  if (!buffered_fd_) {
    int e = errno;
    return Err(e, "file backend: cannot open '{}' {}: {}", path_,
               read_only_ ? "read-only" : "read-write", std::strerror(e));
  }
  struct stat st {};
  if (::fstat(buffered_fd_.get(), &st) != 0) {
    int e = errno;
    return Err(e, "file backend: fstat '{}': {}", path_, std::strerror(e));
  }
  if (S_ISBLK(st.st_mode)) {
    block_device_ = true;
    if (::ioctl(buffered_fd_.get(), BLKGETSIZE64, &size_) != 0) {
      int e = errno;
      return Err(e, "file backend: BLKGETSIZE64 on '{}': {}", path_, std::strerror(e));
    }
    std::string queue = fmt::format("/sys/dev/block/{}:{}/", major(st.st_rdev), minor(st.st_rdev));
    // A partition has no queue/ of its own; its disk's is one level up.
    if (!ReadSysfsFlag(queue + "queue/rotational", &rotational_)) {
      ReadSysfsFlag(queue + "../queue/rotational", &rotational_);
    }
  } else if (S_ISREG(st.st_mode)) {
    size_ = static_cast<uint64_t>(st.st_size);
  } else {
    return Err(EINVAL, "file backend: '{}' is neither a regular file nor a block device", path_);
  }
  if (size_ == 0) return Err(EINVAL, "file backend: '{}' is empty (size 0)", path_);

  if (options.direct == FileBackendOptions::Direct::kOff) return {};
  return OpenDirect(options, flags);
}

Result<void> FileBackend::OpenDirect(const FileBackendOptions& options, int flags) {
  bool required = options.direct == FileBackendOptions::Direct::kOn;
  UniqueFd fd(::open(path_.c_str(), flags | O_DIRECT));
  int e = fd ? 0 : errno;
  uint32_t align = 0;
  if (fd) {
    align = ProbeDirectAlignment(fd.get());
    if (align == 0) e = kNoDirectErrno;
  }
  if (e == 0) {
    direct_fd_ = std::move(fd);
    align_ = align;
    return {};
  }
  if (e != kNoDirectErrno || required) {
    return Err(e, "file backend: cannot open '{}' with O_DIRECT: {}", path_, std::strerror(e));
  }
  spdlog::info("file backend: '{}' does not support O_DIRECT, using the page cache", path_);
  return {};
}

// Returns the offset/length alignment O_DIRECT needs on `fd`, or 0 when the
// filesystem accepts the open but not the I/O (some FUSE and older tmpfs).
uint32_t FileBackend::ProbeDirectAlignment(int fd) const {
  uint32_t candidate = 512;
  if (block_device_) {
    int lbs = 0;
    if (::ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) candidate = static_cast<uint32_t>(lbs);
  } else {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) != 0) {
      if (stx.stx_dio_offset_align == 0) return 0;  // the kernel says: no direct I/O
      candidate = std::max<uint32_t>(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
    }
  }
  // Trust but verify: one aligned read at offset 0. A short read is fine.
  constexpr uint32_t kMaxProbe = 4096;
  void* buf = std::aligned_alloc(kMaxProbe, kMaxProbe);
  if (buf == nullptr) return 0;
  uint32_t result = 0;
  for (uint32_t align = candidate; align <= kMaxProbe; align *= 2) {
    if (::pread(fd, buf, align, 0) >= 0) {
      result = align;
      break;
    }
    if (errno != EINVAL) break;
  }
  std::free(buf);
  return result;
}

void FileBackend::ProbeFeatures() {
  if (read_only_) return;
  if (block_device_) {
    can_punch_hole_ = true;  // BLKDISCARD; EOPNOTSUPP at run time is a no-op
    return;
  }
  // Punching beyond EOF with KEEP_SIZE changes nothing but tells us whether
  // the filesystem implements the mode at all.
  int r = ::fallocate(buffered_fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(size_), 4096);
  can_punch_hole_ = r == 0;
  if (r != 0) {
    spdlog::info("file backend: '{}' cannot punch holes ({}); trim disabled", path_,
                 std::strerror(errno));
  }
}

BackendCaps FileBackend::Capabilities() const {
  BackendCaps caps;
  caps.size = size_;
  caps.read_only = read_only_;
  caps.can_flush = true;
  caps.can_fua = !read_only_;
  caps.can_trim = !read_only_ && can_punch_hole_;
  caps.can_write_zeroes = !read_only_;
  caps.can_multi_conn = true;
  caps.can_cache = false;
  caps.rotational = rotational_;
  caps.min_block = direct() ? align_ : 1;
  caps.preferred_block = std::max<uint32_t>(4096, caps.min_block);
  return caps;
}

std::string FileBackend::Describe() const {
  return fmt::format("{} {} {}{}{}", block_device_ ? "block device" : "file", path_,
                     HumanSize(size_),
                     direct() ? fmt::format(" O_DIRECT/{}", align_) : std::string(" buffered"),
                     read_only_ ? " read-only" : "");
}

void FileBackend::Submit(EventLoop& loop, IoRequest& io) {
  assert(io.offset <= size_ && io.length <= size_ - io.offset);
  assert(!read_only_ || io.type == IoType::kRead || io.type == IoType::kFlush ||
         io.type == IoType::kCache);
  switch (io.type) {
    case IoType::kCache:
      io.OnIoDone(0);
      return;
    case IoType::kWrite:
    case IoType::kTrim:
    case IoType::kWriteZeroes:
      if (read_only_) {
        io.OnIoDone(-EROFS);
        return;
      }
      break;
    case IoType::kRead:
    case IoType::kFlush:
      break;
  }
  if (block_device_ && io.type == IoType::kTrim) {
    int r = BlockDiscard(io.offset, io.length);
    if (r == -EOPNOTSUPP) r = 0;  // trim is advisory
    if (r == 0 && (io.flags & kIoFua) && ::fdatasync(buffered_fd_.get()) != 0) r = -errno;
    io.OnIoDone(r);
    return;
  }
  if (block_device_ && io.type == IoType::kWriteZeroes &&
      ((io.offset | io.length) & (align_ == 1 ? 511 : align_ - 1)) == 0) {
    int r = BlockZeroOut(io.offset, io.length);
    if (r == 0 && (io.flags & kIoFua) && ::fdatasync(buffered_fd_.get()) != 0) r = -errno;
    if (r != -EOPNOTSUPP && r != -EINVAL) {
      io.OnIoDone(r);
      return;
    }
    // Fall through: FileOp writes zeroes instead.
  }
  FileOp::Start(shared_from_this(), loop, io);
}

int FileBackend::BlockDiscard(uint64_t offset, uint64_t length) {
  // Discard only whole logical blocks inside the range; trim is advisory.
  uint64_t lbs = align_ == 1 ? 512 : align_;
  uint64_t begin = (offset + lbs - 1) / lbs * lbs;
  uint64_t end = (offset + length) / lbs * lbs;
  if (end <= begin) return 0;
  uint64_t range[2] = {begin, end - begin};
  if (::ioctl(buffered_fd_.get(), BLKDISCARD, range) != 0) return -errno;
  return 0;
}

int FileBackend::BlockZeroOut(uint64_t offset, uint64_t length) {
  uint64_t range[2] = {offset, length};
  if (::ioctl(buffered_fd_.get(), BLKZEROOUT, range) != 0) return -errno;
  return 0;
}

}  // namespace rbdnbd
