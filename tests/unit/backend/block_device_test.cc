// FileBackend on a real block device: a loop device over a file in /tmp.
// Needs root and /dev/loop-control; skipped (not failed) without them.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "backend/file_backend.h"
#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::AllZero;
using testing::LoopThread;
using testing::Pattern;

constexpr uint64_t kDeviceSize = 8 << 20;

std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  if (::pclose(p) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

class BlockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/loop-control", W_OK) != 0) {
      GTEST_SKIP() << "needs root and /dev/loop-control";
    }
    file_ = testing::TempPath("/tmp", "loopback");
    int fd = ::open(file_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> bytes = Pattern(11, 0, kDeviceSize);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(kDeviceSize));
    ::close(fd);
    device_ = RunCommand("losetup --find --show " + file_ + " 2>/dev/null");
    if (device_.rfind("/dev/loop", 0) != 0) {
      device_.clear();
      GTEST_SKIP() << "losetup failed";
    }
    auto r = FileBackend::Create({.path = device_});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    backend_ = std::static_pointer_cast<FileBackend>(*r);
  }
  void TearDown() override {
    backend_.reset();
    if (!device_.empty()) RunCommand("losetup -d " + device_);
    if (!file_.empty()) ::unlink(file_.c_str());
  }

  std::string file_;
  std::string device_;
  std::shared_ptr<FileBackend> backend_;
  LoopThread lt_;
};

TEST_F(BlockDeviceTest, ReadWriteTrimZero) {
  EXPECT_TRUE(backend_->is_block_device());
  EXPECT_TRUE(backend_->direct());
  BackendCaps caps = backend_->Capabilities();
  EXPECT_EQ(caps.size, kDeviceSize);
  EXPECT_TRUE(caps.can_trim && caps.can_write_zeroes && caps.can_flush && caps.can_fua);
  EXPECT_EQ(caps.min_block, backend_->direct_alignment());
  EXPECT_NE(backend_->Describe().find("block device " + device_), std::string::npos);

  EXPECT_EQ(lt_.Read(*backend_, 4096, 4096), Pattern(11, 4096, 4096));
  ASSERT_EQ(lt_.Write(*backend_, 8192, Pattern(12, 8192, 8192), kIoFua), 0);
  ASSERT_EQ(lt_.Write(*backend_, 100, Pattern(12, 100, 1000)), 0);  // unaligned: buffered fd
  EXPECT_EQ(lt_.Read(*backend_, 8192, 8192), Pattern(12, 8192, 8192));
  EXPECT_EQ(lt_.Read(*backend_, 100, 1000), Pattern(12, 100, 1000));
  EXPECT_EQ(lt_.Submit(*backend_, IoType::kFlush, 0, 0), 0);

  // BLKZEROOUT (aligned) and the write fallback (unaligned).
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kWriteZeroes, 1 << 20, 1 << 20), 0);
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, 1 << 20, 1 << 20)));
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kWriteZeroes, (3 << 20) + 3, 5000, nullptr, kIoNoHole), 0);
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, (3 << 20) + 3, 5000)));
  EXPECT_EQ(lt_.Read(*backend_, 3 << 20, 3), Pattern(11, 3 << 20, 3));

  // BLKDISCARD: a loop device punches the backing file, so it reads as zeroes.
  ASSERT_EQ(lt_.Submit(*backend_, IoType::kTrim, 4 << 20, 1 << 20), 0);
  EXPECT_TRUE(AllZero(lt_.Read(*backend_, 4 << 20, 1 << 20)));
  EXPECT_EQ(lt_.Submit(*backend_, IoType::kTrim, 7, 100), 0) << "no whole block: no-op";
}

}  // namespace
}  // namespace rbdnbd
