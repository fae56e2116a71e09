// WriteFileAtomically() against a real filesystem: the success path, the
// mode, the replacement of an existing file, and the failures that must leave
// neither a temporary file nor a changed target behind.
#include "common/atomic_file.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rbdnbd-atomic-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Traversable by everyone: the read-only test runs as an unprivileged uid.
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::all, fs::perm_options::add, ec);
    for (const auto& e : fs::recursive_directory_iterator(dir_, ec)) {
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(dir_, ec);
  }

  // Every name in `dir` (not recursive), sorted.
  static std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
};

TEST_F(AtomicFileTest, WritesTheWholeContentsAndLeavesNoTemporary) {
  std::string path = dir_ + "/state.json";
  std::string big(3 * 1024 * 1024 + 17, 'x');  // more than one write() may take
  big[12345] = 'y';
  ASSERT_TRUE(WriteFileAtomically(path, big, 0600));
  EXPECT_EQ(ReadFile(path), big);
  EXPECT_EQ(Names(dir_), std::vector<std::string>{"state.json"});
}

TEST_F(AtomicFileTest, HonoursTheModeWhateverTheUmask) {
  mode_t old = ::umask(0077);  // would strip 0640's group bit if the mode went through open()
  std::string a = dir_ + "/a";
  auto ra = WriteFileAtomically(a, "a", 0640);
  ::umask(0);
  std::string b = dir_ + "/b";
  auto rb = WriteFileAtomically(b, "b", 0600);  // and no wider than asked with no umask at all
  ::umask(old);
  ASSERT_TRUE(ra) << ra.error().message;
  ASSERT_TRUE(rb) << rb.error().message;
  EXPECT_EQ(ModeOf(a), 0640u);
  EXPECT_EQ(ModeOf(b), 0600u);
}

TEST_F(AtomicFileTest, ReplacesAnExistingFileAndItsMode) {
  std::string path = dir_ + "/record.json";
  { std::ofstream(path) << "old contents that are longer than the new ones"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "new", 0600));
  EXPECT_EQ(ReadFile(path), "new");
  EXPECT_EQ(ModeOf(path), 0600u);
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  // A new inode: readers holding the old file open never see a torn one.
  EXPECT_NE(before.st_ino, after.st_ino);
  EXPECT_EQ(Names(dir_), std::vector<std::string>{"record.json"});
}

TEST_F(AtomicFileTest, AMissingDirectoryIsAnErrorNamingThePath) {
  std::string path = dir_ + "/no-such-dir/state.json";
  auto r = WriteFileAtomically(path, "x", 0600);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_TRUE(Names(dir_).empty());
}

TEST_F(AtomicFileTest, AnEmptyOrDirectoryPathIsRejected) {
  EXPECT_EQ(WriteFileAtomically("", "x", 0600).error().code, EINVAL);
  EXPECT_EQ(WriteFileAtomically(dir_ + "/", "x", 0600).error().code, EINVAL);
  EXPECT_TRUE(Names(dir_).empty());
}

// rename() onto a directory fails after the temporary file was written in
// full: the one failure that needs the clean-up, not just an early return.
TEST_F(AtomicFileTest, AFailedRenameRemovesTheTemporaryAndKeepsTheTarget) {
  std::string path = dir_ + "/target";
  ASSERT_TRUE(fs::create_directory(path));
  { std::ofstream(path + "/inside") << "keep"; }
  auto r = WriteFileAtomically(path, "x", 0600);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == EISDIR || r.error().code == ENOTEMPTY || r.error().code == EEXIST)
      << r.error().code;
  EXPECT_NE(r.error().message.find("rename"), std::string::npos) << r.error().message;
  EXPECT_EQ(Names(dir_), std::vector<std::string>{"target"});
  EXPECT_EQ(ReadFile(path + "/inside"), "keep");
}

// Root ignores directory permissions, so the check runs in a child that
// drops to an unprivileged uid first (when the test runs as root, as it does
// on the build machines). The child reports through its exit status:
// 0 = refused with EACCES and nothing left behind; 1..3 = which check failed.
TEST_F(AtomicFileTest, AReadOnlyDirectoryIsRefusedAndLeftUnchanged) {
  std::string ro = dir_ + "/ro";
  ASSERT_TRUE(fs::create_directory(ro));
  std::string path = ro + "/state.json";
  { std::ofstream(path) << "old"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(ro.c_str(), 65534, 65534), 0);
  }
  ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(10);
    auto r = WriteFileAtomically(path, "new", 0600);
    if (r) _exit(1);
    if (r.error().code != EACCES) _exit(2);
    if (r.error().message.find(path) == std::string::npos) _exit(3);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: it succeeded, 2: not EACCES, 3: no path, 10: setuid";
  EXPECT_EQ(ReadFile(path), "old");
  EXPECT_EQ(Names(ro), std::vector<std::string>{"state.json"});
}

TEST_F(AtomicFileTest, SyncDirectoryReportsAMissingDirectory) {
  EXPECT_TRUE(SyncDirectory(dir_));
  auto r = SyncDirectory(dir_ + "/gone");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find(dir_ + "/gone"), std::string::npos);
}

}  // namespace
}  // namespace rbdnbd
