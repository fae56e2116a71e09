#include "backend/file_backend.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::AllZero;
using testing::LoopThread;
using testing::Pattern;

constexpr uint64_t kFileSize = 4 << 20;
using Direct = FileBackendOptions::Direct;

struct FileCase {
  const char* dir;
  Direct direct;
};

std::string CaseName(const ::testing::TestParamInfo<FileCase>& info) {
  std::string dir = info.param.dir;
  return (dir == "/tmp" ? "tmp" : "shm") +
         std::string(info.param.direct == Direct::kAuto ? "_auto" : "_buffered");
}

// Creates a file of `size` bytes holding Pattern(9, ...), fsynced.
void CreatePatternFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  std::vector<uint8_t> bytes = Pattern(9, 0, size);
  ASSERT_EQ(::pwrite(fd, bytes.data(), size, 0), static_cast<ssize_t>(size));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

class FileBackendTest : public ::testing::TestWithParam<FileCase> {
 protected:
  void SetUp() override {
    path_ = testing::TempPath(GetParam().dir, "file");
    CreatePatternFile(path_, kFileSize);
    auto r = FileBackend::Create({.path = path_, .direct = GetParam().direct});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    backend_ = std::static_pointer_cast<FileBackend>(*r);
    if (GetParam().direct == Direct::kOff) {
      EXPECT_FALSE(backend_->direct());
    }
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::string path_;
  std::shared_ptr<FileBackend> backend_;
  LoopThread lt_;
};

TEST_P(FileBackendTest, CapsMatchTheOpenMode) {
  BackendCaps caps = backend_->Capabilities();
  EXPECT_EQ(caps.size, kFileSize);
  EXPECT_FALSE(caps.read_only);
  EXPECT_TRUE(caps.can_flush && caps.can_fua && caps.can_write_zeroes && caps.can_multi_conn);
  EXPECT_TRUE(caps.can_trim) << "ext4 and tmpfs both punch holes";
  EXPECT_FALSE(caps.can_cache);
  if (backend_->direct()) {
    EXPECT_GE(caps.min_block, 512u);
    EXPECT_EQ(caps.min_block, backend_->direct_alignment());
  } else {
    EXPECT_EQ(caps.min_block, 1u);
  }
  EXPECT_NE(backend_->Describe().find(path_), std::string::npos);
}

TEST_P(FileBackendTest, AlignedAndUnalignedRoundTrips) {
  EXPECT_EQ(lt_.Read(*backend_, 0, 64 * 1024), Pattern(9, 0, 64 * 1024));
  struct Io {
    uint64_t offset;
    uint32_t length;
  };
  for (Io io : {Io{4096, 8192}, Io{512, 512}, Io{1, 4095}, Io{65536 - 3, 70001},
                Io{kFileSize - 4096, 4096}, Io{kFileSize - 7, 7}, Io{1 << 20, 2 << 20}}) {
    std::vector<uint8_t> data = Pattern(100 + io.length, io.offset, io.length);
    ASSERT_EQ(lt_.Write(*backend_, io.offset, data), 0) << io.offset << "+" << io.length;
    EXPECT_EQ(lt_.Read(*backend_, io.offset, io.length), data) << io.offset << "+" << io.length;
  }
  // Bytes next to an unaligned write kept their old contents.
  EXPECT_EQ(lt_.Read(*backend_, 0, 1), Pattern(9, 0, 1));
}

TEST_P(FileBackendTest, FuaWriteAndFlush) {
  std::vector<uint8_t> data = Pattern(5, 8192, 16384);
  ASSERT_EQ(lt_.Write(*backend_, 8192, data, kIoFua), 0);
  ASSERT_EQ(lt_.Write(*backend_, 100, Pattern(5, 100, 33), kIoFua), 0);  // buffered fd + DSYNC
  EXPECT_EQ(lt_.Submit(*backend_, IoType::kFlush, 0, 0), 0);
  EXPECT_EQ(lt_.Read(*backend_, 8192, 16384), data);
  // The data reached the file itself, seen through an independent fd.
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<uint8_t> got(16384);
  ASSERT_EQ(::pread(fd, got.data(), got.size(), 8192), 16384);
  ::close(fd);
  EXPECT_EQ(got, data);
}

TEST_P(FileBackendTest, TrimPunchesHoles) {
  uint64_t before = AllocatedBytes(path_);
  ASSERT_GE(before, kFileSize);
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kTrim, 1 << 20, 1 << 20), 0);
  uint64_t after = AllocatedBytes(path_);
  EXPECT_LE(after, before - (1 << 20)) << "st_blocks did not drop";
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, 1 << 20, 1 << 20)));
  EXPECT_EQ(lt_.Read(*backend_, 0, 4096), Pattern(9, 0, 4096));
  EXPECT_EQ(backend_->Capabilities().size, kFileSize) << "KEEP_SIZE";
  // Unaligned trim with FUA: an fdatasync follows the punch.
  EXPECT_EQ(lt_.Submit(*backend_, IoType::kTrim, 3 * 4096 + 5, 10000, nullptr, kIoFua), 0);
}

