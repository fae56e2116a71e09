// A real freeze: an ext4 on a loop device, mounted twice (a staging mount and
// a bind mount, as CSI does), quiesced through FsQuiescer with the real
// mountinfo, device numbers and FIFREEZE/FITHAW. A write blocks while frozen
// and goes through after the thaw. Needs root (losetup, mount): skipped
// otherwise; CI runs as root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/quiesce_freezer.h"

namespace rbdnbd {
namespace {

using namespace std::chrono_literals;

std::string Shell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  *rc = ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class QuiesceLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (losetup, mkfs, mount); CI runs as root";
    int rc;
    for (const char* tool : {"losetup", "mkfs.ext4", "mount", "umount", "fsfreeze"}) {
      Shell(std::string("command -v ") + tool, &rc);
      if (rc != 0) GTEST_SKIP() << tool << " is not installed";
    }
    char tmpl[] = "/tmp/rbdnbd-quiesce-loop-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    staging_ = dir_ + "/staging";
    bind_ = dir_ + "/pod";
    ::mkdir(staging_.c_str(), 0755);
    ::mkdir(bind_.c_str(), 0755);
    Shell("truncate -s 64M " + dir_ + "/disk.img", &rc);
    ASSERT_EQ(rc, 0);
    loop_ = Shell("losetup -f --show " + dir_ + "/disk.img", &rc);
    if (rc != 0) GTEST_SKIP() << "no loop device here: " << loop_;
    std::string out = Shell("mkfs.ext4 -q -F " + loop_, &rc);
    ASSERT_EQ(rc, 0) << out;
    out = Shell("mount " + loop_ + " " + staging_, &rc);
    ASSERT_EQ(rc, 0) << out;
    mounted_ = true;
    out = Shell("mount --bind " + staging_ + " " + bind_, &rc);
    ASSERT_EQ(rc, 0) << out;
    bound_ = true;
  }
  void TearDown() override {
    int rc;
    if (mounted_) Shell("fsfreeze -u " + staging_, &rc);  // whatever a failed test left
    if (bound_) Shell("umount " + bind_, &rc);
    if (mounted_) Shell("umount " + staging_, &rc);
    if (!loop_.empty() && loop_.rfind("/dev/", 0) == 0) Shell("losetup -d " + loop_, &rc);
    if (!dir_.empty()) Shell("rm -rf " + dir_, &rc);
  }

  std::string dir_, staging_, bind_, loop_;
  bool mounted_ = false, bound_ = false;
};

TEST_F(QuiesceLoopTest, AWriteBlocksWhileFrozenAndGoesAfterTheThaw) {
  FsQuiescer q(loop_, "rbd/loop-test");
  ASSERT_EQ(q.Quiesce(QuiesceClock::now() + 10s), 0);  // once: the bind mount is the same superblock

  std::atomic<bool> written{false};
  std::atomic<int> write_errno{0};
  std::thread writer([&] {
    // Through the bind mount: it is the same, frozen, filesystem.
    int fd = ::open((bind_ + "/file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      write_errno = errno;
    } else {
      char block[4096] = {'x'};
      if (::write(fd, block, sizeof(block)) != static_cast<ssize_t>(sizeof(block))) write_errno = errno;
      ::close(fd);
    }
    written = true;
  });
  std::this_thread::sleep_for(700ms);
  EXPECT_FALSE(written.load()) << "a write finished on a frozen filesystem";

  auto thaw_at = std::chrono::steady_clock::now();
  q.Unquiesce();
  while (!written.load() && std::chrono::steady_clock::now() - thaw_at < 10s) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(written.load()) << "the write did not go through after the thaw";
  writer.join();
  EXPECT_EQ(write_errno.load(), 0) << strerror(write_errno.load());
  struct stat st {};
  ASSERT_EQ(::stat((staging_ + "/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4096);
}

TEST_F(QuiesceLoopTest, AFilesystemFrozenBySomeoneElseFailsTheQuiesceWithEbusyAndIsLeftAsItWas) {
  int rc;
  std::string out = Shell("fsfreeze -f " + staging_, &rc);
  ASSERT_EQ(rc, 0) << out;
  FsQuiescer q(loop_, "rbd/loop-test");
  EXPECT_EQ(q.Quiesce(QuiesceClock::now() + 10s), -EBUSY);
  q.Unquiesce();  // must not thaw what it did not freeze
  out = Shell("fsfreeze -u " + staging_, &rc);
  EXPECT_EQ(rc, 0) << "the filesystem was not frozen any more: " << out;
}

TEST_F(QuiesceLoopTest, NothingMountedFromAnotherLoopDeviceMeansNothingFrozen) {
  int rc;
  std::string other = Shell("losetup -f --show " + dir_ + "/disk.img", &rc);
  if (rc != 0) GTEST_SKIP() << "no second loop device: " << other;
  FsQuiescer q(other, "rbd/other");
  EXPECT_EQ(q.Quiesce(QuiesceClock::now() + 10s), 0);
  // Our filesystem is not frozen: a write goes at once.
  std::ofstream(staging_ + "/free") << "ok";
  q.Unquiesce();
  Shell("losetup -d " + other, &rc);
  std::ifstream in(staging_ + "/free");
  std::string s;
  in >> s;
  EXPECT_EQ(s, "ok");
}

}  // namespace
}  // namespace rbdnbd