TEST_P(FileBackendTest, WriteZeroesReadsBackZero) {
  uint64_t before = AllocatedBytes(path_);
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kWriteZeroes, 0, 1 << 20), 0);
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, 0, 1 << 20)));
  EXPECT_LT(AllocatedBytes(path_), before) << "without NO_HOLE zeroing punches";

  // NO_HOLE: ZERO_RANGE on ext4; tmpfs lacks it, so zeroes get written. The
  // range spans several 1 MiB fallback chunks and is unaligned at both ends.
  uint64_t off = (1 << 20) + 77;
  uint32_t len = (2 << 20) + 1000;
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kWriteZeroes, off, len, nullptr, kIoNoHole | kIoFua), 0);
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, off, len)));
  EXPECT_EQ(lt_.Read(*backend_, off - 77, 77), Pattern(9, off - 77, 77));
  EXPECT_EQ(lt_.Read(*backend_, off + len, 100), Pattern(9, off + len, 100));
  // Second time: the backend remembers what fallocate mode failed.
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kWriteZeroes, 0, 4096, nullptr, kIoNoHole), 0);
}

TEST_P(FileBackendTest, ReadPastEofZeroPads) {
  // Someone shrinks the file under the export: reads past the new EOF get
  // zeroes instead of an error or stale buffer contents.
  ASSERT_EQ(::truncate(path_.c_str(), kFileSize / 2), 0);
  uint64_t off = kFileSize / 2 - 8192;
  std::vector<uint8_t> got = lt_.Read(*backend_, off, 65536);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + 8192), Pattern(9, off, 8192));
  EXPECT_TRUE(AllZero(std::vector<uint8_t>(got.begin() + 8192, got.end())));
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, kFileSize - 100, 100)));
}

TEST_P(FileBackendTest, SeveralLoopsAtOnce) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) {
    threads.emplace_back([&, t] {
      LoopThread lt;
      for (int i = 0; i < 50; i++) {
        uint64_t off = t * (1 << 20) + i * 8192 + (i % 3);  // some unaligned
        std::vector<uint8_t> data = Pattern(t * 100 + i, off, 8000);
        ASSERT_EQ(lt.Write(*backend_, off, data, i % 5 == 0 ? kIoFua : 0), 0);
        ASSERT_EQ(lt.Read(*backend_, off, 8000), data);
        if (i % 10 == 0) {
          ASSERT_EQ(lt.Submit(*backend_, IoType::kFlush, 0, 0), 0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}

INSTANTIATE_TEST_SUITE_P(Matrix, FileBackendTest,
                         ::testing::Values(FileCase{"/tmp", Direct::kAuto},
                                           FileCase{"/tmp", Direct::kOff},
                                           FileCase{"/dev/shm", Direct::kAuto},
                                           FileCase{"/dev/shm", Direct::kOff}),
                         CaseName);

TEST(FileBackendOpenTest, DirectOnTmpUsesODirect) {
  std::string path = testing::TempPath("/tmp", "direct");
  CreatePatternFile(path, 1 << 20);
  auto r = FileBackend::Create({.path = path, .direct = Direct::kOn});
  ::unlink(path.c_str());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto fb = std::static_pointer_cast<FileBackend>(*r);
  EXPECT_TRUE(fb->direct());
  EXPECT_NE(fb->Describe().find("O_DIRECT"), std::string::npos);
}

TEST(FileBackendOpenTest, DirectOnIsAnErrorWhereAutoFallsBack) {
  // tmpfs gained O_DIRECT in Linux 6.6; whichever kernel this is, kOn must
  // fail exactly where kAuto had to fall back to the page cache.
  std::string path = testing::TempPath("/dev/shm", "direct");
  CreatePatternFile(path, 1 << 20);
  auto automatic = FileBackend::Create({.path = path});
  auto on = FileBackend::Create({.path = path, .direct = Direct::kOn});
  ::unlink(path.c_str());
  ASSERT_TRUE(automatic.has_value());
  bool auto_direct = std::static_pointer_cast<FileBackend>(*automatic)->direct();
  EXPECT_EQ(on.has_value(), auto_direct);
  if (!on) {
    EXPECT_EQ(on.error().code, EINVAL);
    EXPECT_NE(on.error().message.find("O_DIRECT"), std::string::npos);
  }
}

TEST(FileBackendOpenTest, ReadOnly) {
  std::string path = testing::TempPath("/tmp", "ro");
  CreatePatternFile(path, 1 << 20);
  auto r = FileBackend::Create({.path = path, .read_only = true});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  std::shared_ptr<Backend> b = *r;
  BackendCaps caps = b->Capabilities();
  EXPECT_TRUE(caps.read_only);
  EXPECT_FALSE(caps.can_trim || caps.can_write_zeroes || caps.can_fua);
  LoopThread lt;
  EXPECT_EQ(lt.Read(*b, 4096, 4096), Pattern(9, 4096, 4096));
#ifdef NDEBUG  // debug builds assert that the frontend never sends these
  EXPECT_EQ(lt.Write(*b, 0, {1, 2, 3}), -EROFS);
  EXPECT_EQ(lt.Submit(*b, IoType::kTrim, 0, 4096), -EROFS);
#endif
  ::unlink(path.c_str());
}

TEST(FileBackendOpenTest, ReadWriteOpenOfAnImmutableFileFails) {
  std::string path = testing::TempPath("/tmp", "immutable");
  CreatePatternFile(path, 1 << 20);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int flags = 0;
  bool immutable = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                   (flags |= FS_IMMUTABLE_FL, ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  if (!immutable) {
    ::chmod(path.c_str(), 0444);  // enough unless we are root
  }
  auto rw = FileBackend::Create({.path = path});
  auto ro = FileBackend::Create({.path = path, .read_only = true});
  if (immutable) {
    flags &= ~FS_IMMUTABLE_FL;
    ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
  ::unlink(path.c_str());
  EXPECT_TRUE(ro.has_value());
  if (!immutable && ::geteuid() == 0) GTEST_SKIP() << "root ignores 0444 and chattr failed";
  ASSERT_FALSE(rw.has_value());
  EXPECT_TRUE(rw.error().code == EPERM || rw.error().code == EACCES) << rw.error().code;
  EXPECT_NE(rw.error().message.find("cannot open '" + path + "' read-write"), std::string::npos)
      << rw.error().message;
}

TEST(FileBackendOpenTest, BadPaths) {
  auto missing = FileBackend::Create({.path = "/nonexistent/rbdnbd-test"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("/nonexistent/rbdnbd-test"), std::string::npos);

  auto dir = FileBackend::Create({.path = "/tmp", .read_only = true});
  ASSERT_FALSE(dir.has_value());
  EXPECT_NE(dir.error().message.find("neither a regular file nor a block device"),
            std::string::npos);

  std::string empty = testing::TempPath("/tmp", "empty");
  ::close(::open(empty.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  auto e = FileBackend::Create({.path = empty});
  ::unlink(empty.c_str());
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("is empty"), std::string::npos);

  EXPECT_FALSE(FileBackend::Create({}).has_value());
}

}  // namespace
}  // namespace rbdnbd
